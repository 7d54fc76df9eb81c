//! The Iceberg schema of a stream, and batches conformed to a table's schema.
//!
//! Iceberg has timestamps in micro- and nanoseconds only, so second and millisecond
//! timestamp columns of a stream become microsecond columns (a lossless widening). It has
//! no unsigned integers: `UInt64` columns (a top-N's `ROW_NUMBER()`, counts) become `long`,
//! as Spark and Flink write them, and a value above `i64::MAX` is bad data when it arrives
//! rather than a wrapped number. Every other type maps the way `iceberg::arrow` maps it.
//! Batches are written with the Arrow schema the table dictates, because it carries the
//! field ids the Parquet files must hold; a column whose type differs (a widened
//! timestamp, `Utf8View` for `Utf8`, ...) is cast, and a value the cast cannot carry is
//! an error, never a silent null.

use std::sync::Arc;

use arrow::array::{ArrayRef, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use iceberg::arrow::{
    arrow_schema_to_schema_auto_assign_ids, schema_to_arrow_schema, strip_metadata_from_schema,
};
use iceberg::spec::Schema as IcebergSchema;
use runnel_runtime::{Error, Result};

/// The schema of a new table for rows of `stream`; an [`Error::Plan`] names the column
/// whose type Iceberg cannot hold.
pub(crate) fn table_schema(stream: &Schema, table: &str) -> Result<IcebergSchema> {
    for field in stream.fields() {
        let widened = Schema::new(vec![widen(field)]);
        if let Err(e) = arrow_schema_to_schema_auto_assign_ids(&widened) {
            return Err(Error::Plan(format!(
                "column {:?} of type {} cannot be written to Iceberg table {table}: {}",
                field.name(),
                field.data_type(),
                e.message()
            )));
        }
    }
    let widened = Schema::new(stream.fields().iter().map(|f| widen(f)).collect::<Vec<_>>());
    arrow_schema_to_schema_auto_assign_ids(&widened)
        .map_err(|e| Error::Plan(format!("schema of Iceberg table {table}: {e}")))
}

/// Checks that rows of `stream` can be appended to a table whose schema is `existing`:
/// the stream's columns, with the same names, types (after widening) and nullability, in
/// the same order, plus any optional columns another writer added to the table (the
/// sink writes nulls there). Anything else (a column dropped, renamed, retyped, or a
/// required one added) is refused with both column lists.
pub(crate) fn check_compatible(
    existing: &IcebergSchema,
    stream: &Schema,
    table: &str,
) -> Result<()> {
    let wanted = table_schema(stream, table)?;
    let shape = |schema: &IcebergSchema| {
        schema_to_arrow_schema(schema)
            .and_then(|arrow| strip_metadata_from_schema(&arrow))
            .map_err(|e| Error::Internal(format!("schema of Iceberg table {table}: {e}")))
    };
    let (existing, wanted) = (shape(existing)?, shape(&wanted)?);
    if !fits(&existing, &wanted) {
        return Err(Error::Plan(format!(
            "Iceberg table {table} already exists with columns {}, which do not fit the \
             stream's {}",
            describe(&existing),
            describe(&wanted)
        )));
    }
    Ok(())
}

/// Whether `wanted`'s columns are `existing`'s once its extra optional columns are left
/// out.
fn fits(existing: &Schema, wanted: &Schema) -> bool {
    let mut wanted = wanted.fields().iter().peekable();
    for field in existing.fields() {
        match wanted.peek() {
            Some(next) if next.name() == field.name() => {
                if next != &field {
                    return false;
                }
                wanted.next();
            }
            _ if field.is_nullable() => {}
            _ => return false,
        }
    }
    wanted.next().is_none()
}

fn describe(schema: &Schema) -> String {
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let null = if f.is_nullable() { "" } else { " not null" };
            format!("{} {}{null}", f.name(), f.data_type())
        })
        .collect();
    format!("({})", columns.join(", "))
}

/// A second or millisecond timestamp becomes a microsecond one, `UInt64` becomes
/// `Int64`; other fields stay.
fn widen(field: &Field) -> Field {
    match field.data_type() {
        DataType::Timestamp(TimeUnit::Second | TimeUnit::Millisecond, tz) => field
            .clone()
            .with_data_type(DataType::Timestamp(TimeUnit::Microsecond, tz.clone())),
        DataType::UInt64 => field.clone().with_data_type(DataType::Int64),
        _ => field.clone(),
    }
}

/// Turns the stream's batches into batches of the table's Arrow schema.
#[derive(Debug, Clone)]
pub(crate) struct Conformer {
    target: SchemaRef,
}

impl Conformer {
    /// Conforms batches to the current schema of a table.
    pub fn new(table_schema: &IcebergSchema) -> Result<Self> {
        let target = schema_to_arrow_schema(table_schema)
            .map_err(|e| Error::Internal(format!("Arrow schema of an Iceberg table: {e}")))?;
        Ok(Conformer {
            target: Arc::new(target),
        })
    }

    /// The table's Arrow schema, with its field ids.
    #[cfg(test)]
    pub fn schema(&self) -> &SchemaRef {
        &self.target
    }

    /// `batch` with the table's schema: columns matched by position, cast where the types
    /// differ. A batch that does not fit (or nulls in a required column) is bad data.
    pub fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns = if batch.num_columns() == self.target.fields().len() {
            batch.columns().to_vec()
        } else {
            self.by_name(batch)?
        };
        let columns = columns
            .iter()
            .zip(self.target.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    return Ok(column.clone());
                }
                let strict = CastOptions {
                    safe: false,
                    ..CastOptions::default()
                };
                cast_with_options(column, field.data_type(), &strict).map_err(|e| {
                    Error::Data(format!(
                        "column {:?} does not fit the table: {e}",
                        field.name()
                    ))
                })
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        RecordBatch::try_new(self.target.clone(), columns)
            .map_err(|e| Error::Data(format!("rows do not fit the table: {e}")))
    }

    /// The batch's columns in the table's order, matched by name, nulls for optional
    /// columns the stream lacks (ones another writer added to the table).
    fn by_name(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let schema = batch.schema();
        self.target
            .fields()
            .iter()
            .map(|field| match schema.index_of(field.name()) {
                Ok(i) => Ok(batch.column(i).clone()),
                Err(_) if field.is_nullable() => {
                    Ok(new_null_array(field.data_type(), batch.num_rows()))
                }
                Err(_) => Err(Error::Data(format!(
                    "a batch of {} columns lacks the table's required column {:?}",
                    batch.num_columns(),
                    field.name()
                ))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};

    use super::*;

    fn stream() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ])
    }

    #[test]
    fn millisecond_timestamps_are_widened_and_cast() {
        let schema = table_schema(&stream(), "t").unwrap();
        let conformer = Conformer::new(&schema).unwrap();
        let ts = conformer.schema().field(2).data_type().clone();
        assert_eq!(ts, DataType::Timestamp(TimeUnit::Microsecond, None));
        let batch = RecordBatch::try_new(
            Arc::new(stream()),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a"), None])),
                Arc::new(TimestampMillisecondArray::from(vec![1_000, 2_500])),
            ],
        )
        .unwrap();
        let conformed = conformer.conform(&batch).unwrap();
        assert_eq!(conformed.schema(), *conformer.schema());
        let micros = conformed.column(2).to_data().buffers()[0]
            .typed_data::<i64>()
            .to_vec();
        assert_eq!(micros, vec![1_000_000, 2_500_000]);
    }

    #[test]
    fn unsigned_longs_become_longs_and_a_value_beyond_is_bad_data() {
        let stream = Schema::new(vec![Field::new("rn", DataType::UInt64, false)]);
        let conformer = Conformer::new(&table_schema(&stream, "t").unwrap()).unwrap();
        assert_eq!(conformer.schema().field(0).data_type(), &DataType::Int64);
        let batch = |v: u64| {
            RecordBatch::try_new(
                Arc::new(stream.clone()),
                vec![Arc::new(arrow::array::UInt64Array::from(vec![1, v]))],
            )
            .unwrap()
        };
        let conformed = conformer.conform(&batch(7)).unwrap();
        assert_eq!(
            conformed.column(0).as_ref(),
            &Int64Array::from(vec![1, 7]) as &dyn arrow::array::Array
        );
        let err = conformer.conform(&batch(u64::MAX)).unwrap_err();
        assert!(matches!(err, Error::Data(_)), "{err}");
    }

    #[test]
    fn unsupported_types_and_other_shapes_are_refused() {
        let interval = DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano);
        let bad = Schema::new(vec![Field::new("n", interval, false)]);
        let err = table_schema(&bad, "t").unwrap_err();
        assert!(
            matches!(&err, Error::Plan(m) if m.contains("\"n\"")),
            "{err}"
        );

        let existing = table_schema(&stream(), "t").unwrap();
        check_compatible(&existing, &stream(), "t").unwrap();
        let mut fields = stream().fields().to_vec();
        fields.swap(0, 1);
        let err = check_compatible(&existing, &Schema::new(fields), "t").unwrap_err();
        assert!(matches!(err, Error::Plan(_)), "{err}");
        let nullable_id = Schema::new(
            stream()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        );
        assert!(check_compatible(&existing, &nullable_id, "t").is_err());
    }

    #[test]
    fn an_added_optional_column_fits_and_is_written_as_nulls() {
        let mut fields = stream().fields().to_vec();
        fields.insert(1, Arc::new(Field::new("note", DataType::Utf8, true)));
        let evolved = table_schema(&Schema::new(fields.clone()), "t").unwrap();
        check_compatible(&evolved, &stream(), "t").unwrap();
        let batch = RecordBatch::try_new(
            Arc::new(stream()),
            vec![
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(StringArray::from(vec![Some("a")])),
                Arc::new(TimestampMillisecondArray::from(vec![1_000])),
            ],
        )
        .unwrap();
        let conformed = Conformer::new(&evolved).unwrap().conform(&batch).unwrap();
        assert_eq!(conformed.num_columns(), 4);
        assert_eq!(conformed.column(1).null_count(), 1);
        assert_eq!(conformed.column(2).as_ref(), batch.column(1).as_ref());

        // A required column added, or one of the stream's dropped: refused.
        fields[1] = Arc::new(Field::new("note", DataType::Utf8, false));
        let required = table_schema(&Schema::new(fields), "t").unwrap();
        let err = check_compatible(&required, &stream(), "t").unwrap_err();
        assert!(
            matches!(&err, Error::Plan(m) if m.contains("note")),
            "{err}"
        );
        let narrower = Schema::new(stream().fields()[..2].to_vec());
        let dropped = table_schema(&narrower, "t").unwrap();
        assert!(check_compatible(&dropped, &stream(), "t").is_err());
    }

    #[test]
    fn a_batch_of_another_width_is_bad_data() {
        let conformer = Conformer::new(&table_schema(&stream(), "t").unwrap()).unwrap();
        let narrow = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        assert!(matches!(conformer.conform(&narrow), Err(Error::Data(_))));
    }
}
