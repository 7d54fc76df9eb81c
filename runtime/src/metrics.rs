//! Per-subtask counters of a running job, readable while it runs.
//!
//! Plain atomics owned by the job (no process-global registry), so several jobs, or
//! several runtimes in one test, never share counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::message::{Millis, WATERMARK_START};

/// Counters of one subtask.
#[derive(Debug)]
pub struct SubtaskMetrics {
    pub rows_in: AtomicU64,
    pub rows_out: AtomicU64,
    /// Input rows that arrived behind the watermark and were not used.
    pub late_rows: AtomicU64,
    /// The subtask's current input watermark.
    pub watermark: AtomicI64,
}

impl Default for SubtaskMetrics {
    fn default() -> Self {
        SubtaskMetrics {
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            watermark: AtomicI64::new(WATERMARK_START),
        }
    }
}

/// Counters of one node: one entry per subtask.
#[derive(Debug)]
pub struct NodeMetrics {
    pub name: String,
    pub subtasks: Vec<Arc<SubtaskMetrics>>,
}

impl NodeMetrics {
    fn sum(&self, counter: impl Fn(&SubtaskMetrics) -> &AtomicU64) -> u64 {
        self.subtasks
            .iter()
            .map(|s| counter(s).load(Ordering::Relaxed))
            .sum()
    }

    /// Rows received by all subtasks (sources: rows read).
    pub fn rows_in(&self) -> u64 {
        self.sum(|s| &s.rows_in)
    }

    /// Rows emitted by all subtasks.
    pub fn rows_out(&self) -> u64 {
        self.sum(|s| &s.rows_out)
    }

    /// Late rows of all subtasks.
    pub fn late_rows(&self) -> u64 {
        self.sum(|s| &s.late_rows)
    }

    /// The smallest watermark over the subtasks.
    pub fn watermark(&self) -> Millis {
        self.subtasks
            .iter()
            .map(|s| s.watermark.load(Ordering::Relaxed))
            .min()
            .unwrap_or(WATERMARK_START)
    }
}

/// Checkpoints a job has completed since it started (this attempt only).
#[derive(Debug)]
pub struct CheckpointMetrics {
    /// Checkpoints whose manifest was written.
    pub completed: AtomicU64,
    /// Epoch of the newest completed checkpoint (0: none yet).
    pub last_epoch: AtomicU64,
    /// Wall-clock time the newest checkpoint completed, in Unix milliseconds.
    pub last_completed_at: AtomicI64,
    /// From barrier injection to the manifest being written, for the newest checkpoint.
    pub last_duration_millis: AtomicU64,
    /// Bytes of state files referenced by the newest checkpoint.
    pub last_size_bytes: AtomicU64,
}

impl Default for CheckpointMetrics {
    fn default() -> Self {
        CheckpointMetrics {
            completed: AtomicU64::new(0),
            last_epoch: AtomicU64::new(0),
            last_completed_at: AtomicI64::new(0),
            last_duration_millis: AtomicU64::new(0),
            last_size_bytes: AtomicU64::new(0),
        }
    }
}

impl CheckpointMetrics {
    /// Records a completed checkpoint.
    pub fn record(&self, epoch: u64, completed_at: Millis, duration_millis: u64, size_bytes: u64) {
        self.last_epoch.store(epoch, Ordering::Relaxed);
        self.last_completed_at
            .store(completed_at, Ordering::Relaxed);
        self.last_duration_millis
            .store(duration_millis, Ordering::Relaxed);
        self.last_size_bytes.store(size_bytes, Ordering::Relaxed);
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// `(epoch, completed_at, duration_millis, size_bytes)` of the newest checkpoint.
    pub fn last(&self) -> Option<(u64, Millis, u64, u64)> {
        (self.completed.load(Ordering::Relaxed) > 0).then(|| {
            (
                self.last_epoch.load(Ordering::Relaxed),
                self.last_completed_at.load(Ordering::Relaxed),
                self.last_duration_millis.load(Ordering::Relaxed),
                self.last_size_bytes.load(Ordering::Relaxed),
            )
        })
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
