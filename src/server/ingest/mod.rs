//! Turning a request body into record batches of a topic's schema.
//!
//! Both formats are decoded column-wise by Arrow (the JSON reader fills arrays straight
//! from the text; IPC arrives as arrays already), so ingestion costs no per-record Rust
//! struct. A body is decoded completely before anything is appended: one bad record
//! rejects the whole request, and the error names the line (JSON lines) and the field.

mod depth;
mod ipc;
mod ndjson;
mod strict;
mod time_range;

#[cfg(test)]
mod fuzz_tests;

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;

/// Media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
/// Media type of JSON lines: one JSON object per line.
pub const NDJSON: &str = "application/x-ndjson";

/// The encodings a body may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    ArrowStream,
}

impl Format {
    /// The format named by a `Content-Type` value (parameters such as `charset` are
    /// ignored); `None` for any other media type.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case(NDJSON) {
            Some(Format::JsonLines)
        } else if essence.eq_ignore_ascii_case(ARROW_STREAM) {
            Some(Format::ArrowStream)
        } else {
            None
        }
    }
}

/// Why a body was refused: the sender's fault, with the line and field when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decodes `body` into batches carrying exactly `schema`; at least one row.
///
/// `event_time` names columns a job reads as its event time: even where the topic lets
/// them be null, a record without one is refused here, since no job could place it.
/// Every timestamp must lie in the years 0001 to 9999 ([`time_range`]).
pub fn decode(
    format: Format,
    schema: &SchemaRef,
    body: Bytes,
    event_time: &[String],
) -> Result<Vec<RecordBatch>, BadInput> {
    let strict = required(schema, event_time);
    let batches = match format {
        Format::JsonLines => ndjson::decode(&strict, &body)?,
        Format::ArrowStream => ipc::decode(&strict, body.clone())?,
    };
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Err(BadInput("the body holds no records".into()));
    }
    if let Err(bad) = time_range::check(&batches) {
        let at = match format {
            Format::JsonLines => format!("line {}", ndjson::line_of_record(&body, bad.row)),
            Format::ArrowStream => format!("record {}", bad.row + 1),
        };
        return Err(BadInput(format!(
            "{at}: field {:?}: timestamp {} is outside the years 0001 to 9999",
            bad.field, bad.value
        )));
    }
    // Back to the topic's own schema: only nullability differed.
    batches
        .into_iter()
        .map(|b| b.with_schema(schema.clone()))
        .collect::<Result<_, _>>()
        .map_err(|e| BadInput(format!("the records do not fit the topic: {e}")))
}

/// `schema` with the `event_time` columns made non-nullable.
fn required(schema: &SchemaRef, event_time: &[String]) -> SchemaRef {
    if event_time.is_empty() {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let needed = event_time.iter().any(|c| c == f.name());
            f.as_ref().clone().with_nullable(f.is_nullable() && !needed)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_matched_on_their_essence() {
        for (value, expected) in [
            ("application/x-ndjson", Some(Format::JsonLines)),
            (
                "Application/X-NDJSON; charset=utf-8",
                Some(Format::JsonLines),
            ),
            (
                "application/vnd.apache.arrow.stream",
                Some(Format::ArrowStream),
            ),
            ("application/json", None),
            ("application/vnd.apache.arrow.file", None),
            ("", None),
        ] {
            assert_eq!(Format::from_content_type(value), expected, "{value}");
        }
    }
}
