//! Timestamps are held to the years 0001 to 9999.
//!
//! Arrow stores a timestamp as any 64-bit count of its unit, but what reads it later does
//! arithmetic on it (window bounds, lateness, unit conversions for sinks) that overflows
//! near the ends of that range. A value outside the years SQL and RFC 3339 can write is
//! no real event time: it is refused at the door, where the sender can still fix it,
//! instead of failing every job that reads the topic, on every restart.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use arrow::record_batch::RecordBatch;

/// 0001-01-01T00:00:00Z in epoch milliseconds.
pub const MIN_MILLIS: i64 = -62_135_596_800_000;
/// 9999-12-31T23:59:59.999Z in epoch milliseconds.
pub const MAX_MILLIS: i64 = 253_402_300_799_999;

/// A timestamp out of range: the row (counted over all batches, from 0) and the field.
#[derive(Debug, PartialEq, Eq)]
pub struct OutOfRange {
    pub row: usize,
    pub field: String,
    pub value: i64,
}

/// Finds the first timestamp of `batches` outside the years 0001 to 9999.
pub fn check(batches: &[RecordBatch]) -> Result<(), OutOfRange> {
    let mut rows_before = 0;
    for batch in batches {
        for (column, field) in batch.columns().iter().zip(batch.schema().fields()) {
            let DataType::Timestamp(unit, _) = column.data_type() else {
                continue;
            };
            let (min, max) = bounds(*unit);
            let Ok(values) = arrow::compute::cast(column, &DataType::Int64) else {
                continue;
            };
            let values = values.as_primitive::<Int64Type>();
            let bad = (0..values.len())
                .find(|&i| values.is_valid(i) && !(min..=max).contains(&values.value(i)));
            if let Some(i) = bad {
                return Err(OutOfRange {
                    row: rows_before + i,
                    field: field.name().clone(),
                    value: values.value(i),
                });
            }
        }
        rows_before += batch.num_rows();
    }
    Ok(())
}

/// The range in `unit`.
fn bounds(unit: TimeUnit) -> (i64, i64) {
    match unit {
        TimeUnit::Second => (MIN_MILLIS / 1000, MAX_MILLIS / 1000),
        TimeUnit::Millisecond => (MIN_MILLIS, MAX_MILLIS),
        TimeUnit::Microsecond => (MIN_MILLIS * 1000, MAX_MILLIS * 1000 + 999),
        // 64 bits of nanoseconds span only the years 1677 to 2262.
        TimeUnit::Nanosecond => (i64::MIN, i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, TimestampMillisecondArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(times: Vec<Option<i64>>) -> RecordBatch {
        let n = times.len() as i64;
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(TimestampMillisecondArray::from(times)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn the_years_one_to_9999_pass_and_nulls_are_not_judged() {
        let ok = batch(vec![Some(MIN_MILLIS), None, Some(0), Some(MAX_MILLIS)]);
        assert_eq!(check(&[ok]), Ok(()));
    }

    #[test]
    fn the_first_value_out_of_range_is_named_by_its_row() {
        let first = batch(vec![Some(1), Some(2)]);
        let second = batch(vec![Some(3), Some(MAX_MILLIS + 1), Some(i64::MIN)]);
        assert_eq!(
            check(&[first, second]),
            Err(OutOfRange {
                row: 3,
                field: "at".into(),
                value: MAX_MILLIS + 1
            })
        );
    }

    #[test]
    fn bounds_in_every_unit_are_the_same_instants() {
        assert_eq!(bounds(TimeUnit::Second).0 * 1000, MIN_MILLIS);
        assert_eq!(bounds(TimeUnit::Microsecond).1 / 1_000, MAX_MILLIS);
    }
}
