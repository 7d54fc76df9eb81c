//! Tumbling, hopping and cumulative windows, computed from panes.
//!
//! Windows of `size` start at every multiple of `slide` (aligned to epoch 0). Cutting
//! time into panes of `gcd(size, slide)` makes every window an exact union of
//! `size / pane` consecutive panes and every pane part of the same set of windows, so:
//!
//! * each row is aggregated **once**, into the slot of its (pane, key) group, however many
//!   windows it belongs to (HOP 10s/2s would otherwise copy each row into 5 windows);
//! * when the watermark passes a window's end, the window is the merge of its panes'
//!   slots, done by key id through a dense `Vec` (no hashing at fire time);
//! * a pane is dropped, its slots freed and its keys released, once its last window
//!   (the one starting at the last multiple of `slide` at or before the pane) has fired.
//!
//! Tumbling is hopping with `slide == size`: one pane per window and no merge at all.
//!
//! Cumulative windows start at every multiple of their maximum size and end at every
//! step after that start, up to the maximum size: with panes of one step, the window
//! `[b, b + k * step)` is the union of the first `k` panes of the period starting at `b`.
//! The layout is then `size == slide == max_size` (a period, which is also the last
//! window of each pane) and `pane == step`; only the fire loop differs, walking the
//! periods that hold panes and the ends of each.
//!
//! Lateness follows Flink: a row is late iff every window it belongs to has fired, i.e.
//! its last window ends at or before the current watermark. A row whose first windows
//! fired but whose last has not still counts in the windows that have not fired (its
//! pane's earlier windows are gone). Late rows are handed to [`Output::emit_late`].
//!
//! Only windows that hold at least one row fire (as in Flink). All windows fired by one
//! watermark are emitted in order of `window_end`, in as few batches as
//! [`OUTPUT_BATCH_ROWS`] allows.
//!
//! Checkpoints (`pane_snapshot`): the open (pane, key) groups and the watermark, which
//! says which of their windows have fired.

use std::collections::BTreeMap;

use arrow::array::BooleanArray;
use arrow::buffer::BooleanBuffer;
use arrow::record_batch::RecordBatch;
use hashbrown::HashMap;
use hashbrown::hash_map::Entry;
use runnel_runtime::{Epoch, Millis, Operator, Output, Result, WATERMARK_START};

use super::checkpoint::StateLayout;
use super::group_keys::{DEAD, GroupKeys};
use super::plan::{OUTPUT_BATCH_ROWS, WindowPlan, split_late};
use super::slots::Slots;

#[path = "pane_layout.rs"]
mod layout;
#[path = "pane_snapshot.rs"]
mod snapshot;

pub(crate) use layout::PaneLayout;

/// The groups of one pane, in creation order.
#[derive(Default)]
struct PaneGroups {
    keys: Vec<u32>,
    slots: Vec<u32>,
}

/// Rows collected for output while firing: one per (window, key).
#[derive(Default)]
struct Emission {
    keys: Vec<u32>,
    starts: Vec<Millis>,
    ends: Vec<Millis>,
    /// Pane slot `src[i]` merges into output row `row[i]`.
    src: Vec<u32>,
    row: Vec<u32>,
}

const NO_ROW: u32 = u32::MAX;

/// `recent` entry of a key with no cached group (no pane starts there: times are bounded).
const NO_PANE: Millis = Millis::MIN;

/// The tumbling / hopping / cumulative window aggregate operator.
pub(crate) struct PaneWindowOperator {
    plan: WindowPlan,
    layout: PaneLayout,
    keys: GroupKeys,
    slots: Slots,
    /// (pane start, key id) -> slot.
    groups: HashMap<(Millis, u32), u32>,
    /// Open panes by start time.
    panes: BTreeMap<Millis, PaneGroups>,
    /// Per key id: (pane start, slot) of the group it used last, or [`NO_PANE`]. Rows of
    /// a key mostly hit the same pane as its previous row, and then skip `groups`.
    recent: Vec<(Millis, u32)>,
    watermark: Millis,
    key_ids: Vec<u32>,
    group_idx: Vec<u32>,
    /// Key id -> output row of the window being collected ([`NO_ROW`] if none).
    window_row: Vec<u32>,
    checkpoint: StateLayout,
}

impl PaneWindowOperator {
    pub fn new(plan: WindowPlan, layout: PaneLayout, max_key_groups: u32) -> Result<Self> {
        let slots = Slots::new(plan.aggregates());
        Ok(PaneWindowOperator {
            keys: GroupKeys::new(plan.input_schema(), plan.key_indices())?,
            checkpoint: snapshot::state_layout(&plan, &layout, &slots, max_key_groups)?,
            slots,
            plan,
            layout,
            groups: HashMap::new(),
            panes: BTreeMap::new(),
            recent: Vec::new(),
            watermark: WATERMARK_START,
            key_ids: Vec::new(),
            group_idx: Vec::new(),
            window_row: Vec::new(),
        })
    }

    /// Sets `group_idx[i]` to the slot of row `i`'s (pane, key), creating groups as needed.
    fn assign_groups(&mut self, times: &[Millis]) -> Result<()> {
        let Self {
            layout,
            keys,
            slots,
            groups,
            panes,
            recent,
            key_ids,
            group_idx,
            ..
        } = self;
        group_idx.clear();
        group_idx.reserve(times.len());
        recent.resize(keys.len(), (NO_PANE, 0));
        for (&t, &key) in times.iter().zip(key_ids.iter()) {
            let pane = layout.pane_start(t);
            let cached = &mut recent[key as usize];
            if cached.0 == pane {
                group_idx.push(cached.1);
                continue;
            }
            let slot = match groups.entry((pane, key)) {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => {
                    let slot = slots.alloc()?;
                    e.insert(slot);
                    let groups = panes.entry(pane).or_default();
                    groups.keys.push(key);
                    groups.slots.push(slot);
                    keys.retain(key);
                    slot
                }
            };
            *cached = (pane, slot);
            group_idx.push(slot);
        }
        slots.sync();
        Ok(())
    }

    /// Adds the groups of every pane of window `[start, end)` to `emission`.
    fn collect_window(&mut self, start: Millis, end: Millis, emission: &mut Emission) {
        let first_row = emission.keys.len();
        for groups in self.panes.range(start..end).map(|(_, g)| g) {
            for (&key, &slot) in groups.keys.iter().zip(&groups.slots) {
                let row = &mut self.window_row[key as usize];
                if *row == NO_ROW {
                    *row = emission.keys.len() as u32;
                    emission.keys.push(key);
                    emission.starts.push(start);
                    emission.ends.push(end);
                }
                emission.src.push(slot);
                emission.row.push(*row);
            }
        }
        for &key in &emission.keys[first_row..] {
            self.window_row[key as usize] = NO_ROW;
        }
    }

    /// Merges the collected panes into output rows and emits them as one batch.
    fn flush(&mut self, emission: &mut Emission, out: &mut Output) -> Result<()> {
        let rows = emission.keys.len();
        if rows == 0 {
            return Ok(());
        }
        let results = if self.layout.pane == self.layout.size {
            // Tumbling: one pane per window and one slot per (window, key).
            self.slots.evaluate(&emission.src)
        } else {
            let base = self.slots.scratch(rows)?;
            let dst: Vec<u32> = emission.row.iter().map(|&r| base + r).collect();
            self.slots.merge(&emission.src, &dst);
            let scratch: Vec<u32> = (base..base + rows as u32).collect();
            let results = self.slots.evaluate(&scratch);
            self.slots.drop_scratch();
            results
        };
        let keys = self.keys.columns(&emission.keys)?;
        let batch = self.plan.output_batch(
            keys,
            std::mem::take(&mut emission.starts),
            std::mem::take(&mut emission.ends),
            results,
        )?;
        out.emit(batch);
        *emission = Emission::default();
        Ok(())
    }

    /// Fires every window with data whose end is in `(previous, watermark]`.
    fn fire(&mut self, previous: Millis, watermark: Millis, out: &mut Output) -> Result<()> {
        if self.layout.cumulative {
            return self.fire_cumulative(previous, watermark, out);
        }
        let Some(&first_pane) = self.panes.keys().next() else {
            return Ok(());
        };
        let PaneLayout { size, slide, .. } = self.layout;
        let mut start = self.layout.first_window_start(first_pane);
        if start + size <= previous {
            // Windows ending at or before `previous` fired at that watermark already.
            start = self.layout.first_window_start(previous);
        }
        self.window_row.resize(self.keys.len(), NO_ROW);
        let mut emission = Emission::default();
        while start + size <= watermark {
            self.collect_window(start, start + size, &mut emission);
            if emission.keys.len() >= OUTPUT_BATCH_ROWS {
                self.flush(&mut emission, out)?;
            }
            // The next window holding a pane: panes before `start + slide` are not in it.
            let next = start + slide;
            let Some((&pane, _)) = self.panes.range(next..).next() else {
                break;
            };
            start = next.max(self.layout.first_window_start(pane));
        }
        self.flush(&mut emission, out)
    }

    /// [`Self::fire`] for cumulative windows: period by period (only those holding
    /// panes), the windows from the first that holds a pane to the last that ends by
    /// the watermark, which is the order of their ends.
    fn fire_cumulative(
        &mut self,
        previous: Millis,
        watermark: Millis,
        out: &mut Output,
    ) -> Result<()> {
        let PaneLayout {
            size, pane: step, ..
        } = self.layout;
        self.window_row.resize(self.keys.len(), NO_ROW);
        let mut emission = Emission::default();
        let mut next_pane = self.panes.keys().next().copied();
        while let Some(first_pane) = next_pane {
            let start = first_pane - first_pane.rem_euclid(size);
            let period_end = start + size;
            // Windows ending at or before `previous` fired at that watermark already. An
            // open pane's period ends after `previous` (it would have been dropped), so
            // this stays within the period.
            let mut end = first_pane + step;
            if end <= previous {
                end = self.layout.first_end_after(previous);
            }
            while end <= watermark.min(period_end) {
                self.collect_window(start, end, &mut emission);
                if emission.keys.len() >= OUTPUT_BATCH_ROWS {
                    self.flush(&mut emission, out)?;
                }
                end += step;
            }
            if period_end > watermark {
                break;
            }
            next_pane = self.panes.range(period_end..).next().map(|(&p, _)| p);
        }
        self.flush(&mut emission, out)
    }

    /// Drops the panes whose last window has fired.
    fn drop_panes(&mut self, watermark: Millis) {
        while let Some(entry) = self.panes.first_entry() {
            if self.layout.last_window_end(*entry.key()) > watermark {
                break;
            }
            let (pane, groups) = entry.remove_entry();
            for &key in &groups.keys {
                self.groups.remove(&(pane, key));
                self.keys.release(key);
                let cached = &mut self.recent[key as usize];
                if cached.0 == pane {
                    cached.0 = NO_PANE;
                }
            }
            self.slots.free(&groups.slots);
        }
        if let Some(remap) = self.keys.compact() {
            self.renumber(&remap);
        }
    }

    /// Applies a key-id renumbering from [`GroupKeys::compact`].
    fn renumber(&mut self, remap: &[u32]) {
        self.groups.clear();
        for (&pane, groups) in &mut self.panes {
            for (key, &slot) in groups.keys.iter_mut().zip(&groups.slots) {
                *key = remap[*key as usize];
                debug_assert_ne!(*key, DEAD, "an open pane uses a released key");
                self.groups.insert((pane, *key), slot);
            }
        }
        self.window_row.truncate(self.keys.len());
        let mut recent = vec![(NO_PANE, 0); self.keys.len()];
        for (&new, &cached) in remap.iter().zip(&self.recent) {
            if new != DEAD {
                recent[new as usize] = cached;
            }
        }
        self.recent = recent;
    }
}

#[cfg(test)]
impl PaneWindowOperator {
    /// (slots in use, open groups, open panes): all zero once every window fired.
    pub fn open_state(&self) -> (usize, usize, usize) {
        (self.slots.in_use(), self.groups.len(), self.panes.len())
    }
}

impl Operator for PaneWindowOperator {
    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.plan.check_batch(&batch)?;
        let (mut times, min_time) = self.plan.event_times(&batch)?;
        let mut batch = batch;
        let (layout, watermark) = (self.layout, self.watermark);
        if layout.last_window_end(min_time) <= watermark {
            let values = times.values();
            let late = BooleanBuffer::collect_bool(values.len(), |i| {
                layout.last_window_end(values[i]) <= watermark
            });
            batch = split_late(&batch, &BooleanArray::new(late, None), out)?;
            if batch.num_rows() == 0 {
                return Ok(());
            }
            times = self.plan.event_times(&batch)?.0;
        }
        // Everything that can fail on bad input happens before any state changes.
        let inputs = self.plan.inputs(&batch)?;
        let key_columns = self.plan.key_columns(&batch);
        self.keys
            .intern(&key_columns, batch.num_rows(), &mut self.key_ids)?;
        self.assign_groups(times.values())?;
        self.slots.update(&self.group_idx, &inputs)
    }

    fn on_watermark(&mut self, watermark: Millis, out: &mut Output) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        let previous = std::mem::replace(&mut self.watermark, watermark);
        self.fire(previous, watermark, out)?;
        self.drop_panes(watermark);
        Ok(())
    }

    fn snapshot(&mut self, _epoch: Epoch) -> Result<Vec<RecordBatch>> {
        self.snapshot_state()
    }

    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<()> {
        self.restore_state(&state)
    }
}
