//! The checkpoint form of window state, shared by the pane and session operators.
//!
//! A snapshot is one row per open group (a pane's group of a key, or a session):
//!
//! | column | type | |
//! |---|---|---|
//! | `_key_group` | UInt32 | key group of the key ([`crate::state`]) |
//! | `_pane_start` or `_session_start`, `_session_end` | Int64 (ms) | the group's time |
//! | the key columns | input types, input names | the key |
//! | `_agg{i}_...` | per accumulator | the accumulator state (see `accumulator`) |
//!
//! The watermark and the kind of state (operator, format version, geometry) are in the
//! schema metadata. Building the rows is columnar: key ids and slots of every open group
//! are gathered into vectors, then each column is built in one pass (key columns decoded
//! from the key table, key groups hashed over them, accumulator state gathered by slot),
//! in batches of at most [`SNAPSHOT_BATCH_ROWS`] rows.
//!
//! Restoring reads the same columns back; each operator re-interns the keys and merges
//! the accumulator state into fresh slots, which rebuilds exactly the original groups.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use runnel_runtime::{Error, Millis, Result};

use super::group_keys::GroupKeys;
use super::plan::WindowPlan;
use super::slots::Slots;
use crate::state::{
    check_max_key_groups, empty_state, key_group_field, key_groups, restored_watermark,
    state_schema,
};

/// Snapshot batches hold at most this many rows (keeps any string column far from the
/// 2 GiB offset limit and IPC readers streaming).
pub(crate) const SNAPSHOT_BATCH_ROWS: usize = 1 << 16;

/// The state schema of one window operator.
pub(crate) struct StateLayout {
    kind: String,
    /// Number of time columns (`_pane_start`, ...), all Int64, after the key group.
    times: usize,
    /// Number of key columns, after the time columns.
    keys: usize,
    max_key_groups: u32,
    /// The schema without scalar state, to check restored batches against.
    expected: Schema,
}

/// The columns of one restored state batch.
pub(crate) struct StateColumns<'a> {
    pub times: Vec<&'a [Millis]>,
    pub keys: &'a [ArrayRef],
    pub accumulators: &'a [ArrayRef],
}

impl StateLayout {
    /// The layout for `plan`'s keys and `slots`' accumulators, with one Int64 column per
    /// name in `times`.
    pub fn new(
        kind: String,
        times: &[&str],
        plan: &WindowPlan,
        slots: &Slots,
        max_key_groups: u32,
    ) -> Result<Self> {
        let mut fields = vec![key_group_field()];
        fields.extend(times.iter().map(|t| Field::new(*t, DataType::Int64, false)));
        let input = plan.input_schema();
        fields.extend(plan.key_indices().iter().map(|&i| input.field(i).clone()));
        fields.extend(slots.state_fields());
        Ok(StateLayout {
            kind,
            times: times.len(),
            keys: plan.key_indices().len(),
            max_key_groups: check_max_key_groups(max_key_groups)?,
            expected: Schema::new(fields),
        })
    }

    fn schema(&self, watermark: Millis) -> SchemaRef {
        let fields = self.expected.fields().iter().map(|f| f.as_ref().clone());
        state_schema(&self.kind, fields.collect(), watermark)
    }

    /// The snapshot of the groups `(times[..][i], key_ids[i], slot_ids[i])`: at least one
    /// batch (an empty one carries the watermark when there are no groups).
    pub fn snapshot(
        &self,
        watermark: Millis,
        times: &[&[Millis]],
        key_ids: &[u32],
        slot_ids: &[u32],
        keys: &GroupKeys,
        slots: &Slots,
    ) -> Result<Vec<RecordBatch>> {
        let schema = self.schema(watermark);
        if key_ids.is_empty() {
            return Ok(vec![empty_state(&schema)]);
        }
        let mut batches = Vec::with_capacity(key_ids.len().div_ceil(SNAPSHOT_BATCH_ROWS));
        for start in (0..key_ids.len()).step_by(SNAPSHOT_BATCH_ROWS) {
            let end = key_ids.len().min(start + SNAPSHOT_BATCH_ROWS);
            let key_columns = keys.columns(&key_ids[start..end])?;
            let groups = key_groups(&key_columns, end - start, self.max_key_groups)?;
            let mut columns: Vec<ArrayRef> = vec![Arc::new(groups)];
            for t in times {
                columns.push(Arc::new(Int64Array::from(t[start..end].to_vec())));
            }
            columns.extend(key_columns);
            columns.extend(slots.state(&slot_ids[start..end]));
            batches.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        Ok(batches)
    }

    /// Checks every batch of a restore and returns the watermark to resume with (`None`
    /// if there is no state at all).
    pub fn watermark(&self, state: &[RecordBatch]) -> Result<Option<Millis>> {
        restored_watermark(state, &self.kind, &self.expected)
    }

    /// The columns of a batch checked by [`StateLayout::watermark`].
    pub fn columns<'a>(&self, batch: &'a RecordBatch) -> Result<StateColumns<'a>> {
        let columns = batch.columns();
        let keys_at = 1 + self.times;
        let times = columns[1..keys_at]
            .iter()
            .map(|c| {
                c.as_primitive_opt::<Int64Type>()
                    .filter(|c| c.null_count() == 0)
                    .map(|c| c.values().as_ref())
                    .ok_or_else(|| Error::Internal("window state has null times".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StateColumns {
            times,
            keys: &columns[keys_at..keys_at + self.keys],
            accumulators: &columns[keys_at + self.keys..],
        })
    }
}
