//! Per-subtask counters of a running job, readable while it runs.
//!
//! Plain atomics owned by the job (no process-global registry), so several jobs, or
//! several runtimes in one test, never share counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

impl Default for SubtaskMetrics {
    fn default() -> Self {
        SubtaskMetrics {
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            rejected_rows: AtomicU64::new(0),
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

    /// Records the node's source subtasks skipped as unusable.
    pub fn rejected_rows(&self) -> u64 {
        self.sum(|s| &s.rejected_rows)
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
    /// Phase-2 commit latency of each sink node, by node name (see
    /// [`CheckpointMetrics::record_sink_commit`]).
    sink_commits: Mutex<BTreeMap<String, Arc<LatencyHistogram>>>,
}

impl Default for CheckpointMetrics {
    fn default() -> Self {
        CheckpointMetrics {
            completed: AtomicU64::new(0),
            last_epoch: AtomicU64::new(0),
            last_completed_at: AtomicI64::new(0),
            last_duration_millis: AtomicU64::new(0),
            last_size_bytes: AtomicU64::new(0),
            sink_commits: Mutex::default(),
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

    /// Records how long phase 2 of sink node `sink` took for one epoch: the
    /// `Sink::commit` call the coordinator makes once the manifest is durable. Phase 2
    /// is where a table format pays for its catalog round trips, so this is the number
    /// that tells an Iceberg commit from a log append.
    pub fn record_sink_commit(&self, sink: &str, took: Duration) {
        let histogram = {
            // Plain inserts and clones only: a panic elsewhere leaves the map whole.
            let mut sinks = self.sink_commits.lock().unwrap_or_else(|p| p.into_inner());
            match sinks.get(sink) {
                Some(h) => h.clone(),
                None => sinks.entry(sink.to_owned()).or_default().clone(),
            }
        };
        histogram.observe(took);
    }

    /// The commit latency of every sink that has committed, by node name.
    pub fn sink_commits(&self) -> Vec<(String, HistogramSnapshot)> {
        let sinks = self.sink_commits.lock().unwrap_or_else(|p| p.into_inner());
        sinks
            .iter()
            .map(|(name, h)| (name.clone(), h.snapshot()))
            .collect()
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

/// Upper bounds, in seconds, of the buckets of a [`LatencyHistogram`]: from a local log
/// append (milliseconds) to a slow catalog commit on remote storage (seconds).
pub const LATENCY_BUCKETS_SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A latency histogram with fixed buckets ([`LATENCY_BUCKETS_SECONDS`]), lock-free to
/// update, in the shape Prometheus expects (cumulative buckets, a sum and a count).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative); the last entry is above every bound.
    buckets: [AtomicU64; LATENCY_BUCKETS_SECONDS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// What a [`LatencyHistogram`] held when it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations at or below it)`, cumulative, ending with
    /// `f64::INFINITY` and the count.
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl LatencyHistogram {
    /// Adds one observation.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = LATENCY_BUCKETS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS_SECONDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The histogram now. Read while observations land, the buckets may be one
    /// observation ahead of or behind the count; the count is the last bucket.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let bounds = LATENCY_BUCKETS_SECONDS.iter().copied();
        let buckets = bounds
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.buckets)
            .map(|(bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (bound, cumulative)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: cumulative,
        }
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
    fn latencies_fall_into_cumulative_buckets() {
        let histogram = LatencyHistogram::default();
        for millis in [0, 1, 3, 40, 40, 700, 60_000] {
            histogram.observe(Duration::from_millis(millis));
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 7);
        assert!((snapshot.sum_seconds - 60.784).abs() < 1e-9, "{snapshot:?}");
        let at = |bound: f64| {
            snapshot
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map(|(_, n)| *n)
        };
        assert_eq!(at(0.001), Some(2), "0 ms and 1 ms are at or below 1 ms");
        assert_eq!(at(0.005), Some(3));
        assert_eq!(at(0.05), Some(5));
        assert_eq!(at(1.0), Some(6));
        assert_eq!(at(10.0), Some(6), "a minute is above every bound");
        assert_eq!(snapshot.buckets.last(), Some(&(f64::INFINITY, 7)));
        assert!(snapshot.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn sink_commits_are_kept_per_sink() {
        let metrics = CheckpointMetrics::default();
        assert!(metrics.sink_commits().is_empty());
        metrics.record_sink_commit("table", Duration::from_millis(30));
        metrics.record_sink_commit("output", Duration::from_millis(2));
        metrics.record_sink_commit("table", Duration::from_millis(50));
        let sinks = metrics.sink_commits();
        let names: Vec<&str> = sinks.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["output", "table"]);
        assert_eq!((sinks[0].1.count, sinks[1].1.count), (1, 2));
        assert!((sinks[1].1.sum_seconds - 0.08).abs() < 1e-9);
    }
}
