//! An Arrow IPC stream into record batches of the topic's schema.
//!
//! The stream's columns are matched to the topic's by name, so a client may send them
//! in any order; a nullable topic field the stream lacks becomes nulls, as an absent key
//! does in JSON lines. Types must be the topic's own: no silent casts.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;

use arrow::array::{ArrayRef, new_null_array};
use arrow::buffer::Buffer;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::StreamDecoder;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use bytes::Bytes;

use super::BadInput;

/// Decodes every batch of the stream in `body` and fits it to `schema`.
///
/// Every array is validated in full (offsets, UTF-8, dictionary keys, child lengths)
/// before anything uses it. A malformed stream that still trips a panic inside the
/// decoder is refused like any other malformed stream: the panic stays in this request.
pub fn decode(schema: &SchemaRef, body: Bytes) -> Result<Vec<RecordBatch>, BadInput> {
    std::panic::catch_unwind(AssertUnwindSafe(|| decode_stream(schema, body)))
        .unwrap_or_else(|_| Err(BadInput("malformed Arrow IPC stream".into())))
}

fn decode_stream(schema: &SchemaRef, body: Bytes) -> Result<Vec<RecordBatch>, BadInput> {
    let malformed = |e| BadInput(format!("malformed Arrow IPC stream: {e}"));
    let mut decoder = StreamDecoder::new();
    let mut buffer = Buffer::from(body);
    let mut batches = Vec::new();
    let mut plan: Option<Vec<Source>> = None;
    while !buffer.is_empty() {
        let Some(batch) = decoder.decode(&mut buffer).map_err(malformed)? else {
            continue;
        };
        let plan = match &plan {
            Some(plan) => plan,
            None => plan.insert(match_columns(schema, &batch.schema())?),
        };
        validate(&batch)?;
        batches.push(fit(schema, plan, &batch)?);
    }
    decoder.finish().map_err(malformed)?;
    if let Some(stream) = decoder.schema() {
        match_columns(schema, &stream)?;
    }
    Ok(batches)
}

/// Checks every buffer of `batch` against its type, so no later reader can be led out
/// of bounds by offsets or lengths the sender made up.
fn validate(batch: &RecordBatch) -> Result<(), BadInput> {
    for (column, field) in batch.columns().iter().zip(batch.schema().fields()) {
        if column.len() != batch.num_rows() {
            return Err(BadInput(format!(
                "malformed Arrow IPC stream: field {:?} has {} rows, the batch {}",
                field.name(),
                column.len(),
                batch.num_rows()
            )));
        }
        column.to_data().validate_full().map_err(|e| {
            BadInput(format!(
                "malformed Arrow IPC stream: field {:?}: {e}",
                field.name()
            ))
        })?;
    }
    Ok(())
}

/// Where a topic column comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Column(usize),
    Nulls,
}

fn match_columns(topic: &Schema, stream: &Schema) -> Result<Vec<Source>, BadInput> {
    let mut by_name = HashMap::with_capacity(stream.fields().len());
    for (i, field) in stream.fields().iter().enumerate() {
        if topic.field_with_name(field.name()).is_err() {
            return Err(BadInput(format!(
                "unknown field {:?}; the topic's fields are {}",
                field.name(),
                field_names(topic)
            )));
        }
        if by_name.insert(field.name().as_str(), i).is_some() {
            return Err(BadInput(format!("field {:?} appears twice", field.name())));
        }
    }
    topic
        .fields()
        .iter()
        .map(|field| match by_name.get(field.name().as_str()) {
            Some(&i) => {
                let got = stream.field(i).data_type();
                if got.equals_datatype(field.data_type()) {
                    Ok(Source::Column(i))
                } else {
                    Err(BadInput(format!(
                        "field {:?} has type {got}; the topic expects {}",
                        field.name(),
                        field.data_type()
                    )))
                }
            }
            None if field.is_nullable() => Ok(Source::Nulls),
            None => Err(BadInput(format!(
                "field {:?} is missing and must not be null",
                field.name()
            ))),
        })
        .collect()
}

fn fit(schema: &SchemaRef, plan: &[Source], batch: &RecordBatch) -> Result<RecordBatch, BadInput> {
    let rows = batch.num_rows();
    let columns: Vec<ArrayRef> = plan
        .iter()
        .zip(schema.fields())
        .map(|(source, field)| match *source {
            Source::Column(i) => batch.column(i).clone(),
            Source::Nulls => new_null_array(field.data_type(), rows),
        })
        .collect();
    for (column, field) in columns.iter().zip(schema.fields()) {
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(BadInput(format!(
                "field {:?} holds {} nulls but must not be null",
                field.name(),
                column.null_count()
            )));
        }
    }
    let options = RecordBatchOptions::new()
        .with_match_field_names(false)
        .with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options)
        .map_err(|e| BadInput(format!("the batch does not fit the topic: {e}")))
}

fn field_names(schema: &Schema) -> String {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};
    use arrow::ipc::writer::StreamWriter;

    use super::*;

    fn topic() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    fn stream(batches: &[RecordBatch]) -> Bytes {
        let mut writer = StreamWriter::try_new(Vec::new(), &batches[0].schema()).unwrap();
        for batch in batches {
            writer.write(batch).unwrap();
        }
        writer.into_inner().unwrap().into()
    }

    fn batch(fields: Vec<Field>, columns: Vec<ArrayRef>) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    #[test]
    fn columns_are_matched_by_name_and_absent_nullable_ones_become_null() {
        let reordered = batch(
            vec![
                Field::new("name", DataType::Utf8, true),
                Field::new("id", DataType::Int64, true),
            ],
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Int64Array::from(vec![1, 2])),
            ],
        );
        let only_ids = batch(
            vec![Field::new("id", DataType::Int64, false)],
            vec![Arc::new(Int64Array::from(vec![3]))],
        );
        let first = decode(&topic(), stream(&[reordered])).unwrap();
        assert_eq!(first[0].schema(), topic());
        assert_eq!(first[0].column(0).as_ref(), &Int64Array::from(vec![1, 2]));
        let second = decode(&topic(), stream(&[only_ids])).unwrap();
        assert_eq!(second[0].column(1).null_count(), 1);
    }

    #[test]
    fn foreign_schemas_nulls_and_garbage_are_refused() {
        let id = |nullable| Field::new("id", DataType::Int64, nullable);
        let cases = [
            (
                stream(&[batch(
                    vec![id(false), Field::new("zip", DataType::Int64, false)],
                    vec![
                        Arc::new(Int64Array::from(vec![1])),
                        Arc::new(Int64Array::from(vec![1])),
                    ],
                )]),
                "unknown field \"zip\"",
            ),
            (
                stream(&[batch(
                    vec![Field::new("id", DataType::Utf8, false)],
                    vec![Arc::new(StringArray::from(vec!["1"]))],
                )]),
                "field \"id\" has type Utf8",
            ),
            (
                stream(&[batch(
                    vec![Field::new("name", DataType::Utf8, false)],
                    vec![Arc::new(StringArray::from(vec!["a"]))],
                )]),
                "field \"id\" is missing",
            ),
            (
                stream(&[batch(
                    vec![id(true)],
                    vec![Arc::new(Int64Array::from(vec![Some(1), None]))],
                )]),
                "field \"id\" holds 1 nulls",
            ),
            (
                Bytes::from_static(b"not arrow at all"),
                "malformed Arrow IPC stream",
            ),
        ];
        for (body, expected) in cases {
            let message = decode(&topic(), body).unwrap_err().0;
            assert!(message.starts_with(expected), "{expected}: {message}");
        }
    }

    #[test]
    fn a_truncated_stream_is_refused() {
        let full = stream(&[batch(
            vec![Field::new("id", DataType::Int64, false)],
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )]);
        let cut = full.slice(..full.len() - 20);
        let message = decode(&topic(), cut).unwrap_err().0;
        assert!(
            message.starts_with("malformed Arrow IPC stream"),
            "{message}"
        );
    }
}
