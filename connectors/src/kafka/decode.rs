//! JSON record values to Arrow rows, with metadata columns, a batch at a time.
//!
//! The values of one poll's records of a partition are decoded together (one pass of
//! arrow's JSON decoder over the concatenated values). Only when that fails is each
//! record decoded alone, to find the bad ones: the policy then fails the job naming the
//! first bad offset, or skips them as rejected rows.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use arrow::json::ReaderBuilder;
use runnel_runtime::{Error, Result, rejected_schema};

/// The metadata a Kafka record offers, by `METADATA FROM` key.
pub(crate) const METADATA: &[(&str, DataType)] = &[
    ("partition", DataType::Int32),
    ("offset", DataType::Int64),
    (
        "timestamp",
        DataType::Timestamp(TimeUnit::Millisecond, None),
    ),
    ("key", DataType::Utf8),
    ("headers", DataType::Utf8),
];

/// One record as read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Record {
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Headers as a JSON object text (values as UTF-8, lossy), when any.
    pub headers: Option<String>,
}

enum Column {
    /// A field of the JSON value: its index in the value schema.
    Value(usize),
    Meta(&'static str),
}

/// Builds a source's rows from its records.
pub(crate) struct Decoder {
    schema: SchemaRef,
    value_schema: SchemaRef,
    columns: Vec<Column>,
}

/// What decoding one partition's records gave.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub rows: Option<RecordBatch>,
    pub rejected: Option<RecordBatch>,
}

impl Decoder {
    /// `schema`: all declared columns; `metadata`: `(column, key)` of those that are
    /// metadata.
    pub fn new(schema: &SchemaRef, metadata: &[(String, String)]) -> Result<Self> {
        let mut value_fields = Vec::new();
        let mut columns = Vec::new();
        for field in schema.fields() {
            match metadata.iter().find(|(c, _)| c == field.name()) {
                Some((_, key)) => {
                    let (key, _) = METADATA
                        .iter()
                        .find(|(k, _)| k == key)
                        .ok_or_else(|| Error::Plan(format!("kafka offers no metadata '{key}'")))?;
                    columns.push(Column::Meta(key));
                }
                None => {
                    columns.push(Column::Value(value_fields.len()));
                    value_fields.push(field.clone());
                }
            }
        }
        Ok(Decoder {
            schema: schema.clone(),
            value_schema: Arc::new(Schema::new(value_fields)),
            columns,
        })
    }

    /// Decodes `records` of `partition`; bad records are an error (`fail`) or rejected
    /// rows (`skip`).
    pub fn decode(&self, partition: u32, records: &[Record], skip_bad: bool) -> Result<Decoded> {
        let all: Vec<&Record> = records.iter().collect();
        if let Ok(values) = self.values(&all) {
            let rows = self.assemble(partition, records.iter(), values)?;
            return Ok(Decoded {
                rows: Some(rows),
                rejected: None,
            });
        }
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for record in records {
            match self.values(&[record]) {
                Ok(_) => good.push(record),
                Err(e) if skip_bad => bad.push((record, e)),
                Err(e) => {
                    return Err(Error::Data(format!(
                        "kafka partition {partition} offset {}: cannot decode the record \
                         ({e}); set bad-records = 'skip' to skip such records",
                        record.offset
                    )));
                }
            }
        }
        let rows = match good.is_empty() {
            true => None,
            false => {
                let values = self.values(&good)?;
                Some(self.assemble(partition, good.into_iter(), values)?)
            }
        };
        Ok(Decoded {
            rows,
            rejected: Some(rejected(partition, &bad)?),
        })
    }

    /// The JSON values of `records` as one batch of the value schema.
    fn values(&self, records: &[&Record]) -> Result<RecordBatch> {
        let mut decoder = ReaderBuilder::new(self.value_schema.clone())
            .with_batch_size(records.len().max(1))
            .build_decoder()?;
        let mut count = 0;
        for record in records {
            let value = record
                .value
                .as_deref()
                .ok_or_else(|| Error::Data("the record has no value".into()))?;
            let rows_before = decoder.len();
            let read = decoder.decode(value)?;
            decoder.decode(b"\n")?;
            if read != value.len() || decoder.len() != rows_before + 1 {
                return Err(Error::Data("the value is not one JSON object".into()));
            }
            count += 1;
        }
        let batch = decoder
            .flush()?
            .unwrap_or_else(|| RecordBatch::new_empty(self.value_schema.clone()));
        debug_assert_eq!(batch.num_rows(), count);
        Ok(batch)
    }

    /// The declared columns in order: value fields from `values`, metadata from the
    /// records.
    fn assemble<'a>(
        &self,
        partition: u32,
        records: impl Iterator<Item = &'a Record> + Clone,
        values: RecordBatch,
    ) -> Result<RecordBatch> {
        let n = values.num_rows();
        let columns: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|column| match column {
                Column::Value(i) => values.column(*i).clone(),
                Column::Meta(key) => metadata_array(key, partition, records.clone(), n),
            })
            .collect();
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

fn metadata_array<'a>(
    key: &str,
    partition: u32,
    records: impl Iterator<Item = &'a Record>,
    n: usize,
) -> ArrayRef {
    let text = |b: &Option<Vec<u8>>| {
        b.as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    match key {
        "partition" => Arc::new(Int32Array::from(vec![partition as i32; n])),
        "offset" => Arc::new(records.map(|r| r.offset).collect::<Int64Array>()),
        "timestamp" => Arc::new(
            records
                .map(|r| r.timestamp)
                .collect::<TimestampMillisecondArray>(),
        ),
        "key" => Arc::new(records.map(|r| text(&r.key)).collect::<StringArray>()),
        _ => Arc::new(records.map(|r| r.headers.clone()).collect::<StringArray>()),
    }
}

/// Rejected records as rows of the runtime's rejected schema.
fn rejected(partition: u32, bad: &[(&Record, Error)]) -> Result<RecordBatch> {
    let mut record = BinaryBuilder::new();
    for (r, _) in bad {
        record.append_option(r.value.as_deref());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from(vec![partition; bad.len()])),
        Arc::new(
            bad.iter()
                .map(|(r, _)| r.offset as u64)
                .collect::<UInt64Array>(),
        ),
        Arc::new(
            bad.iter()
                .map(|(_, e)| Some(e.to_string()))
                .collect::<StringArray>(),
        ),
        Arc::new(record.finish()),
    ];
    Ok(RecordBatch::try_new(rejected_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::Field;

    use super::*;

    fn record(offset: i64, value: &str) -> Record {
        Record {
            offset,
            timestamp: Some(1_000 + offset),
            key: Some(b"k".to_vec()),
            value: Some(value.as_bytes().to_vec()),
            headers: None,
        }
    }

    fn decoder() -> Decoder {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("off", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let metadata = [
            ("off".into(), "offset".into()),
            ("ts".into(), "timestamp".into()),
        ];
        Decoder::new(&schema, &metadata).unwrap()
    }

    #[test]
    fn values_and_metadata_in_declared_order() {
        let records = [
            record(7, r#"{"id": 1, "name": "a"}"#),
            record(8, r#"{"id": 2}"#),
        ];
        let out = decoder().decode(3, &records, false).unwrap();
        let rows = out.rows.unwrap();
        assert_eq!(rows.num_rows(), 2);
        let off = rows
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(off.values(), &[7, 8]);
        assert!(out.rejected.is_none());
    }

    #[test]
    fn bad_records_fail_naming_the_offset_or_are_skipped() {
        let records = [
            record(1, r#"{"id": 1}"#),
            record(2, "not json"),
            record(3, r#"{"name": "no id"}"#),
            record(4, r#"{"id": 4}"#),
        ];
        let err = decoder()
            .decode(0, &records, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("offset 2"), "{err}");
        let out = decoder().decode(0, &records, true).unwrap();
        assert_eq!(out.rows.unwrap().num_rows(), 2);
        let rejected = out.rejected.unwrap();
        let offsets = rejected
            .column(1)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap();
        assert_eq!(offsets.values(), &[2, 3]);
    }
}
