//! Columnar accumulators, in the style of DataFusion's `GroupsAccumulator`.
//!
//! An accumulator holds the state of one aggregate for many groups ("slots") in plain
//! vectors: `Vec<i64>` of counts, `Vec<f64>` of sums and a `Vec<bool>` saying which slots
//! have seen a value. The operator computes a slot per input row once per batch; each
//! accumulator then runs one tight, typed loop over `(slot, value)` pairs. There is no
//! per-row dynamic dispatch and no per-row allocation: the trait object is called once per
//! batch.
//!
//! Besides `update`, windows need `merge` (a window is the merge of its panes; merging
//! sessions merges their slots), `reset` (a freed slot goes back to the identity so it
//! can be reused) and `evaluate` (gather slots into an Arrow array).
//!
//! Checkpoints use `state` and `merge_state`: the state of a slot is one or more Arrow
//! columns (`COUNT`: the count; `SUM`/`MIN`/`MAX`: the value, null while the slot has seen
//! no value; `AVG`: sum and count), gathered from the vectors like `evaluate` does, and
//! merged back into fresh slots by one typed loop, like `update`. Values round-trip
//! bit for bit, so a restored operator computes exactly what the original would have.
//!
//! This file holds the trait and the SUM/MIN/MAX accumulator; `count_avg` the counting
//! ones.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{ArrowPrimitiveType, Field, Float64Type, Int64Type};
use runnel_runtime::{Error, Result};

use super::aggregate::AccumulatorKind;
use super::count_avg::{AvgAccumulator, CountAccumulator};

/// The state of one aggregate for many slots.
pub(crate) trait GroupsAccumulator: Send {
    /// Grows (new slots hold the identity) or shrinks the number of slots.
    fn resize(&mut self, slots: usize);
    /// Adds row `i` of `values` to slot `group_idx[i]`. `values` is `None` for `COUNT(*)`.
    fn update(&mut self, group_idx: &[u32], values: Option<&ArrayRef>) -> Result<()>;
    /// Merges slot `src[i]` into slot `dst[i]`, pairs in order (so chains work).
    fn merge(&mut self, src: &[u32], dst: &[u32]);
    /// Puts slots back to the identity.
    fn reset(&mut self, slots: &[u32]);
    /// The final values of `slots`, in order.
    fn evaluate(&self, slots: &[u32]) -> ArrayRef;
    /// The fields of the checkpoint state, named `{prefix}_...`.
    fn state_fields(&self, prefix: &str) -> Vec<Field>;
    /// The state of `slots`, in order: one column per [`GroupsAccumulator::state_fields`].
    fn state(&self, slots: &[u32]) -> Vec<ArrayRef>;
    /// Merges state row `i` (columns as returned by [`GroupsAccumulator::state`]) into
    /// slot `group_idx[i]`; into a slot at the identity, that restores it exactly.
    fn merge_state(&mut self, group_idx: &[u32], state: &[ArrayRef]) -> Result<()>;
}

/// Creates the accumulator of a kind.
pub(crate) fn new_accumulator(kind: AccumulatorKind) -> Box<dyn GroupsAccumulator> {
    use AccumulatorKind::*;
    match kind {
        CountRows | CountValues => Box::new(CountAccumulator::default()),
        SumInt => Box::new(PrimitiveAccumulator::<Int64Type, _>::new(
            0,
            i64::wrapping_add,
        )),
        SumFloat => Box::new(PrimitiveAccumulator::<Float64Type, _>::new(0.0, |a, b| {
            a + b
        })),
        MinInt => Box::new(PrimitiveAccumulator::<Int64Type, _>::new(
            i64::MAX,
            i64::min,
        )),
        MaxInt => Box::new(PrimitiveAccumulator::<Int64Type, _>::new(
            i64::MIN,
            i64::max,
        )),
        MinFloat => Box::new(PrimitiveAccumulator::<Float64Type, _>::new(
            f64::NAN,
            min_f64,
        )),
        MaxFloat => Box::new(PrimitiveAccumulator::<Float64Type, _>::new(
            f64::NAN,
            max_f64,
        )),
        Avg => Box::new(AvgAccumulator::default()),
    }
}

/// MIN over IEEE 754 total order (NaN above +inf, as DataFusion orders floats). The
/// identity is only ever compared after a real value was seen, so its value is moot.
#[inline]
fn min_f64(acc: f64, value: f64) -> f64 {
    if value.total_cmp(&acc) == Ordering::Less {
        value
    } else {
        acc
    }
}

#[inline]
fn max_f64(acc: f64, value: f64) -> f64 {
    if value.total_cmp(&acc) == Ordering::Greater {
        value
    } else {
        acc
    }
}

pub(super) fn typed<T: ArrowPrimitiveType>(
    values: Option<&ArrayRef>,
) -> Result<&PrimitiveArray<T>> {
    values
        .and_then(|v| v.as_primitive_opt::<T>())
        .ok_or_else(|| Error::Internal(format!("accumulator expects {} input", T::DATA_TYPE)))
}

pub(super) fn check_len(group_idx: &[u32], values: Option<&ArrayRef>) -> Result<()> {
    match values {
        Some(v) if v.len() != group_idx.len() => Err(Error::Internal(format!(
            "accumulator got {} values for {} rows",
            v.len(),
            group_idx.len()
        ))),
        _ => Ok(()),
    }
}

/// Column `i` of a checkpoint state of `len` rows: `T`, without nulls.
pub(super) fn state_column<T: ArrowPrimitiveType>(
    state: &[ArrayRef],
    i: usize,
    len: usize,
) -> Result<&PrimitiveArray<T>> {
    state
        .get(i)
        .filter(|c| c.len() == len && c.null_count() == 0)
        .and_then(|c| c.as_primitive_opt::<T>())
        .ok_or_else(|| {
            Error::Internal(format!(
                "accumulator state column {i} is not {} without nulls",
                T::DATA_TYPE
            ))
        })
}

/// SUM / MIN / MAX over one native type: `acc = op(acc, value)`, plus which slots have
/// seen a non-null value (an aggregate of only nulls is null).
struct PrimitiveAccumulator<T: ArrowPrimitiveType, F> {
    values: Vec<T::Native>,
    seen: Vec<bool>,
    identity: T::Native,
    op: F,
}

impl<T, F> PrimitiveAccumulator<T, F>
where
    T: ArrowPrimitiveType,
    F: Fn(T::Native, T::Native) -> T::Native,
{
    fn new(identity: T::Native, op: F) -> Self {
        PrimitiveAccumulator {
            values: Vec::new(),
            seen: Vec::new(),
            identity,
            op,
        }
    }

    #[inline]
    fn add(&mut self, slot: u32, value: T::Native) {
        let slot = slot as usize;
        let acc = &mut self.values[slot];
        *acc = if self.seen[slot] {
            (self.op)(*acc, value)
        } else {
            value
        };
        self.seen[slot] = true;
    }
}

impl<T, F> GroupsAccumulator for PrimitiveAccumulator<T, F>
where
    T: ArrowPrimitiveType,
    F: Fn(T::Native, T::Native) -> T::Native + Send,
{
    fn resize(&mut self, slots: usize) {
        self.values.resize(slots, self.identity);
        self.seen.resize(slots, false);
    }

    fn update(&mut self, group_idx: &[u32], values: Option<&ArrayRef>) -> Result<()> {
        check_len(group_idx, values)?;
        let array = typed::<T>(values)?;
        let native = array.values();
        match array.nulls() {
            None => {
                for (&g, &v) in group_idx.iter().zip(native.iter()) {
                    self.add(g, v);
                }
            }
            Some(nulls) => {
                for ((&g, &v), valid) in group_idx.iter().zip(native.iter()).zip(nulls.iter()) {
                    if valid {
                        self.add(g, v);
                    }
                }
            }
        }
        Ok(())
    }

    fn merge(&mut self, src: &[u32], dst: &[u32]) {
        for (&s, &d) in src.iter().zip(dst) {
            if self.seen[s as usize] {
                let v = self.values[s as usize];
                self.add(d, v);
            }
        }
    }

    fn reset(&mut self, slots: &[u32]) {
        for &s in slots {
            self.values[s as usize] = self.identity;
            self.seen[s as usize] = false;
        }
    }

    fn evaluate(&self, slots: &[u32]) -> ArrayRef {
        let values: Vec<T::Native> = slots.iter().map(|&s| self.values[s as usize]).collect();
        let nulls = NullBuffer::from_iter(slots.iter().map(|&s| self.seen[s as usize]));
        Arc::new(PrimitiveArray::<T>::new(values.into(), Some(nulls)))
    }

    fn state_fields(&self, prefix: &str) -> Vec<Field> {
        vec![Field::new(format!("{prefix}_value"), T::DATA_TYPE, true)]
    }

    fn state(&self, slots: &[u32]) -> Vec<ArrayRef> {
        vec![self.evaluate(slots)]
    }

    /// The state is the value, null where no value was seen: merging it is an update.
    fn merge_state(&mut self, group_idx: &[u32], state: &[ArrayRef]) -> Result<()> {
        match state {
            [value] => self.update(group_idx, Some(value)),
            _ => Err(Error::Internal("SUM/MIN/MAX state has one column".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, Int64Array};

    use super::*;

    fn ints(values: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(values.to_vec()))
    }

    #[test]
    fn update_merge_reset_evaluate() {
        let mut acc = new_accumulator(AccumulatorKind::MinInt);
        acc.resize(3);
        let v = ints(&[Some(5), None, Some(-2), Some(7)]);
        acc.update(&[0, 1, 0, 2], Some(&v)).unwrap();
        let out = acc.evaluate(&[0, 1, 2]);
        assert_eq!(
            out.as_primitive::<Int64Type>(),
            &Int64Array::from(vec![Some(-2), None, Some(7)])
        );
        acc.merge(&[2, 0], &[1, 1]);
        assert_eq!(acc.evaluate(&[1]).as_primitive::<Int64Type>().value(0), -2);
        acc.reset(&[1]);
        assert!(acc.evaluate(&[1]).is_null(0));
    }

    #[test]
    fn count_avg_and_float_max() {
        let v = ints(&[Some(1), None, Some(3)]);
        let mut count = new_accumulator(AccumulatorKind::CountValues);
        count.resize(1);
        count.update(&[0, 0, 0], Some(&v)).unwrap();
        count.update(&[0, 0], None).unwrap();
        assert_eq!(count.evaluate(&[0]).as_primitive::<Int64Type>().value(0), 4);

        let f: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None, Some(4.0)]));
        let mut avg = new_accumulator(AccumulatorKind::Avg);
        avg.resize(2);
        avg.update(&[0, 0, 0], Some(&f)).unwrap();
        let out = avg.evaluate(&[0, 1]);
        assert_eq!(out.as_primitive::<Float64Type>().value(0), 2.5);
        assert!(out.is_null(1));

        let mut max = new_accumulator(AccumulatorKind::MaxFloat);
        max.resize(1);
        max.update(&[0, 0, 0], Some(&f)).unwrap();
        assert_eq!(
            max.evaluate(&[0]).as_primitive::<Float64Type>().value(0),
            4.0
        );
        assert!(max.update(&[0], Some(&ints(&[Some(1)]))).is_err());
    }
}
