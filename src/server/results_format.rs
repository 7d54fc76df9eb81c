//! How a results stream is encoded, by the request's `Accept` header.
//!
//! Arrow IPC is the default: pyarrow, polars, DuckDB and arrow-js read it batch by
//! batch. `Accept: application/x-ndjson` gets the same rows, the same tag columns and
//! the same chunking (one chunk per committed batch) as JSON lines, one object per row.
//! That is what a browser page reads without a library: `fetch` streams the body and
//! sends the bearer token, which `EventSource` (server-sent events) cannot, and the
//! console only draws what it reads, so the compactness of Arrow buys it nothing.

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::writer::StreamWriter;
use arrow::json::writer::{LineDelimited, WriterBuilder};
use arrow::record_batch::RecordBatch;
use axum::http::{HeaderMap, header};

use super::ingest::{ARROW_STREAM, Format, NDJSON};

/// JSON lines when the `Accept` header names them, else Arrow IPC.
pub fn accepted(headers: &HeaderMap) -> Format {
    let accept = headers.get_all(header::ACCEPT).iter();
    let ranges = accept
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    match ranges
        .map(Format::from_content_type)
        .any(|f| f == Some(Format::JsonLines))
    {
        true => Format::JsonLines,
        false => Format::ArrowStream,
    }
}

/// The `Content-Type` of a stream in `format`.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::ArrowStream => ARROW_STREAM,
        Format::JsonLines => NDJSON,
    }
}

/// Turns batches into the chunks of a response body.
pub enum Encoder {
    ArrowIpc(StreamWriter<Vec<u8>>),
    JsonLines,
}

impl Encoder {
    /// An encoder of batches of `schema`; `start` gives the bytes that open the stream.
    pub fn new(format: Format, schema: &SchemaRef) -> Result<Self, ArrowError> {
        Ok(match format {
            Format::ArrowStream => Encoder::ArrowIpc(StreamWriter::try_new(Vec::new(), schema)?),
            Format::JsonLines => Encoder::JsonLines,
        })
    }

    /// What opens the stream: the IPC schema message (nothing for JSON lines).
    pub fn start(&mut self) -> Vec<u8> {
        match self {
            Encoder::ArrowIpc(writer) => std::mem::take(writer.get_mut()),
            Encoder::JsonLines => Vec::new(),
        }
    }

    /// One batch, as one chunk.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
        match self {
            Encoder::ArrowIpc(writer) => {
                writer.write(batch)?;
                Ok(std::mem::take(writer.get_mut()))
            }
            Encoder::JsonLines => {
                let builder = WriterBuilder::new().with_explicit_nulls(true);
                let mut writer = builder.build::<_, LineDelimited>(Vec::new());
                writer.write(batch)?;
                writer.finish()?;
                Ok(writer.into_inner())
            }
        }
    }

    /// What ends the stream: the IPC end-of-stream marker (nothing for JSON lines).
    pub fn finish(&mut self) -> Result<Vec<u8>, ArrowError> {
        match self {
            Encoder::ArrowIpc(writer) => {
                writer.finish()?;
                Ok(std::mem::take(writer.get_mut()))
            }
            Encoder::JsonLines => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn json_lines_only_when_accepted() {
        let mut headers = HeaderMap::new();
        assert_eq!(accepted(&headers), Format::ArrowStream);
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/html, */*"));
        assert_eq!(accepted(&headers), Format::ArrowStream);
        let asked = HeaderValue::from_static("text/plain;q=0.5, application/x-ndjson;q=1");
        headers.insert(header::ACCEPT, asked);
        assert_eq!(accepted(&headers), Format::JsonLines);
    }

    #[test]
    fn a_batch_becomes_one_line_per_row_with_its_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("_snapshot_id", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Int64Array::from(vec![Some(7), None])),
            ],
        )
        .unwrap();
        let mut encoder = Encoder::new(Format::JsonLines, &schema).unwrap();
        assert!(encoder.start().is_empty());
        let text = String::from_utf8(encoder.batch(&batch).unwrap()).unwrap();
        assert_eq!(
            text,
            "{\"name\":\"a\",\"_snapshot_id\":7}\n{\"name\":\"b\",\"_snapshot_id\":null}\n"
        );
        let mut ipc = Encoder::new(Format::ArrowStream, &schema).unwrap();
        let mut bytes = ipc.start();
        bytes.extend(ipc.batch(&batch).unwrap());
        bytes.extend(ipc.finish().unwrap());
        let read = arrow::ipc::reader::StreamReader::try_new(&bytes[..], None).unwrap();
        let batches: Vec<RecordBatch> = read.collect::<Result<_, _>>().unwrap();
        assert_eq!(batches, [batch]);
    }
}
