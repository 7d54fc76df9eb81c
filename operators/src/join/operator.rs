//! The window join subtask: rows buffered per side and window end, joined when the
//! watermark closes their window.
//!
//! Each side keeps its rows as Arrow batches in a map from window end to batches, the
//! way upstream window operators deliver them (one window per batch, usually). A
//! watermark `W` splits off every window with end `<= W` on both sides, concatenates
//! each side in window-end order and joins the two in one pass (see `matching`): the
//! keys pair the window ends, so the pass can only pair rows of one window, and the
//! output comes out ordered by window end. Output is cut into batches of at most
//! `batch_rows` pairs before the residual predicate filters them.

use std::collections::BTreeMap;

use arrow::array::{ArrayRef, AsArray, UInt32Array};
use arrow::compute::{and, concat_batches, filter_record_batch, is_not_null, take_record_batch};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use runnel_runtime::time::event_time_millis;
use runnel_runtime::{Epoch, Error, Millis, Operator, Output, Result};

use super::matching::matching_pairs;
use super::plan::{JoinPlan, SidePlan};
use crate::state::check_max_key_groups;
use crate::topk::split_by_time;

/// Joined rows per output batch (before the residual predicate drops some).
pub(super) const OUTPUT_BATCH_ROWS: usize = 8192;

/// Rows of one side waiting for their window to close, by window end.
pub(super) type Pending = BTreeMap<Millis, Vec<RecordBatch>>;

/// A window join subtask: input 0 is the left side, input 1 the right side.
pub(super) struct WindowJoinOperator {
    pub(super) plan: JoinPlan,
    converter: RowConverter,
    /// Buffered rows of the left (0) and right (1) input.
    pub(super) pending: [Pending; 2],
    pub(super) watermark: Option<Millis>,
    /// Number of key groups of the job, for the key group of each row of state.
    pub(super) key_groups: u32,
    /// Joined rows per output batch.
    pub(super) batch_rows: usize,
}

impl WindowJoinOperator {
    pub fn new(plan: JoinPlan, max_key_groups: u32) -> Result<Self> {
        let fields = plan.key_types.iter().cloned().map(SortField::new).collect();
        let converter =
            RowConverter::new(fields).map_err(|e| Error::Plan(format!("window join keys: {e}")))?;
        Ok(WindowJoinOperator {
            plan,
            converter,
            pending: [Pending::new(), Pending::new()],
            watermark: None,
            key_groups: check_max_key_groups(max_key_groups)?,
            batch_rows: OUTPUT_BATCH_ROWS,
        })
    }

    /// Buffers the rows of `batch` from input `side` by window end; hands rows of closed
    /// windows to `late`.
    pub(super) fn insert(
        &mut self,
        side: usize,
        batch: &RecordBatch,
        mut late: impl FnMut(RecordBatch),
    ) -> Result<()> {
        let plan = &self.plan.sides[side];
        let ends = event_time_millis(batch.column(plan.end), &plan.end_name)?;
        for (end, rows) in split_by_time(batch, ends.values())? {
            if self.watermark.is_some_and(|w| end <= w) {
                late(rows);
                continue;
            }
            let rows = without_null_keys(plan, rows)?;
            if rows.num_rows() > 0 {
                self.pending[side].entry(end).or_default().push(rows);
            }
        }
        Ok(())
    }

    /// Joins the rows of every window both sides closed, in window-end order.
    fn join(
        &self,
        left: Vec<RecordBatch>,
        right: Vec<RecordBatch>,
        out: &mut Output,
    ) -> Result<()> {
        let [left_plan, right_plan] = &self.plan.sides;
        let left = concat_batches(&left_plan.schema, &left)?;
        let right = concat_batches(&right_plan.schema, &right)?;
        let (left_rows, right_rows) = matching_pairs(
            &self.key_rows(left_plan, &left)?,
            &self.key_rows(right_plan, &right)?,
        )?;
        for (l, r) in left_rows
            .chunks(self.batch_rows)
            .zip(right_rows.chunks(self.batch_rows))
        {
            let mut columns = take_record_batch(&left, &UInt32Array::from(l.to_vec()))?
                .columns()
                .to_vec();
            columns.extend_from_slice(
                take_record_batch(&right, &UInt32Array::from(r.to_vec()))?.columns(),
            );
            let joined = RecordBatch::try_new(self.plan.output().clone(), columns)?;
            if let Some(kept) = self.residual(joined)? {
                out.emit(kept);
            }
        }
        Ok(())
    }

    fn key_rows(&self, side: &SidePlan, batch: &RecordBatch) -> Result<Rows> {
        let columns: Vec<ArrayRef> = side.keys.iter().map(|&k| batch.column(k).clone()).collect();
        Ok(self.converter.convert_columns(&columns)?)
    }

    /// The joined rows for which the residual predicate is true (null drops a row).
    fn residual(&self, joined: RecordBatch) -> Result<Option<RecordBatch>> {
        let Some(predicate) = &self.plan.residual else {
            return Ok(Some(joined));
        };
        let values = predicate.evaluate(&joined)?;
        // A predicate typed Null (e.g. `NULL AND x`) keeps no row.
        let Some(mask) = values.as_boolean_opt() else {
            return Ok(None);
        };
        Ok(match mask.true_count() {
            0 => None,
            n if n == joined.num_rows() => Some(joined),
            _ => Some(filter_record_batch(&joined, mask)?),
        })
    }
}

impl Operator for WindowJoinOperator {
    fn on_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if input > 1 {
            return Err(Error::Internal(format!(
                "a window join has two inputs, got rows on input {input}"
            )));
        }
        self.insert(input, &batch, |rows| out.emit_late(rows))
    }

    fn on_watermark(&mut self, watermark: Millis, out: &mut Output) -> Result<()> {
        let watermark = self.watermark.map_or(watermark, |w| w.max(watermark));
        self.watermark = Some(watermark);
        let [left, right] = &mut self.pending;
        let left = closed(left, watermark);
        let right = closed(right, watermark);
        if left.is_empty() || right.is_empty() {
            // An inner join of a window with rows on one side only is empty.
            return Ok(());
        }
        self.join(left, right, out)
    }

    fn snapshot(&mut self, _epoch: Epoch) -> Result<Vec<RecordBatch>> {
        self.snapshot_state()
    }

    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<()> {
        self.restore_state(&state)
    }
}

/// Removes the windows ending at or before `watermark` and returns their rows, in
/// window-end order.
fn closed(pending: &mut Pending, watermark: Millis) -> Vec<RecordBatch> {
    let open = match watermark.checked_add(1) {
        Some(next) => pending.split_off(&next),
        None => Pending::new(),
    };
    std::mem::replace(pending, open)
        .into_values()
        .flatten()
        .collect()
}

/// The rows whose key columns are all non-null: in an inner join the others match nothing.
fn without_null_keys(side: &SidePlan, rows: RecordBatch) -> Result<RecordBatch> {
    let mut mask = None;
    for &k in &side.keys {
        let column = rows.column(k);
        if column.null_count() == 0 {
            continue;
        }
        let valid = is_not_null(column)?;
        mask = Some(match mask {
            None => valid,
            Some(m) => and(&m, &valid)?,
        });
    }
    match mask {
        None => Ok(rows),
        Some(mask) => Ok(filter_record_batch(&rows, &mask)?),
    }
}
