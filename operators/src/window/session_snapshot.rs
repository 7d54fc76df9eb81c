//! Snapshot and restore of the session operator.
//!
//! The state is one row per open session: `_key_group`, `_session_start`,
//! `_session_end`, the key columns and the accumulator state (see `checkpoint`), plus the
//! watermark, which decides whether a run that touches no open session is late.
//!
//! Restoring places each row like a run of input rows `[start, end)` of its key, then
//! merges the accumulator state into the session's slot. The sessions of a key come from
//! one old subtask and do not touch, so each row rebuilds one session; should two touch,
//! they merge exactly as two runs of a batch would.

use arrow::record_batch::RecordBatch;
use runnel_runtime::{Error, Millis, Result, WATERMARK_START};

use super::super::checkpoint::StateLayout;
use super::super::plan::WindowPlan;
use super::super::slots::Slots;
use super::SessionWindowOperator;

/// The state layout of a session operator; the gap is part of the state kind.
pub(super) fn state_layout(
    plan: &WindowPlan,
    gap: Millis,
    slots: &Slots,
    max_key_groups: u32,
) -> Result<StateLayout> {
    let kind = format!("runnel.window.session/1 gap={gap}");
    let times = ["_session_start", "_session_end"];
    StateLayout::new(kind, &times, plan, slots, max_key_groups)
}

impl SessionWindowOperator {
    /// The open sessions and the watermark as state batches.
    pub(super) fn snapshot_state(&self) -> Result<Vec<RecordBatch>> {
        let open = self.by_end.len();
        let (mut starts, mut ends) = (Vec::with_capacity(open), Vec::with_capacity(open));
        let (mut key_ids, mut slot_ids) = (Vec::with_capacity(open), Vec::with_capacity(open));
        for (key, list) in self.sessions.iter().enumerate() {
            for session in list {
                starts.push(session.start);
                ends.push(session.end);
                key_ids.push(key as u32);
                slot_ids.push(session.slot);
            }
        }
        self.checkpoint.snapshot(
            self.watermark,
            &[&starts, &ends],
            &key_ids,
            &slot_ids,
            &self.keys,
            &self.slots,
        )
    }

    /// Rebuilds the sessions of `state` in this fresh operator.
    pub(super) fn restore_state(&mut self, state: &[RecordBatch]) -> Result<()> {
        if self.watermark != WATERMARK_START || !self.by_end.is_empty() {
            return Err(Error::Internal(
                "window state restored into an operator that already ran".into(),
            ));
        }
        let Some(watermark) = self.checkpoint.watermark(state)? else {
            return Ok(());
        };
        for batch in state.iter().filter(|b| b.num_rows() > 0) {
            let columns = self.checkpoint.columns(batch)?;
            let (starts, ends) = (columns.times[0], columns.times[1]);
            self.keys
                .intern(columns.keys, batch.num_rows(), &mut self.key_ids)?;
            self.sessions.resize_with(self.keys.len(), Vec::new);
            let mut group_idx = std::mem::take(&mut self.group_idx);
            group_idx.clear();
            for (i, (&start, &end)) in starts.iter().zip(ends).enumerate() {
                if end <= start {
                    return Err(Error::Internal(format!(
                        "restored session [{start}, {end}) is empty"
                    )));
                }
                // The watermark is not set yet: nothing restored is late.
                let slot = self.place(self.key_ids[i], start, end)?;
                group_idx.push(
                    slot.ok_or_else(|| Error::Internal("restored session judged late".into()))?,
                );
            }
            self.group_idx = group_idx;
            self.slots.sync();
            self.slots
                .merge_state(&self.group_idx, columns.accumulators)?;
            self.apply_merges();
        }
        self.watermark = watermark;
        Ok(())
    }
}
