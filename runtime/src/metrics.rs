//! Per-subtask counters of a running job, readable while it runs.
//!
//! Plain atomics owned by the job (no process-global registry), so several jobs, or
//! several runtimes in one test, never share counters.
//!
//! **Backpressure** is measured on both sides of every channel, as Flink shows it:
//! - *time blocked on send*: a subtask whose downstream channel is full waits for room;
//!   the router adds that wait to [`SubtaskMetrics::send_blocked_micros`]. Only a send
//!   that found the channel full reads the clock, so a job without backpressure pays
//!   nothing for it. Its change over a second is the fraction of that second the
//!   subtask could not make progress because of what is downstream of it.
//! - *input fill*: how many messages wait in a subtask's input channels, out of how
//!   many they hold. Senders count a message in before they send it and the receiving
//!   subtask counts it out as it takes it ([`SubtaskMetrics::input_queued`]), so the
//!   reading is live, also while the subtask is stuck inside a slow call. A subtask
//!   whose inputs stay full is the bottleneck; its upstream shows time blocked on send.

mod checkpoints;
mod histogram;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub use checkpoints::{CHECKPOINT_HISTORY, CheckpointMetrics, CheckpointOutcome, CheckpointRecord};
pub use histogram::{HistogramSnapshot, LATENCY_BUCKETS_SECONDS, LatencyHistogram};

use crate::message::{Millis, WATERMARK_START};

/// Counters of one subtask.
#[derive(Debug)]
pub struct SubtaskMetrics {
    pub rows_in: AtomicU64,
    pub rows_out: AtomicU64,
    /// Input rows that arrived behind the watermark and were not used.
    pub late_rows: AtomicU64,
    /// Records a source could not use and skipped (bad format, missing event time).
    pub rejected_rows: AtomicU64,
    /// The subtask's current input watermark.
    pub watermark: AtomicI64,
    /// Microseconds spent waiting for room in a full output channel.
    pub send_blocked_micros: AtomicU64,
    /// Messages in the subtask's input channels, plus senders waiting for room in them.
    /// Signed: a message may be counted out an instant before it is counted in.
    pub input_queued: AtomicI64,
    /// Messages the subtask's input channels hold in all (0 for a source).
    pub input_capacity: AtomicU64,
}

impl Default for SubtaskMetrics {
    fn default() -> Self {
        SubtaskMetrics {
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            rejected_rows: AtomicU64::new(0),
            watermark: AtomicI64::new(WATERMARK_START),
            send_blocked_micros: AtomicU64::new(0),
            input_queued: AtomicI64::new(0),
            input_capacity: AtomicU64::new(0),
        }
    }
}

impl SubtaskMetrics {
    /// Messages waiting in the input channels (never below zero).
    pub fn input_queued(&self) -> u64 {
        self.input_queued.load(Ordering::Relaxed).max(0) as u64
    }

    /// How full the input channels are: 0 empty, 1 full (a waiting sender counts, so a
    /// reading above 1 is shown as 1).
    pub fn input_fill(&self) -> f64 {
        let capacity = self.input_capacity.load(Ordering::Relaxed);
        if capacity == 0 {
            return 0.0;
        }
        (self.input_queued() as f64 / capacity as f64).min(1.0)
    }
}

/// Counters of one node: one entry per subtask.
#[derive(Debug)]
pub struct NodeMetrics {
    pub name: String,
    pub subtasks: Vec<Arc<SubtaskMetrics>>,
}

impl NodeMetrics {
    fn sum(&self, counter: impl Fn(&SubtaskMetrics) -> u64) -> u64 {
        self.subtasks.iter().map(|s| counter(s)).sum()
    }

    /// Rows received by all subtasks (sources: rows read).
    pub fn rows_in(&self) -> u64 {
        self.sum(|s| s.rows_in.load(Ordering::Relaxed))
    }

    /// Rows emitted by all subtasks.
    pub fn rows_out(&self) -> u64 {
        self.sum(|s| s.rows_out.load(Ordering::Relaxed))
    }

    /// Late rows of all subtasks.
    pub fn late_rows(&self) -> u64 {
        self.sum(|s| s.late_rows.load(Ordering::Relaxed))
    }

    /// Records the node's source subtasks skipped as unusable.
    pub fn rejected_rows(&self) -> u64 {
        self.sum(|s| s.rejected_rows.load(Ordering::Relaxed))
    }

    /// The smallest watermark over the subtasks.
    pub fn watermark(&self) -> Millis {
        self.subtasks
            .iter()
            .map(|s| s.watermark.load(Ordering::Relaxed))
            .min()
            .unwrap_or(WATERMARK_START)
    }

    /// Time all subtasks spent blocked on a full output channel, in microseconds.
    pub fn send_blocked_micros(&self) -> u64 {
        self.sum(|s| s.send_blocked_micros.load(Ordering::Relaxed))
    }

    /// Messages waiting in the input channels of all subtasks.
    pub fn input_queued(&self) -> u64 {
        self.sum(SubtaskMetrics::input_queued)
    }

    /// Messages the input channels of all subtasks hold.
    pub fn input_capacity(&self) -> u64 {
        self.sum(|s| s.input_capacity.load(Ordering::Relaxed))
    }

    /// The fill of the fullest subtask's inputs: one slow subtask (a hot key) is the
    /// bottleneck even when its siblings idle, so the maximum is what to show.
    pub fn input_fill(&self) -> f64 {
        self.subtasks
            .iter()
            .map(|s| s.input_fill())
            .fold(0.0, f64::max)
    }
}

/// Counters of a job, by node in graph order.
#[derive(Debug)]
pub struct JobMetrics {
    pub nodes: Vec<NodeMetrics>,
    pub checkpoints: CheckpointMetrics,
}

impl JobMetrics {
    /// The counters of the node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeMetrics> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_fill_is_the_fullest_subtask_and_never_above_one() {
        let node = NodeMetrics {
            name: "sink".into(),
            subtasks: vec![Arc::default(), Arc::default(), Arc::default()],
        };
        assert_eq!(node.input_fill(), 0.0, "no inputs: nothing to fill");
        for s in &node.subtasks {
            s.input_capacity.store(32, Ordering::Relaxed);
        }
        node.subtasks[0].input_queued.store(8, Ordering::Relaxed);
        node.subtasks[1].input_queued.store(-1, Ordering::Relaxed);
        node.subtasks[2].input_queued.store(16, Ordering::Relaxed);
        assert_eq!(node.input_fill(), 0.5);
        assert_eq!(node.input_queued(), 24, "a transient -1 counts as 0");
        assert_eq!(node.input_capacity(), 96);
        node.subtasks[2].input_queued.store(34, Ordering::Relaxed);
        assert_eq!(node.input_fill(), 1.0, "two senders waiting for room");
    }
}
