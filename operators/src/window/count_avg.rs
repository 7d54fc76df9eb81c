//! The counting accumulators: `COUNT(*)`, `COUNT(col)` and `AVG` (a sum and a count).
//!
//! Their checkpoint state is their vectors as non-null columns. An `AVG` sum restored
//! into a fresh slot is `0.0 + sum`, which is `sum` bit for bit: a sum that started at
//! `+0.0` is never `-0.0`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type};
use runnel_runtime::Result;

use super::accumulator::{GroupsAccumulator, check_len, state_column, typed};

/// `COUNT(*)` and `COUNT(col)`: only the validity of the input matters.
#[derive(Default)]
pub(super) struct CountAccumulator {
    counts: Vec<i64>,
}

impl GroupsAccumulator for CountAccumulator {
    fn resize(&mut self, slots: usize) {
        self.counts.resize(slots, 0);
    }

    fn update(&mut self, group_idx: &[u32], values: Option<&ArrayRef>) -> Result<()> {
        check_len(group_idx, values)?;
        match values.and_then(|v| v.logical_nulls()) {
            None => {
                for &g in group_idx {
                    self.counts[g as usize] += 1;
                }
            }
            Some(nulls) => {
                for (&g, valid) in group_idx.iter().zip(nulls.iter()) {
                    self.counts[g as usize] += i64::from(valid);
                }
            }
        }
        Ok(())
    }

    fn merge(&mut self, src: &[u32], dst: &[u32]) {
        for (&s, &d) in src.iter().zip(dst) {
            self.counts[d as usize] += self.counts[s as usize];
        }
    }

    fn reset(&mut self, slots: &[u32]) {
        for &s in slots {
            self.counts[s as usize] = 0;
        }
    }

    fn evaluate(&self, slots: &[u32]) -> ArrayRef {
        let values: Vec<i64> = slots.iter().map(|&s| self.counts[s as usize]).collect();
        Arc::new(Int64Array::from(values))
    }

    fn state_fields(&self, prefix: &str) -> Vec<Field> {
        vec![Field::new(
            format!("{prefix}_count"),
            DataType::Int64,
            false,
        )]
    }

    fn state(&self, slots: &[u32]) -> Vec<ArrayRef> {
        vec![self.evaluate(slots)]
    }

    fn merge_state(&mut self, group_idx: &[u32], state: &[ArrayRef]) -> Result<()> {
        let counts = state_column::<Int64Type>(state, 0, group_idx.len())?;
        for (&g, &c) in group_idx.iter().zip(counts.values().iter()) {
            self.counts[g as usize] += c;
        }
        Ok(())
    }
}

/// AVG: a Float64 sum and a count per slot.
#[derive(Default)]
pub(super) struct AvgAccumulator {
    sums: Vec<f64>,
    counts: Vec<i64>,
}

impl GroupsAccumulator for AvgAccumulator {
    fn resize(&mut self, slots: usize) {
        self.sums.resize(slots, 0.0);
        self.counts.resize(slots, 0);
    }

    fn update(&mut self, group_idx: &[u32], values: Option<&ArrayRef>) -> Result<()> {
        check_len(group_idx, values)?;
        let array = typed::<Float64Type>(values)?;
        let native = array.values();
        match array.nulls() {
            None => {
                for (&g, &v) in group_idx.iter().zip(native.iter()) {
                    self.sums[g as usize] += v;
                    self.counts[g as usize] += 1;
                }
            }
            Some(nulls) => {
                for ((&g, &v), valid) in group_idx.iter().zip(native.iter()).zip(nulls.iter()) {
                    if valid {
                        self.sums[g as usize] += v;
                        self.counts[g as usize] += 1;
                    }
                }
            }
        }
        Ok(())
    }

    fn merge(&mut self, src: &[u32], dst: &[u32]) {
        for (&s, &d) in src.iter().zip(dst) {
            self.sums[d as usize] += self.sums[s as usize];
            self.counts[d as usize] += self.counts[s as usize];
        }
    }

    fn reset(&mut self, slots: &[u32]) {
        for &s in slots {
            self.sums[s as usize] = 0.0;
            self.counts[s as usize] = 0;
        }
    }

    fn evaluate(&self, slots: &[u32]) -> ArrayRef {
        let means = slots.iter().map(|&s| {
            let (sum, count) = (self.sums[s as usize], self.counts[s as usize]);
            (count > 0).then(|| sum / count as f64)
        });
        Arc::new(Float64Array::from_iter(means))
    }

    fn state_fields(&self, prefix: &str) -> Vec<Field> {
        vec![
            Field::new(format!("{prefix}_sum"), DataType::Float64, false),
            Field::new(format!("{prefix}_count"), DataType::Int64, false),
        ]
    }

    fn state(&self, slots: &[u32]) -> Vec<ArrayRef> {
        let sums: Vec<f64> = slots.iter().map(|&s| self.sums[s as usize]).collect();
        let counts: Vec<i64> = slots.iter().map(|&s| self.counts[s as usize]).collect();
        vec![
            Arc::new(Float64Array::from(sums)),
            Arc::new(Int64Array::from(counts)),
        ]
    }

    fn merge_state(&mut self, group_idx: &[u32], state: &[ArrayRef]) -> Result<()> {
        let sums = state_column::<Float64Type>(state, 0, group_idx.len())?;
        let counts = state_column::<Int64Type>(state, 1, group_idx.len())?;
        let rows = sums.values().iter().zip(counts.values().iter());
        for (&g, (&sum, &count)) in group_idx.iter().zip(rows) {
            self.sums[g as usize] += sum;
            self.counts[g as usize] += count;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::super::accumulator::new_accumulator;
    use super::super::aggregate::AccumulatorKind;
    use super::*;

    /// Every kind of accumulator: state exported from some slots and merged into fresh
    /// slots of a new accumulator evaluates the same, bit for bit, and keeps accumulating
    /// the same.
    #[test]
    fn state_round_trips_exactly_for_every_kind() {
        use AccumulatorKind::*;
        let mut rng = StdRng::seed_from_u64(5);
        for kind in [
            CountRows,
            CountValues,
            SumInt,
            SumFloat,
            MinInt,
            MaxInt,
            MinFloat,
            MaxFloat,
            Avg,
        ] {
            let floats = matches!(kind, SumFloat | MinFloat | MaxFloat | Avg);
            let input = |rng: &mut StdRng, n: usize| -> Option<ArrayRef> {
                if kind == CountRows {
                    return None;
                }
                let valid: Vec<bool> = (0..n).map(|_| rng.random_bool(0.7)).collect();
                Some(if floats {
                    let v = (0..n).map(|i| valid[i].then(|| rng.random_range(-9.0..9.0)));
                    Arc::new(Float64Array::from_iter(v))
                } else {
                    let v = (0..n).map(|i| valid[i].then(|| rng.random_range(-99..99)));
                    Arc::new(Int64Array::from_iter(v))
                })
            };
            let mut original = new_accumulator(kind);
            original.resize(6);
            let groups: Vec<u32> = (0..40).map(|_| rng.random_range(0..6)).collect();
            original
                .update(&groups, input(&mut rng, 40).as_ref())
                .unwrap();
            // Slots 1, 4, 5 move to slots 2, 0, 1 of a new accumulator.
            let state = original.state(&[1, 4, 5]);
            let fields = original.state_fields("a0");
            assert_eq!(state.len(), fields.len());
            for (column, field) in state.iter().zip(&fields) {
                assert_eq!(column.data_type(), field.data_type());
                assert!(field.is_nullable() || column.null_count() == 0);
            }
            let mut restored = new_accumulator(kind);
            restored.resize(3);
            restored.merge_state(&[2, 0, 1], &state).unwrap();
            let more = input(&mut rng, 3);
            original.update(&[1, 4, 5], more.as_ref()).unwrap();
            restored.update(&[2, 0, 1], more.as_ref()).unwrap();
            let (a, b) = (original.evaluate(&[1, 4, 5]), restored.evaluate(&[2, 0, 1]));
            assert_eq!(a.to_data(), b.to_data(), "{kind:?}");
            assert!(
                restored.merge_state(&[0], &state).is_err(),
                "{kind:?}: bad length"
            );
        }
    }
}
