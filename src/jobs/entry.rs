//! One job's live status, in one place: a [`watch`] channel holds everything that
//! changes while the job runs (its state, error, attempts, counters, the stopper of the
//! current attempt and any request to stop it), so every change is one locked update
//! and anyone can wait for the state they need.

use std::sync::Arc;
use std::time::Duration;

use runnel_runtime::{JobHandle, JobMetrics, JobStopper, Millis};
use tokio::sync::watch;

use super::definition::JobDefinition;
use super::rates::{JobRates, JobRoles, RateWindow};
use super::topology::JobTopology;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Being prepared or restored.
    Starting,
    Running,
    /// Failed for an outside reason; restarting from its last checkpoint.
    Restarting,
    /// A job over a fixed input that committed all of it.
    Finished,
    /// Stopped by this process (shutdown) after a final checkpoint; resumes on restart.
    Stopped,
    /// Dropped (`DELETE /v1/jobs/{id}`, `DROP SINK`): stopped after a final checkpoint
    /// and never resumed.
    Dropped,
    /// A newer instance of the job took over; this one stopped without committing.
    Fenced,
    /// Failed for a reason a restart cannot cure.
    Failed,
}

impl JobState {
    /// Whether the job still runs (or is about to).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobState::Starting | JobState::Running | JobState::Restarting
        )
    }
}

/// A snapshot of one job's status.
#[derive(Debug, Clone)]
pub struct JobStatus {
    pub definition: JobDefinition,
    pub state: JobState,
    pub error: Option<String>,
    /// Restarts of this process's instance after failures.
    pub restarts: u32,
    /// Counters of the current attempt (none before it starts).
    pub metrics: Option<Arc<JobMetrics>>,
    /// Which nodes are the job's input and output (none before its graph is built).
    pub roles: Option<JobRoles>,
    /// The dataflow's nodes and edges (none before its graph is built).
    pub topology: Option<JobTopology>,
    /// Rows per second over the last few seconds (none until sampled twice).
    pub rates: Option<JobRates>,
}

/// Why a running job is asked to stop; a drop outranks a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum StopRequest {
    /// The process shuts down: the job stops after a final checkpoint and resumes later.
    Shutdown,
    /// The job is dropped: it stops after a final checkpoint, for good.
    Drop,
}

struct Live {
    state: JobState,
    error: Option<String>,
    attempts: u32,
    metrics: Option<Arc<JobMetrics>>,
    roles: Option<JobRoles>,
    topology: Option<JobTopology>,
    rates: RateWindow,
    stopper: Option<JobStopper>,
    stop: Option<StopRequest>,
}

/// A job this process knows: its definition and its live status.
pub(super) struct Entry {
    pub(super) definition: JobDefinition,
    live: watch::Sender<Live>,
}

impl Entry {
    pub(super) fn new(definition: JobDefinition, state: JobState) -> Self {
        let (live, _) = watch::channel(Live {
            state,
            error: None,
            attempts: 0,
            metrics: None,
            roles: None,
            topology: None,
            rates: RateWindow::default(),
            stopper: None,
            stop: None,
        });
        Entry { definition, live }
    }

    pub(super) fn state(&self) -> JobState {
        self.live.borrow().state
    }

    pub(super) fn set(&self, state: JobState, error: Option<String>) {
        self.live.send_modify(|live| {
            live.state = state;
            live.error = error;
        });
    }

    /// Asks the job to stop for `reason`, now if an attempt runs, else as soon as one
    /// starts ([`Entry::started`]).
    pub(super) fn request_stop(&self, reason: StopRequest) {
        self.live.send_modify(|live| {
            live.stop = live.stop.max(Some(reason));
            if let Some(stopper) = &live.stopper {
                stopper.stop();
            }
        });
    }

    /// Why the job was asked to stop, if it was.
    pub(super) fn stop_request(&self) -> Option<StopRequest> {
        self.live.borrow().stop
    }

    /// A new attempt of the job runs: it is counted, its counters and stopper kept (with
    /// the checkpoint history of the attempt before), and it is stopped at once if a stop
    /// was requested before it started.
    pub(super) fn started(&self, handle: &JobHandle) {
        self.live.send_modify(|live| {
            live.attempts += 1;
            live.state = JobState::Running;
            if let Some(earlier) = &live.metrics {
                let checkpoints = &handle.metrics().checkpoints;
                checkpoints.carry_over(&earlier.checkpoints);
            }
            live.metrics = Some(handle.metrics().clone());
            live.stopper = Some(handle.stopper());
            if live.stop.is_some() {
                handle.stop();
            }
        });
    }

    /// The shape of the attempt's graph, and so which nodes are the job's input and
    /// output.
    pub(super) fn set_topology(&self, topology: JobTopology) {
        self.live.send_modify(|live| {
            live.roles = Some(JobRoles::of(&topology));
            live.topology = Some(topology);
        });
    }

    /// The newest epoch the job checkpointed, if any.
    pub(super) fn last_epoch(&self) -> Option<u64> {
        let live = self.live.borrow();
        let metrics = live.metrics.as_ref()?;
        metrics.checkpoints.last().map(|c| c.epoch)
    }

    /// Reads the counters of the current attempt into the rate window.
    pub(super) fn sample(&self, now: Millis) {
        self.live.send_if_modified(|live| {
            if let (Some(metrics), Some(roles)) = (&live.metrics, &live.roles) {
                live.rates.observe(metrics, roles, now);
            }
            false
        });
    }

    /// Waits up to `timeout` for the job to stop running; its state then.
    pub(super) async fn wait_inactive(&self, timeout: Duration) -> JobState {
        let mut changes = self.live.subscribe();
        let stopped = changes.wait_for(|live| !live.state.is_active());
        match tokio::time::timeout(timeout, stopped).await {
            Ok(Ok(live)) => live.state,
            _ => self.state(),
        }
    }

    pub(super) fn status(&self) -> JobStatus {
        let live = self.live.borrow();
        JobStatus {
            definition: self.definition.clone(),
            state: live.state,
            error: live.error.clone(),
            restarts: live.attempts.saturating_sub(1),
            metrics: live.metrics.clone(),
            roles: live.roles.clone(),
            topology: live.topology.clone(),
            rates: live.rates.rates(),
        }
    }
}

#[cfg(test)]
impl JobStatus {
    /// A running hot-items job `hot` with `metrics`, for tests of what is shown of it.
    pub(crate) fn running_for_tests(metrics: Arc<JobMetrics>) -> Self {
        let input = super::definition::LogInput {
            topic: "bids".into(),
            until: None,
        };
        let shape = crate::hot_items::HotItems::default();
        JobStatus {
            definition: JobDefinition::hot_items("hot", input, "out", &shape),
            state: JobState::Running,
            error: None,
            restarts: 0,
            metrics: Some(metrics),
            roles: None,
            topology: None,
            rates: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot_items::HotItems;
    use crate::jobs::definition::LogInput;

    fn entry() -> Entry {
        let input = LogInput {
            topic: "bids".into(),
            until: None,
        };
        let definition = JobDefinition::hot_items("j", input, "out", &HotItems::default());
        Entry::new(definition, JobState::Starting)
    }

    #[test]
    fn a_drop_outranks_a_shutdown_whichever_comes_first() {
        let a = entry();
        a.request_stop(StopRequest::Shutdown);
        a.request_stop(StopRequest::Drop);
        assert_eq!(a.stop_request(), Some(StopRequest::Drop));
        let b = entry();
        b.request_stop(StopRequest::Drop);
        b.request_stop(StopRequest::Shutdown);
        assert_eq!(b.stop_request(), Some(StopRequest::Drop));
    }

    #[tokio::test]
    async fn waiting_for_a_stop_ends_when_the_state_changes() {
        let entry = Arc::new(entry());
        let setter = entry.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            setter.set(JobState::Dropped, None);
        });
        let state = entry.wait_inactive(Duration::from_secs(10)).await;
        assert_eq!(state, JobState::Dropped);
        let still = Entry::new(entry.definition.clone(), JobState::Running);
        let waited = still.wait_inactive(Duration::from_millis(10)).await;
        assert_eq!(waited, JobState::Running);
    }
}
