//! Splitting a batch by event time.
//!
//! Operators that buffer rows until a watermark closes their time value (top-K per
//! window end, trending per window end) keep one buffer per time value. Upstream window
//! operators emit one window per batch, so the common case is a batch with a single time
//! value, which is passed on without copying; mixed batches are sorted by time once and
//! sliced into runs.

use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use runnel_runtime::{Error, Millis, Result};

/// Splits `batch` into runs of rows sharing a time value, in ascending time order;
/// within a run rows keep their input order. `times[i]` is the time value of row `i`.
pub(crate) fn split_by_time(
    batch: &RecordBatch,
    times: &[Millis],
) -> Result<Vec<(Millis, RecordBatch)>> {
    let Some(&first) = times.first() else {
        return Ok(Vec::new());
    };
    if times.iter().all(|&t| t == first) {
        return Ok(vec![(first, batch.clone())]);
    }
    let rows = u32::try_from(times.len())
        .map_err(|_| Error::Internal(format!("batch of {} rows is too large", times.len())))?;
    let mut order: Vec<u32> = (0..rows).collect();
    // Stable, so rows of one time value keep their input order.
    order.sort_by_key(|&i| times[i as usize]);
    let sorted_times: Vec<Millis> = order.iter().map(|&i| times[i as usize]).collect();
    let sorted = take_record_batch(batch, &UInt32Array::from(order))?;
    let mut runs = Vec::new();
    let mut start = 0;
    for end in 1..=sorted_times.len() {
        if end == sorted_times.len() || sorted_times[end] != sorted_times[start] {
            runs.push((sorted_times[start], sorted.slice(start, end - start)));
            start = end;
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn runs_are_sorted_by_time_and_keep_input_order() {
        let mut rng = StdRng::seed_from_u64(3);
        let schema = Arc::new(Schema::new(vec![Field::new("i", DataType::Int64, false)]));
        for _ in 0..200 {
            let n = rng.random_range(0..30);
            let times: Vec<Millis> = (0..n).map(|_| rng.random_range(0..4)).collect();
            let ids = Int64Array::from_iter_values(0..n as i64);
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(ids)]).unwrap();
            let runs = split_by_time(&batch, &times).unwrap();
            let mut expected: Vec<(Millis, Vec<i64>)> = Vec::new();
            let mut distinct: Vec<Millis> = times.clone();
            distinct.sort();
            distinct.dedup();
            for t in distinct {
                let rows = (0..n)
                    .filter(|&i| times[i] == t)
                    .map(|i| i as i64)
                    .collect();
                expected.push((t, rows));
            }
            let actual: Vec<(Millis, Vec<i64>)> = runs
                .iter()
                .map(|(t, b)| {
                    (
                        *t,
                        b.column(0).as_primitive::<Int64Type>().values().to_vec(),
                    )
                })
                .collect();
            assert_eq!(actual, expected);
        }
    }
}
