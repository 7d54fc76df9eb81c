//! The handle of a running job: its counters, a way to stop it, and its outcome.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::metrics::JobMetrics;

/// A running job.
#[derive(Debug)]
pub struct JobHandle {
    name: String,
    metrics: Arc<JobMetrics>,
    stop: Arc<watch::Sender<bool>>,
    done: JoinHandle<Result<()>>,
}

/// Asks a running job to stop, from anywhere (the [`JobHandle`] itself is consumed by
/// [`JobHandle::join`]).
#[derive(Debug, Clone)]
pub struct JobStopper(Arc<watch::Sender<bool>>);

impl JobStopper {
    /// Same as [`JobHandle::stop`].
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl JobHandle {
    pub(crate) fn new(
        name: String,
        metrics: Arc<JobMetrics>,
        stop: watch::Sender<bool>,
        done: JoinHandle<Result<()>>,
    ) -> Self {
        JobHandle {
            name,
            metrics,
            stop: Arc::new(stop),
            done,
        }
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Live counters of every subtask.
    pub fn metrics(&self) -> &Arc<JobMetrics> {
        &self.metrics
    }

    /// Asks the sources to stop. The job then ends cleanly: operators and sinks see the
    /// end of their input, but windows still open are not fired (no final watermark).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// A handle that can stop this job after it has been handed to [`JobHandle::join`].
    pub fn stopper(&self) -> JobStopper {
        JobStopper(self.stop.clone())
    }

    /// Whether the job has finished (successfully or not).
    pub fn is_finished(&self) -> bool {
        self.done.is_finished()
    }

    /// Waits for the job to finish and returns its outcome.
    pub async fn join(self) -> Result<()> {
        match self.done.await {
            Ok(result) => result,
            Err(e) if e.is_cancelled() => Err(Error::Cancelled),
            Err(e) => Err(Error::Internal(format!("job supervisor failed: {e}"))),
        }
    }

    /// Stops every subtask at once, without waiting for in-flight data.
    pub fn abort(&self) {
        self.done.abort();
    }
}
