//! What a job's checkpoints did: counters, the phase-2 latency of every sink, and a
//! bounded history of recent checkpoints, completed and failed.
//!
//! The history is what a person reads when checkpoints get slow or fail: each entry has
//! its epoch, how long it took, how much state it wrote, how long the sinks took to
//! commit it, and for a failure the message. It is kept in memory with the job's other
//! counters (no registry, nothing written anywhere) and bounded to
//! [`CHECKPOINT_HISTORY`] entries, so a job that runs for months holds the same few
//! kilobytes. A restarted attempt starts with new counters; whoever keeps the job
//! hands the old attempt's history to the new one ([`CheckpointMetrics::carry_over`]),
//! so the failure that caused a restart stays visible after it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::histogram::{HistogramSnapshot, LatencyHistogram};
use crate::message::{Epoch, Millis};

/// Entries kept by [`CheckpointMetrics::history`]; older ones are dropped.
pub const CHECKPOINT_HISTORY: usize = 100;

/// How a checkpoint ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointOutcome {
    /// Its manifest is durable and the sinks committed it.
    Completed,
    /// It failed with this message; the job restarts from the previous checkpoint.
    Failed(String),
}

/// One checkpoint of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    pub epoch: Epoch,
    /// Wall-clock time (Unix milliseconds) its manifest became durable, or it failed.
    pub finished_at: Millis,
    /// From barrier injection to the manifest being durable (or to the failure).
    pub duration_millis: u64,
    /// Bytes of state files the checkpoint references (0 for a failure).
    pub size_bytes: u64,
    /// Phase 2 of every sink for this epoch, one after the other (none for a failure
    /// before phase 2).
    pub sink_commit_millis: Option<u64>,
    pub outcome: CheckpointOutcome,
}

impl CheckpointRecord {
    /// Checkpoint `epoch` failed at `finished_at`, `duration_millis` after its barriers
    /// went out, with `message`.
    pub fn failed(
        epoch: Epoch,
        finished_at: Millis,
        duration_millis: u64,
        message: String,
    ) -> Self {
        CheckpointRecord {
            epoch,
            finished_at,
            duration_millis,
            size_bytes: 0,
            sink_commit_millis: None,
            outcome: CheckpointOutcome::Failed(message),
        }
    }

    pub fn is_completed(&self) -> bool {
        self.outcome == CheckpointOutcome::Completed
    }
}

#[derive(Debug, Default)]
struct History {
    /// Oldest first.
    records: VecDeque<CheckpointRecord>,
    /// The epoch whose barrier is travelling, and the wall-clock time it was injected.
    in_flight: Option<(Epoch, Millis)>,
}

impl History {
    fn push(&mut self, record: CheckpointRecord) {
        if self.records.len() == CHECKPOINT_HISTORY {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }
}

/// Checkpoints of one attempt of a job.
#[derive(Debug, Default)]
pub struct CheckpointMetrics {
    /// Checkpoints whose manifest was written and whose sinks committed.
    pub completed: AtomicU64,
    /// Checkpoints that failed, before or after their manifest (the attempt fails with
    /// them; a restart commits the sinks of the newest durable one again).
    pub failed: AtomicU64,
    history: Mutex<History>,
    /// Phase-2 commit latency of each sink node, by node name (see
    /// [`CheckpointMetrics::record_sink_commit`]).
    sink_commits: Mutex<BTreeMap<String, Arc<LatencyHistogram>>>,
}

impl CheckpointMetrics {
    // Plain pushes and clones only under these locks: a panic elsewhere leaves them whole.
    fn history_lock(&self) -> MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The barrier of `epoch` was injected at `started_at` (Unix milliseconds).
    pub fn begin(&self, epoch: Epoch, started_at: Millis) {
        self.history_lock().in_flight = Some((epoch, started_at));
    }

    /// Records how the checkpoint in flight ended.
    pub fn record(&self, record: CheckpointRecord) {
        let counter = match record.outcome {
            CheckpointOutcome::Completed => &self.completed,
            CheckpointOutcome::Failed(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut history = self.history_lock();
        history.in_flight = None;
        history.push(record);
    }

    /// The job failed at `now` with `message`: the checkpoint in flight, if any, failed
    /// with it (its barrier will never be acknowledged).
    pub fn fail_in_flight(&self, message: &str, now: Millis) {
        let Some((epoch, started_at)) = self.history_lock().in_flight else {
            return;
        };
        self.record(CheckpointRecord {
            epoch,
            finished_at: now,
            duration_millis: u64::try_from(now.saturating_sub(started_at)).unwrap_or(0),
            size_bytes: 0,
            sink_commit_millis: None,
            outcome: CheckpointOutcome::Failed(message.to_owned()),
        });
    }

    /// The recent checkpoints, oldest first.
    pub fn history(&self) -> Vec<CheckpointRecord> {
        self.history_lock().records.iter().cloned().collect()
    }

    /// The newest completed checkpoint.
    pub fn last(&self) -> Option<CheckpointRecord> {
        let history = self.history_lock();
        history
            .records
            .iter()
            .rev()
            .find(|r| r.is_completed())
            .cloned()
    }

    /// Puts the history of an earlier attempt of the same job before this one's.
    pub fn carry_over(&self, earlier: &CheckpointMetrics) {
        let older = earlier.history();
        let mut history = self.history_lock();
        let newer = std::mem::take(&mut history.records);
        for record in older.into_iter().chain(newer) {
            history.push(record);
        }
    }

    /// Records how long phase 2 of sink node `sink` took for one epoch: the
    /// `Sink::commit` call the coordinator makes once the manifest is durable. Phase 2
    /// is where a table format pays for its catalog round trips, so this is the number
    /// that tells an Iceberg commit from a log append.
    pub fn record_sink_commit(&self, sink: &str, took: Duration) {
        let histogram = {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completed(epoch: Epoch) -> CheckpointRecord {
        CheckpointRecord {
            epoch,
            finished_at: 1_000 * epoch as Millis,
            duration_millis: 20,
            size_bytes: 4096,
            sink_commit_millis: Some(3),
            outcome: CheckpointOutcome::Completed,
        }
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

    #[test]
    fn the_history_keeps_failures_with_their_message_and_stays_bounded() {
        let metrics = CheckpointMetrics::default();
        assert_eq!(metrics.last(), None);
        metrics.fail_in_flight("nothing in flight", 5);
        assert!(metrics.history().is_empty());
        metrics.begin(1, 500);
        metrics.record(completed(1));
        metrics.begin(2, 1_500);
        metrics.fail_in_flight("window[1]: storage unavailable", 1_750);
        let history = metrics.history();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].epoch, 2);
        assert_eq!(history[1].duration_millis, 250);
        assert_eq!(
            history[1].outcome,
            CheckpointOutcome::Failed("window[1]: storage unavailable".into())
        );
        assert_eq!(
            metrics.last().map(|r| r.epoch),
            Some(1),
            "the newest completed"
        );
        assert_eq!(metrics.completed.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.failed.load(Ordering::Relaxed), 1);
        for epoch in 3..(3 + CHECKPOINT_HISTORY as u64) {
            metrics.record(completed(epoch));
        }
        let history = metrics.history();
        assert_eq!(history.len(), CHECKPOINT_HISTORY);
        assert_eq!(history[0].epoch, 3, "the oldest were dropped");
    }

    #[test]
    fn a_new_attempt_starts_with_the_history_of_the_last() {
        let first = CheckpointMetrics::default();
        first.record(completed(1));
        first.begin(2, 0);
        first.fail_in_flight("fenced", 10);
        let second = CheckpointMetrics::default();
        second.record(completed(3));
        second.carry_over(&first);
        let epochs: Vec<Epoch> = second.history().iter().map(|r| r.epoch).collect();
        assert_eq!(epochs, [1, 2, 3]);
        assert_eq!(
            second.completed.load(Ordering::Relaxed),
            1,
            "counters stay per attempt"
        );
    }
}
