//! The accumulators of all aggregates of a window operator, and the slots they share.
//!
//! A slot is one group of one pane (hopping/tumbling) or one open session: an index into
//! every accumulator's vectors. Slots of dropped panes and closed sessions go to a free
//! list and are reused, so the vectors stay as large as the peak number of open groups
//! rather than growing with the stream. Freed slots are reset to the identity when they
//! are freed, so a reused slot starts empty.
//!
//! Firing windows needs a few temporary slots to merge panes into: [`Slots::scratch`]
//! appends them past the end and [`Slots::drop_scratch`] truncates them away again.
//!
//! For checkpoints, the state of a list of slots is the state columns of every
//! accumulator side by side ([`Slots::state`]); restoring merges them into new slots.

use arrow::array::ArrayRef;
use arrow::datatypes::Field;
use runnel_runtime::{Error, Result};

use super::accumulator::{GroupsAccumulator, new_accumulator};
use super::aggregate::ResolvedAggregate;

/// Accumulators plus slot allocation.
pub(crate) struct Slots {
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// Slots handed out so far (the length of every accumulator after [`Slots::sync`]).
    len: usize,
    free: Vec<u32>,
}

impl Slots {
    pub fn new(aggregates: &[ResolvedAggregate]) -> Self {
        Slots {
            accumulators: aggregates.iter().map(|a| new_accumulator(a.kind)).collect(),
            len: 0,
            free: Vec::new(),
        }
    }

    /// Hands out a slot. Call [`Slots::sync`] before using it in an accumulator.
    #[inline]
    pub fn alloc(&mut self) -> Result<u32> {
        if let Some(slot) = self.free.pop() {
            return Ok(slot);
        }
        let slot = u32::try_from(self.len)
            .ok()
            .filter(|&s| s < u32::MAX)
            .ok_or_else(|| Error::Internal("more than 2^32 open window groups".into()))?;
        self.len += 1;
        Ok(slot)
    }

    /// Grows the accumulators to cover every slot handed out.
    pub fn sync(&mut self) {
        for acc in &mut self.accumulators {
            acc.resize(self.len);
        }
    }

    /// Adds a batch: row `i` goes to slot `group_idx[i]`; `inputs` holds one (cast)
    /// column per aggregate.
    pub fn update(&mut self, group_idx: &[u32], inputs: &[Option<ArrayRef>]) -> Result<()> {
        for (acc, input) in self.accumulators.iter_mut().zip(inputs) {
            acc.update(group_idx, input.as_ref())?;
        }
        Ok(())
    }

    /// Merges slot `src[i]` into slot `dst[i]` in every accumulator, pairs in order.
    pub fn merge(&mut self, src: &[u32], dst: &[u32]) {
        for acc in &mut self.accumulators {
            acc.merge(src, dst);
        }
    }

    /// Resets `slots` and returns them to the free list.
    pub fn free(&mut self, slots: &[u32]) {
        for acc in &mut self.accumulators {
            acc.reset(slots);
        }
        self.free.extend_from_slice(slots);
    }

    /// Appends `n` empty temporary slots past every allocated one; returns the first.
    pub fn scratch(&mut self, n: usize) -> Result<u32> {
        let base = u32::try_from(self.len)
            .ok()
            .filter(|b| {
                (*b as usize)
                    .checked_add(n)
                    .is_some_and(|end| end < u32::MAX as usize)
            })
            .ok_or_else(|| Error::Internal("more than 2^32 window groups".into()))?;
        for acc in &mut self.accumulators {
            acc.resize(self.len + n);
        }
        Ok(base)
    }

    /// Removes the temporary slots of [`Slots::scratch`].
    pub fn drop_scratch(&mut self) {
        self.sync();
    }

    /// The values of `slots`, one array per aggregate.
    pub fn evaluate(&self, slots: &[u32]) -> Vec<ArrayRef> {
        self.accumulators
            .iter()
            .map(|a| a.evaluate(slots))
            .collect()
    }

    /// The fields of [`Slots::state`]: aggregate `i`'s columns are named `_agg{i}_...`.
    pub fn state_fields(&self) -> Vec<Field> {
        let prefixes = (0..).map(|i| format!("_agg{i}"));
        self.accumulators
            .iter()
            .zip(prefixes)
            .flat_map(|(acc, prefix)| acc.state_fields(&prefix))
            .collect()
    }

    /// The checkpoint state of `slots`, one row per slot, columns as [`Slots::state_fields`].
    pub fn state(&self, slots: &[u32]) -> Vec<ArrayRef> {
        self.accumulators
            .iter()
            .flat_map(|acc| acc.state(slots))
            .collect()
    }

    /// Merges state rows (columns as [`Slots::state`]) into slots: row `i` into slot
    /// `group_idx[i]`, which must have been synced.
    pub fn merge_state(&mut self, group_idx: &[u32], mut columns: &[ArrayRef]) -> Result<()> {
        for acc in &mut self.accumulators {
            let width = acc.state_fields("").len();
            let Some((state, rest)) = columns.split_at_checked(width) else {
                return Err(Error::Internal("too few accumulator state columns".into()));
            };
            acc.merge_state(group_idx, state)?;
            columns = rest;
        }
        if !columns.is_empty() {
            return Err(Error::Internal("too many accumulator state columns".into()));
        }
        Ok(())
    }

    /// Number of slots in use (allocated and not free).
    #[cfg(test)]
    pub fn in_use(&self) -> usize {
        self.len - self.free.len()
    }
}
