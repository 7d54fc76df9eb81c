//! The window join's checkpoint state: its buffered rows.
//!
//! It follows the crate's state convention ([`crate::state`]): every row is keyed, in one
//! schema for both sides, so a subtask's state is one Arrow IPC file and every row can be
//! handed to the subtask that owns its key after a rescale:
//!
//! | column | type | left row | right row |
//! |---|---|---|---|
//! | `_key_group` | UInt32 | key group of its join key | key group of its join key |
//! | `_side` | UInt8 | 0 | 1 |
//! | the left columns | left types, nullable | the row | null |
//! | the right columns | right types, nullable | null | the row |
//!
//! The key group is computed from the join key columns in their input types, as the hash
//! edges in front of the join route rows (both sides are keyed by their join keys, whose
//! types are equal pairwise, so matching rows share a key group and restore together).
//! The watermark and the kind of state, with the number of left columns, are in the
//! schema metadata; restored from several old subtasks, the watermark is their minimum
//! (see [`crate::state::restored_watermark`]).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, UInt8Array, new_null_array};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt8Type};
use arrow::record_batch::RecordBatch;
use runnel_runtime::{Error, Result, WATERMARK_START};

use super::operator::WindowJoinOperator;
use crate::state::{
    empty_state, key_group_field, key_groups, optional_watermark, restored_watermark, state_schema,
};

/// Name of the column that says which input a row of state came from.
const SIDE_COLUMN: &str = "_side";

impl WindowJoinOperator {
    /// The kind of join state; the split of the columns into sides is part of it.
    fn state_kind(&self) -> String {
        let left = self.plan.sides[0].schema.fields().len();
        format!("runnel.window_join/1 left_columns={left}")
    }

    /// The checkpoint fields: key group, side, then every input column made nullable.
    fn state_fields(&self) -> Vec<Field> {
        let mut fields = vec![
            key_group_field(),
            Field::new(SIDE_COLUMN, DataType::UInt8, false),
        ];
        for side in &self.plan.sides {
            fields.extend(
                side.schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true)),
            );
        }
        fields
    }

    /// The buffered rows as state batches: one per side that has rows, at least one (for
    /// the watermark).
    pub(super) fn snapshot_state(&self) -> Result<Vec<RecordBatch>> {
        let watermark = self.watermark.unwrap_or(WATERMARK_START);
        let schema = state_schema(&self.state_kind(), self.state_fields(), watermark);
        let mut batches = Vec::new();
        for (side, pending) in self.pending.iter().enumerate() {
            let plan = &self.plan.sides[side];
            let buffered: Vec<&RecordBatch> = pending.values().flatten().collect();
            if buffered.is_empty() {
                continue;
            }
            let rows = concat_batches(&plan.schema, buffered)?;
            let n = rows.num_rows();
            let keys: Vec<ArrayRef> = plan.keys.iter().map(|&k| rows.column(k).clone()).collect();
            let mut columns: Vec<ArrayRef> = vec![
                Arc::new(key_groups(&keys, n, self.key_groups)?),
                Arc::new(UInt8Array::from(vec![side as u8; n])),
            ];
            for (other, other_plan) in self.plan.sides.iter().enumerate() {
                if other == side {
                    columns.extend(rows.columns().iter().cloned());
                } else {
                    let fields = other_plan.schema.fields();
                    columns.extend(fields.iter().map(|f| new_null_array(f.data_type(), n)));
                }
            }
            batches.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        if batches.is_empty() {
            batches.push(empty_state(&schema));
        }
        Ok(batches)
    }

    /// Restores the state of any number of old subtasks into this fresh operator.
    pub(super) fn restore_state(&mut self, state: &[RecordBatch]) -> Result<()> {
        if self.watermark.is_some() || self.pending.iter().any(|p| !p.is_empty()) {
            return Err(Error::Internal(
                "window join state restored into an operator that already ran".into(),
            ));
        }
        let kind = self.state_kind();
        let expected = Schema::new(self.state_fields());
        let Some(watermark) = restored_watermark(state, &kind, &expected)? else {
            return Ok(());
        };
        let left_columns = self.plan.sides[0].schema.fields().len();
        for batch in state.iter().filter(|b| b.num_rows() > 0) {
            let sides = batch.column(1).as_primitive::<UInt8Type>();
            if !sides.iter().all(|s| matches!(s, Some(0 | 1))) {
                return Err(Error::Internal("window join state row of no side".into()));
            }
            for side in 0..2 {
                let plan = &self.plan.sides[side];
                let mine: BooleanArray =
                    sides.iter().map(|s| Some(s == Some(side as u8))).collect();
                if mine.true_count() == 0 {
                    continue;
                }
                let rows = filter_record_batch(batch, &mine)?;
                let first = 2 + if side == 0 { 0 } else { left_columns };
                let columns = rows.columns()[first..first + plan.schema.fields().len()].to_vec();
                let rows = restored_rows(&plan.schema, columns, plan.name)?;
                // No watermark yet: nothing restored is late.
                self.insert(side, &rows, |_| {})?;
            }
        }
        self.watermark = optional_watermark(Some(watermark));
        Ok(())
    }
}

/// Rows of one input out of its (nullable) state columns.
fn restored_rows(schema: &SchemaRef, columns: Vec<ArrayRef>, side: &str) -> Result<RecordBatch> {
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| {
        Error::Internal(format!(
            "window join state of the {side} input does not fit its schema: {e}"
        ))
    })
}
