//! Snapshot and restore of the pane operator.
//!
//! The state is one row per open (pane, key) group: `_key_group`, `_pane_start`, the key
//! columns and the accumulator state (see `checkpoint`), plus the watermark. The
//! watermark is part of the state, not an optimization: a pane outlives the windows of
//! it that have fired, and the watermark is what says which have (those ending at or
//! before it), so that they fire exactly once.
//!
//! Restoring feeds the rows through the same path as input rows, with the pane start as
//! the event time: keys are interned, each row gets the slot of its (pane, key) group,
//! and the accumulator state is merged into the slot. Rows of different old subtasks
//! (after a rescale) never share a key, so every group is rebuilt from exactly one row.

use arrow::record_batch::RecordBatch;
use runnel_runtime::{Error, Millis, Result, WATERMARK_START};

use super::super::checkpoint::StateLayout;
use super::super::plan::WindowPlan;
use super::super::slots::Slots;
use super::{PaneLayout, PaneWindowOperator};

/// The state layout of a pane operator; the geometry is part of the state kind, so state
/// of other windows is refused. Cumulative windows have a kind of their own: their panes
/// may look like a hopping layout's (CUMULATE 2 s up to 10 s and HOP 10 s every 2 s both
/// cut 2 s panes) but belong to other windows.
pub(super) fn state_layout(
    plan: &WindowPlan,
    layout: &PaneLayout,
    slots: &Slots,
    max_key_groups: u32,
) -> Result<StateLayout> {
    let kind = if layout.cumulative {
        format!(
            "runnel.window.cumulate/1 step={} max_size={}",
            layout.pane, layout.size
        )
    } else {
        format!(
            "runnel.window.panes/1 size={} slide={}",
            layout.size, layout.slide
        )
    };
    StateLayout::new(kind, &["_pane_start"], plan, slots, max_key_groups)
}

impl PaneWindowOperator {
    /// The open groups and the watermark as state batches.
    pub(super) fn snapshot_state(&self) -> Result<Vec<RecordBatch>> {
        let groups: usize = self.panes.values().map(|g| g.keys.len()).sum();
        let mut starts: Vec<Millis> = Vec::with_capacity(groups);
        let mut key_ids = Vec::with_capacity(groups);
        let mut slot_ids = Vec::with_capacity(groups);
        for (&pane, g) in &self.panes {
            starts.resize(starts.len() + g.keys.len(), pane);
            key_ids.extend_from_slice(&g.keys);
            slot_ids.extend_from_slice(&g.slots);
        }
        self.checkpoint.snapshot(
            self.watermark,
            &[&starts],
            &key_ids,
            &slot_ids,
            &self.keys,
            &self.slots,
        )
    }

    /// Rebuilds the groups of `state` in this fresh operator.
    pub(super) fn restore_state(&mut self, state: &[RecordBatch]) -> Result<()> {
        if self.watermark != WATERMARK_START || !self.panes.is_empty() {
            return Err(Error::Internal(
                "window state restored into an operator that already ran".into(),
            ));
        }
        let Some(watermark) = self.checkpoint.watermark(state)? else {
            return Ok(());
        };
        for batch in state.iter().filter(|b| b.num_rows() > 0) {
            let columns = self.checkpoint.columns(batch)?;
            let starts = columns.times[0];
            if let Some(bad) = starts
                .iter()
                .find(|&&s| s.rem_euclid(self.layout.pane) != 0)
            {
                return Err(Error::Internal(format!(
                    "restored pane start {bad} is not aligned to panes of {} ms",
                    self.layout.pane
                )));
            }
            self.keys
                .intern(columns.keys, batch.num_rows(), &mut self.key_ids)?;
            self.assign_groups(starts)?;
            self.slots
                .merge_state(&self.group_idx, columns.accumulators)?;
        }
        self.watermark = watermark;
        Ok(())
    }
}
