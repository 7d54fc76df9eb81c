//! `runnel produce TOPIC FILE`: appends a file's records to a topic through
//! `POST /v1/topics/{topic}/records`.
//!
//! JSON lines are sent as they are, in requests of at most [`MAX_REQUEST_BYTES`] cut at
//! line ends; Arrow IPC (stream or file) and Parquet are re-encoded as IPC streams.
//! Every request carries the same producer id and the next sequence number, so a
//! request retried after a lost reply is appended once.

use std::path::Path;

use anyhow::Context;
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use runnel_runtime::SeededRng;

use super::{Server, send};

/// Largest request body sent.
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Attempts per request before giving up.
const ATTEMPTS: usize = 5;
const ARROW_FILE_MAGIC: &[u8] = b"ARROW1";
const PARQUET_MAGIC: &[u8] = b"PAR1";

/// Sends `file` to `topic`; returns the number of requests made.
pub async fn produce(
    server: &Server,
    topic: &str,
    file: &Path,
    rng: &SeededRng,
) -> anyhow::Result<usize> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let bodies = if bytes.starts_with(PARQUET_MAGIC) {
        arrow_bodies(read_parquet(bytes)?)?
    } else if bytes.starts_with(ARROW_FILE_MAGIC) {
        arrow_bodies(read_ipc_file(&bytes)?)?
    } else if is_ipc_stream(&bytes) {
        arrow_bodies(StreamReader::try_new(&bytes[..], None)?.collect::<Result<_, _>>()?)?
    } else {
        json_line_bodies(&bytes)
    };
    let producer = format!("runnel-produce-{:016x}", rng.next_u64());
    let client = reqwest::Client::new();
    let url = server.endpoint(&format!("/v1/topics/{topic}/records"));
    for (seq, (content_type, body)) in bodies.iter().enumerate() {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, *content_type)
                .header("X-Producer-Id", &producer)
                .header("X-Producer-Seq", seq.to_string())
                .body(body.clone());
            match send(server.authorize(request)).await {
                Ok(reply) => {
                    let reply: serde_json::Value = reply.json().await?;
                    println!("{reply}");
                    break;
                }
                // Only a failure to get an answer is retried; the server's own refusals
                // (bad records, unknown topic) are final.
                Err(e) if attempt < ATTEMPTS && e.to_string().starts_with("cannot reach") => {
                    tracing::warn!("request {seq} failed, retrying: {e:#}");
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempt as u64))
                        .await;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(bodies.len())
}

fn read_parquet(bytes: Vec<u8>) -> anyhow::Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))?.build()?;
    Ok(reader.collect::<Result<_, _>>()?)
}

fn read_ipc_file(bytes: &[u8]) -> anyhow::Result<Vec<RecordBatch>> {
    let reader = FileReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)?;
    Ok(reader.collect::<Result<_, _>>()?)
}

/// An IPC stream starts with the continuation marker (or, in the legacy format, a
/// message length) followed by a flatbuffer; JSON starts with `{` or whitespace.
fn is_ipc_stream(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xff, 0xff, 0xff, 0xff])
}

/// Batches re-encoded as IPC streams of at most about [`MAX_REQUEST_BYTES`] each.
fn arrow_bodies(batches: Vec<RecordBatch>) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    let mut bodies = Vec::new();
    let mut current: Vec<RecordBatch> = Vec::new();
    let mut size = 0;
    for batch in batches {
        size += batch.get_array_memory_size();
        current.push(batch);
        if size >= MAX_REQUEST_BYTES {
            bodies.push(encode(&std::mem::take(&mut current))?);
            size = 0;
        }
    }
    if !current.is_empty() {
        bodies.push(encode(&current)?);
    }
    Ok(bodies
        .into_iter()
        .map(|b| ("application/vnd.apache.arrow.stream", b))
        .collect())
}

fn encode(batches: &[RecordBatch]) -> anyhow::Result<Vec<u8>> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batches[0].schema())?;
    for batch in batches {
        writer.write(batch)?;
    }
    Ok(writer.into_inner()?)
}

/// JSON lines cut into requests at line ends.
fn json_line_bodies(bytes: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut bodies = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let mut end = (start + MAX_REQUEST_BYTES).min(bytes.len());
        if end < bytes.len() {
            // Back up to the last line end in range (or take one long line whole).
            end = match bytes[start..end].iter().rposition(|b| *b == b'\n') {
                Some(i) => start + i + 1,
                None => bytes[end..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(bytes.len(), |i| end + i + 1),
            };
        }
        let chunk = &bytes[start..end];
        if chunk.iter().any(|b| !b.is_ascii_whitespace()) {
            bodies.push(("application/x-ndjson", chunk.to_vec()));
        }
        start = end;
    }
    bodies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_cut_at_line_ends() {
        let line = format!("{{\"x\": \"{}\"}}\n", "a".repeat(1000));
        let text = line.repeat(10_000);
        let bodies = json_line_bodies(text.as_bytes());
        assert!(bodies.len() > 1);
        let mut joined = Vec::new();
        for (content_type, body) in &bodies {
            assert_eq!(*content_type, "application/x-ndjson");
            assert!(body.len() <= MAX_REQUEST_BYTES && body.ends_with(b"\n"));
            joined.extend_from_slice(body);
        }
        assert_eq!(joined, text.as_bytes());
        assert!(json_line_bodies(b"\n  \n").is_empty());
    }
}
