//! JSON lines into record batches, with Arrow's JSON decoder.
//!
//! The happy path hands the whole body to one decoder built from the topic schema
//! (strict: a key the schema lacks is an error), which fills the arrays column by column.
//! Errors are rare and must name a line, which the bulk decoder cannot do: only then is
//! the body decoded again line by line to find the first bad line, and that one line is
//! parsed once more with serde to say which field is unknown, missing or null.
//!
//! Values follow Arrow's JSON rules: a `TIMESTAMP` column takes an RFC 3339 string or an
//! integer in the column's unit (epoch milliseconds for `TIMESTAMP(3)`, the unit of SQL
//! timestamps and of the Nexmark tables); an absent or `null` nullable field is null.

use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::ReaderBuilder;
use arrow::json::reader::Decoder;
use arrow::record_batch::RecordBatch;
use serde_json::Value;

use super::BadInput;

/// Rows per decoded batch.
const BATCH_ROWS: usize = 8 * 1024;

fn decoder(schema: &SchemaRef) -> Result<Decoder, ArrowError> {
    ReaderBuilder::new(schema.clone())
        .with_batch_size(BATCH_ROWS)
        .with_strict_mode(true)
        .build_decoder()
}

/// Decodes every record of `body`; the first bad line fails the whole body.
pub fn decode(schema: &SchemaRef, body: &[u8]) -> Result<Vec<RecordBatch>, BadInput> {
    super::depth::check(body)?;
    let batches = decode_all(schema, body).map_err(|error| locate(schema, body, error))?;
    super::strict::check(schema, body)?;
    Ok(batches)
}

/// The line (from 1) of record `row` (from 0): blank lines hold no record.
pub fn line_of_record(body: &[u8], row: usize) -> usize {
    body.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .nth(row)
        .map_or(0, |(index, _)| index + 1)
}

/// Feeds `input` to `decoder` and collects the batches it completes.
fn feed(
    decoder: &mut Decoder,
    mut input: &[u8],
    out: &mut Vec<RecordBatch>,
) -> Result<(), ArrowError> {
    while !input.is_empty() {
        let read = decoder.decode(input)?;
        input = &input[read..];
        // The decoder stops early only when it holds a full batch; flushing makes room.
        match decoder.flush()? {
            Some(batch) => out.push(batch),
            None if read == 0 => {
                return Err(ArrowError::JsonError("the decoder made no progress".into()));
            }
            None => {}
        }
    }
    Ok(())
}

fn decode_all(schema: &SchemaRef, body: &[u8]) -> Result<Vec<RecordBatch>, ArrowError> {
    let mut decoder = decoder(schema)?;
    let mut batches = Vec::new();
    feed(&mut decoder, body, &mut batches)?;
    batches.extend(decoder.flush()?);
    Ok(batches)
}

/// Finds the first line the decoder refuses and explains it.
fn locate(schema: &SchemaRef, body: &[u8], bulk: ArrowError) -> BadInput {
    let Ok(mut decoder) = decoder(schema) else {
        return BadInput(arrow_message(&bulk));
    };
    let mut scratch = Vec::new();
    for (index, line) in body.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let result = feed(&mut decoder, line, &mut scratch).and_then(|()| decoder.flush());
        scratch.clear();
        if let Err(error) = result {
            return BadInput(format!(
                "line {}: {}",
                index + 1,
                diagnose(schema, line, &error)
            ));
        }
    }
    // Every line decodes alone: the body fails only as a whole.
    BadInput(arrow_message(&bulk))
}

/// What is wrong with one `line` that the decoder refused with `error`.
fn diagnose(schema: &Schema, line: &[u8], error: &ArrowError) -> String {
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(e) => {
            return format!(
                "malformed JSON at column {}: {}",
                e.column(),
                serde_reason(&e)
            );
        }
    };
    let Some(object) = value.as_object() else {
        return format!("expected a JSON object, got {}", json_kind(&value));
    };
    if let Some(unknown) = object.keys().find(|k| schema.field_with_name(k).is_err()) {
        let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        return format!(
            "unknown field {unknown:?}; the topic's fields are {}",
            known.join(", ")
        );
    }
    for field in schema.fields().iter().filter(|f| !f.is_nullable()) {
        match object.get(field.name()) {
            None => return format!("field {:?} is missing and must not be null", field.name()),
            Some(Value::Null) => {
                return format!("field {:?} is null but must not be", field.name());
            }
            Some(_) => {}
        }
    }
    let message = arrow_message(error);
    match message
        .strip_prefix("whilst decoding field '")
        .and_then(|rest| rest.split_once("': "))
    {
        Some((field, reason)) => format!("field {field:?}: {reason}"),
        None => message,
    }
}

/// Arrow's message without its "Json error: " prefix.
fn arrow_message(error: &ArrowError) -> String {
    match error {
        ArrowError::JsonError(message) => message.clone(),
        other => other.to_string(),
    }
}

/// serde's message without its " at line L column C" suffix (the line is always 1).
fn serde_reason(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rsplit_once(" at line ") {
        Some((reason, _)) => reason.to_owned(),
        None => text,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, TimeUnit};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ]))
    }

    fn error(body: &str) -> String {
        decode(&schema(), body.as_bytes()).unwrap_err().0
    }

    #[test]
    fn lines_decode_into_columns_with_both_timestamp_forms() {
        let body = "{\"id\": 1, \"name\": \"a\", \"at\": \"1970-01-01T00:00:01.5Z\"}\n\n\
                    {\"id\": 2, \"at\": 2000}\n{\"id\": 3, \"name\": null, \"at\": \"1970-01-01T01:00:00+01:00\"}";
        let batches = decode(&schema(), body.as_bytes()).unwrap();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.values(), &[1, 2, 3]);
        let names = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(
            names.iter().collect::<Vec<_>>(),
            vec![Some("a"), None, None]
        );
        let at = batch
            .column(2)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>();
        assert_eq!(at.unwrap().values(), &[1500, 2000, 0]);
    }

    #[test]
    fn large_bodies_are_cut_into_batches() {
        let body: String = (0..BATCH_ROWS as i64 * 2 + 3)
            .map(|i| format!("{{\"id\": {i}, \"at\": {i}}}\n"))
            .collect();
        let batches = decode(&schema(), body.as_bytes()).unwrap();
        let rows: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(rows, vec![BATCH_ROWS, BATCH_ROWS, 3]);
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let good = "{\"id\": 1, \"at\": 1}\n";
        for (bad, expected) in [
            ("{\"id\": 1, \"at\": 1", "line 2: malformed JSON"),
            (
                "{\"id\": \"x\", \"at\": 1}",
                "line 2: field \"id\": failed to parse \"x\"",
            ),
            ("{\"id\": 1, \"at\": \"yesterday\"}", "line 2: field \"at\""),
            (
                "{\"id\": 1, \"at\": 1, \"zip\": 3}",
                "line 2: unknown field \"zip\"",
            ),
            ("{\"at\": 1}", "line 2: field \"id\" is missing"),
            ("{\"id\": null, \"at\": 1}", "line 2: field \"id\" is null"),
            (
                "{\"id\": 1, \"name\": 5, \"at\": 1}",
                "line 2: field \"name\"",
            ),
            ("[1, 2]", "line 2: expected a JSON object, got an array"),
        ] {
            let message = error(&format!("{good}{bad}\n{good}"));
            assert!(message.starts_with(expected), "{bad}: {message}");
        }
    }

    #[test]
    fn a_bad_line_far_into_a_large_body_is_found() {
        let mut body: String = (0..BATCH_ROWS + 10)
            .map(|i| format!("{{\"id\": {i}, \"at\": {i}}}\n"))
            .collect();
        body.push_str("{\"id\": 1, \"at\": true}\n");
        let message = error(&body);
        assert!(
            message.starts_with(&format!("line {}: field \"at\"", BATCH_ROWS + 11)),
            "{message}"
        );
    }
}
