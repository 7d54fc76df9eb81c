//! Session windows: per key, rows closer than `gap` form one session.
//!
//! Flink semantics: a row at `t` opens `[t, t + gap)`; sessions of a key that overlap or
//! touch merge, so a session ends `gap` after its last row. A session fires when the
//! watermark reaches its end.
//!
//! A batch is processed in (key, time) order: consecutive rows of a key within `gap` of
//! each other form a run, which is merged with the open sessions of its key it overlaps
//! or touches (a run can bridge several sessions). Rows get the slot of their session;
//! when sessions merge, the merge is recorded and applied to the accumulators after the
//! batch's update, in order, so rows counted into a slot that a later run of the same
//! batch merged away are carried along. Accumulation is still one typed loop per
//! aggregate per batch.
//!
//! Lateness: a run that touches no open session of its key and ends at or before the
//! watermark would form a session that has already fired: its rows are late. Within a
//! batch this decision does not depend on row order (runs are formed first), which is
//! what Flink would decide had the batch's rows arrived in time order.
//!
//! Open sessions are kept per key id (sorted, pairwise not touching) and in a set
//! ordered by end, which is the firing order.
//!
//! Checkpoints (`session_snapshot`): the open sessions and the watermark.

use std::collections::BTreeSet;

use arrow::array::BooleanArray;
use arrow::buffer::BooleanBuffer;
use arrow::compute::{filter, filter_record_batch, not};
use arrow::record_batch::RecordBatch;
use runnel_runtime::{Epoch, Millis, Operator, Output, Result, WATERMARK_START};

use super::checkpoint::StateLayout;
use super::group_keys::{DEAD, GroupKeys};
use super::plan::{OUTPUT_BATCH_ROWS, WindowPlan};
use super::slots::Slots;

#[path = "session_snapshot.rs"]
mod snapshot;

#[derive(Debug, Clone, Copy)]
struct Session {
    start: Millis,
    end: Millis,
    slot: u32,
}

/// `group_idx` of a late row.
const LATE: u32 = u32::MAX;

/// Fired sessions waiting to be emitted.
#[derive(Default)]
struct Fired {
    keys: Vec<u32>,
    starts: Vec<Millis>,
    ends: Vec<Millis>,
    slots: Vec<u32>,
}

/// The session window aggregate operator.
pub(crate) struct SessionWindowOperator {
    plan: WindowPlan,
    gap: Millis,
    keys: GroupKeys,
    slots: Slots,
    /// Open sessions of each key id, sorted by start, pairwise not touching.
    sessions: Vec<Vec<Session>>,
    /// Every open session as (end, key id, slot).
    by_end: BTreeSet<(Millis, u32, u32)>,
    watermark: Millis,
    key_ids: Vec<u32>,
    group_idx: Vec<u32>,
    order: Vec<u32>,
    merge_src: Vec<u32>,
    merge_dst: Vec<u32>,
    checkpoint: StateLayout,
}

impl SessionWindowOperator {
    pub fn new(plan: WindowPlan, gap: Millis, max_key_groups: u32) -> Result<Self> {
        let slots = Slots::new(plan.aggregates());
        Ok(SessionWindowOperator {
            keys: GroupKeys::new(plan.input_schema(), plan.key_indices())?,
            checkpoint: snapshot::state_layout(&plan, gap, &slots, max_key_groups)?,
            slots,
            plan,
            gap,
            sessions: Vec::new(),
            by_end: BTreeSet::new(),
            watermark: WATERMARK_START,
            key_ids: Vec::new(),
            group_idx: Vec::new(),
            order: Vec::new(),
            merge_src: Vec::new(),
            merge_dst: Vec::new(),
        })
    }

    /// Adds a run `[start, end)` of `key`: merges it into the open sessions it touches,
    /// or opens a session. Returns its slot, or `None` if the run is late.
    fn place(&mut self, key: u32, start: Millis, end: Millis) -> Result<Option<u32>> {
        let list = &mut self.sessions[key as usize];
        let lo = list.partition_point(|s| s.end < start);
        let hi = list.partition_point(|s| s.start <= end);
        if lo >= hi {
            if end <= self.watermark {
                return Ok(None);
            }
            let slot = self.slots.alloc()?;
            list.insert(lo, Session { start, end, slot });
            self.by_end.insert((end, key, slot));
            self.keys.retain(key);
            return Ok(Some(slot));
        }
        let first = list[lo];
        let merged = Session {
            start: start.min(first.start),
            end: end.max(list[hi - 1].end),
            slot: first.slot,
        };
        self.by_end.remove(&(first.end, key, first.slot));
        for s in list.drain(lo + 1..hi) {
            self.merge_src.push(s.slot);
            self.merge_dst.push(merged.slot);
            self.by_end.remove(&(s.end, key, s.slot));
            self.keys.release(key);
        }
        list[lo] = merged;
        self.by_end.insert((merged.end, key, merged.slot));
        Ok(Some(merged.slot))
    }

    /// Applies the session merges recorded by [`Self::place`] to the accumulators, after
    /// the rows of the batch were added.
    fn apply_merges(&mut self) {
        self.slots.merge(&self.merge_src, &self.merge_dst);
        self.slots.free(&self.merge_src);
        self.merge_src.clear();
        self.merge_dst.clear();
    }

    /// Assigns every row its session slot ([`LATE`] for late rows); returns whether any
    /// row is late.
    fn assign_sessions(&mut self, times: &[Millis]) -> Result<bool> {
        let n = times.len();
        self.sessions.resize_with(self.keys.len(), Vec::new);
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.extend(0..n as u32);
        let key_ids = &self.key_ids;
        order.sort_unstable_by_key(|&i| (key_ids[i as usize], times[i as usize]));
        self.group_idx.clear();
        self.group_idx.resize(n, LATE);
        let mut any_late = false;
        let mut i = 0;
        while i < n {
            let key = self.key_ids[order[i] as usize];
            let start = times[order[i] as usize];
            let mut last = start;
            let mut j = i + 1;
            while j < n
                && self.key_ids[order[j] as usize] == key
                && times[order[j] as usize] <= last + self.gap
            {
                last = times[order[j] as usize];
                j += 1;
            }
            match self.place(key, start, last + self.gap)? {
                Some(slot) => {
                    for &row in &order[i..j] {
                        self.group_idx[row as usize] = slot;
                    }
                }
                None => any_late = true,
            }
            i = j;
        }
        self.order = order;
        self.slots.sync();
        Ok(any_late)
    }

    fn flush(&mut self, fired: &mut Fired, out: &mut Output) -> Result<()> {
        if fired.keys.is_empty() {
            return Ok(());
        }
        let results = self.slots.evaluate(&fired.slots);
        let keys = self.keys.columns(&fired.keys)?;
        let batch = self.plan.output_batch(
            keys,
            std::mem::take(&mut fired.starts),
            std::mem::take(&mut fired.ends),
            results,
        )?;
        out.emit(batch);
        self.slots.free(&fired.slots);
        for &key in &fired.keys {
            self.keys.release(key);
        }
        *fired = Fired::default();
        Ok(())
    }

    /// Applies a key-id renumbering from [`GroupKeys::compact`].
    fn renumber(&mut self, remap: &[u32]) {
        let mut sessions = Vec::new();
        sessions.resize_with(self.keys.len(), Vec::new);
        for (old, list) in self.sessions.drain(..).enumerate() {
            if let Some(&new) = remap.get(old).filter(|&&new| new != DEAD) {
                sessions[new as usize] = list;
            }
        }
        self.sessions = sessions;
        self.by_end = std::mem::take(&mut self.by_end)
            .into_iter()
            .map(|(end, key, slot)| (end, remap[key as usize], slot))
            .collect();
    }
}

#[cfg(test)]
impl SessionWindowOperator {
    /// (slots in use, open sessions, keys with sessions): all zero once every session fired.
    pub fn open_state(&self) -> (usize, usize, usize) {
        let keys = self.sessions.iter().filter(|s| !s.is_empty()).count();
        (self.slots.in_use(), self.by_end.len(), keys)
    }
}

impl Operator for SessionWindowOperator {
    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.plan.check_batch(&batch)?;
        let (times, _) = self.plan.event_times(&batch)?;
        // Everything that can fail on bad input happens before any state changes.
        let mut inputs = self.plan.inputs(&batch)?;
        let key_columns = self.plan.key_columns(&batch);
        self.keys
            .intern(&key_columns, batch.num_rows(), &mut self.key_ids)?;
        if self.assign_sessions(times.values())? {
            let group_idx = &self.group_idx;
            let late = BooleanArray::new(
                BooleanBuffer::collect_bool(group_idx.len(), |i| group_idx[i] == LATE),
                None,
            );
            out.emit_late(filter_record_batch(&batch, &late)?);
            let on_time = not(&late)?;
            for input in inputs.iter_mut().flatten() {
                *input = filter(input, &on_time)?;
            }
            self.group_idx.retain(|&g| g != LATE);
        }
        self.slots.update(&self.group_idx, &inputs)?;
        self.apply_merges();
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Millis, out: &mut Output) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        self.watermark = watermark;
        let mut fired = Fired::default();
        while let Some(&(end, key, slot)) = self.by_end.first() {
            if end > watermark {
                break;
            }
            self.by_end.pop_first();
            let list = &mut self.sessions[key as usize];
            let pos = list.partition_point(|s| s.end < end);
            let session = list.remove(pos);
            debug_assert_eq!(session.slot, slot);
            fired.keys.push(key);
            fired.starts.push(session.start);
            fired.ends.push(end);
            fired.slots.push(slot);
            if fired.keys.len() >= OUTPUT_BATCH_ROWS {
                self.flush(&mut fired, out)?;
            }
        }
        self.flush(&mut fired, out)?;
        if let Some(remap) = self.keys.compact() {
            self.renumber(&remap);
        }
        Ok(())
    }

    fn snapshot(&mut self, _epoch: Epoch) -> Result<Vec<RecordBatch>> {
        self.snapshot_state()
    }

    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<()> {
        self.restore_state(&state)
    }
}
