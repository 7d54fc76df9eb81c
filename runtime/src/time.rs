//! Reading event time out of Arrow columns.

use arrow::array::{Array, ArrayRef, AsArray, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};

use crate::error::{Error, Result};
use crate::message::Millis;

/// Whether a column type can carry event time: any timestamp, or Int64 milliseconds.
pub fn is_event_time_type(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Timestamp(_, _) | DataType::Int64)
}

/// The column as event-time milliseconds. Nulls are refused: a row without event time
/// cannot be placed in any window, and dropping it silently would lose data.
pub fn event_time_millis(column: &ArrayRef, name: &str) -> Result<TimestampMillisecondArray> {
    if column.null_count() > 0 {
        return Err(Error::Data(format!(
            "event-time column `{name}` has {} null value(s)",
            column.null_count()
        )));
    }
    let millis = match column.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, None) => column.clone(),
        DataType::Timestamp(_, _) | DataType::Int64 => {
            cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?
        }
        other => {
            return Err(Error::Plan(format!(
                "event-time column `{name}` must be a timestamp or BIGINT milliseconds, not {other}"
            )));
        }
    };
    Ok(millis.as_primitive::<TimestampMillisecondType>().clone())
}

/// Largest event time in the column, if it has rows.
pub fn max_event_time(column: &ArrayRef, name: &str) -> Result<Option<Millis>> {
    let millis = event_time_millis(column, name)?;
    Ok(arrow::compute::max(&millis))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, TimestampSecondArray};

    use super::*;

    #[test]
    fn seconds_become_millis_and_nulls_are_refused() {
        let secs: ArrayRef = Arc::new(TimestampSecondArray::from(vec![1, 3, 2]));
        assert_eq!(max_event_time(&secs, "t").unwrap(), Some(3_000));
        let with_null: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None]));
        let err = event_time_millis(&with_null, "t").unwrap_err();
        assert!(err.to_string().contains("`t` has 1 null"), "{err}");
    }
}
