//! Restarting a failed job from its last checkpoint (Flink's restart strategy).
//!
//! A job that fails because something outside runnel failed (storage, broker) is
//! started again: [`spawn`] claims the chain with a new generation, restores the newest
//! checkpoint and replays the sources from there, so nothing is lost or repeated. Errors
//! that a restart cannot cure are returned at once: a user error (bad record, bad plan),
//! an internal error, or being fenced by a newer instance of the job.
//!
//! The budget counts failures close together, not over the job's life (as Flink's
//! failure-rate strategy and its exponential delay's reset threshold do): an attempt that
//! completed `reset_after_checkpoints` checkpoints before failing was healthy, so its
//! failure starts the count and the backoff afresh. Otherwise a hundred transient
//! failures over weeks would end a job that recovered from each.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{JobConfig, JobHandle, spawn};
use crate::error::{Error, Fault, Result};
use crate::graph::JobGraph;

/// When and how often a failed job is restarted.
#[derive(Debug, Clone)]
pub struct RestartPolicy {
    /// Restarts after which the last error is returned.
    pub max_restarts: u32,
    /// Wait before the first restart; doubles with each further one, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Checkpoints an attempt must complete before failing for the count and the
    /// backoff to start over.
    pub reset_after_checkpoints: u64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 100,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            reset_after_checkpoints: 10,
        }
    }
}

/// Whether a restart from the last checkpoint may cure `error`.
pub fn is_restartable(error: &Error) -> bool {
    !error.is_fenced() && error.fault() == Fault::External
}

/// Runs a job to completion, restarting it from its last checkpoint after restartable
/// failures. `build` makes the graph for each attempt (graphs hold the sources and
/// sinks, which are rebuilt from scratch); `on_start` sees every running attempt.
pub async fn run_with_restarts(
    build: impl Fn() -> Result<JobGraph>,
    config: JobConfig,
    policy: RestartPolicy,
    mut on_start: impl FnMut(&JobHandle),
) -> Result<()> {
    let mut restarts = 0;
    let mut backoff = policy.backoff;
    loop {
        let (outcome, completed) = match spawn(build()?, config.clone()).await {
            Ok(job) => {
                on_start(&job);
                let metrics = job.metrics().clone();
                let outcome = job.join().await;
                (
                    outcome,
                    metrics.checkpoints.completed.load(Ordering::Relaxed),
                )
            }
            Err(e) => (Err(e), 0),
        };
        if completed >= policy.reset_after_checkpoints {
            restarts = 0;
            backoff = policy.backoff;
        }
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) if is_restartable(&e) && restarts < policy.max_restarts => {
                restarts += 1;
                tracing::warn!(
                    restarts,
                    "job failed, restarting from its last checkpoint: {e}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(policy.max_backoff);
            }
            Err(e) => return Err(e),
        }
    }
}
