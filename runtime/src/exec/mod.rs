//! Running a [`JobGraph`]: one tokio task per subtask, bounded channels between them.
//!
//! Backpressure comes from the channel bounds: a slow subtask fills its input channels
//! and its upstream waits on `send`. A failing subtask fails the job: the supervisor
//! aborts the other subtasks and reports the first real cause (a panic becomes an
//! [`Error::Internal`] naming the subtask; it never crosses into other tasks).

mod coordinator;
mod gate;
mod handle;
mod launch;
mod restart;
mod restore;
mod router;
mod tasks;
mod wiring;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::graph::JobGraph;
use crate::message::Message;
use crate::metrics::{JobMetrics, NodeMetrics};
pub use coordinator::CheckpointConfig;
use coordinator::Coordinator;
pub use handle::{JobHandle, JobStopper};
use launch::Launch;
pub use restart::{RestartPolicy, is_restartable, run_with_restarts};
use restore::{Recovered, recover};
use wiring::Wiring;

/// The receiving end of one channel, with the input index of the edge it belongs to.
type InputChannel = (usize, mpsc::Receiver<Message>);

/// How a job runs.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Processing-time clock (idleness of source partitions).
    pub clock: Arc<dyn Clock>,
    /// Messages buffered per channel before the sender waits.
    pub channel_capacity: usize,
    /// Periodic checkpoints; without them the job only commits its sinks at the end.
    pub checkpoints: Option<CheckpointConfig>,
}

impl Default for JobConfig {
    /// The machine's clock, channels of 16 messages, no checkpoints.
    #[allow(clippy::disallowed_types)] // the runtime's one default clock: a job run from Rust
    fn default() -> Self {
        JobConfig {
            clock: Arc::new(crate::clock::SystemClock),
            channel_capacity: 16,
            checkpoints: None,
        }
    }
}

/// Starts `graph` on the current tokio runtime.
///
/// With checkpoints configured, this first claims the job's manifest chain (fencing out
/// any older instance), restores the newest checkpoint (operator state split by key
/// group, source positions) and re-runs phase 2 of the sinks for it, which is a no-op if
/// it had already completed. Operators are created before this returns, so an invalid
/// operator configuration is reported here; sources and sinks open inside their subtasks.
pub async fn spawn(graph: JobGraph, config: JobConfig) -> Result<JobHandle> {
    let metrics = Arc::new(metrics_of(&graph));
    let Recovered {
        durable,
        restored,
        next_epoch,
    } = recover(&graph, config.checkpoints.as_ref()).await?;
    let store = durable
        .as_ref()
        .map(|d| (d.store.clone(), d.position.generation()));
    let mut wiring = Wiring::plan(&graph, config.channel_capacity, &metrics);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (reports_tx, reports_rx) = mpsc::unbounded_channel();
    let mut launch = Launch::new(
        &graph, &config, &metrics, reports_tx, store, stop_rx, restored,
    );
    for id in 0..graph.nodes.len() {
        launch.node(id, &mut wiring)?;
    }
    let Launch {
        mut tasks,
        mut names,
        injections,
        ..
    } = launch;
    let clock = config.clock.clone();
    let coordinator = Coordinator::new(
        &graph,
        injections,
        reports_rx,
        durable,
        next_epoch,
        metrics.clone(),
        clock.clone(),
    );
    let handle = tasks.spawn(coordinator.run());
    names.insert(handle.id(), ("checkpoint coordinator".to_string(), 0));
    tracing::info!(job = %graph.name, "job started:\n{}", graph.explain());
    let supervisor = Supervisor {
        job: graph.name.clone(),
        names,
        metrics: metrics.clone(),
        clock,
    };
    let done = tokio::spawn(supervisor.run(tasks));
    Ok(JobHandle::new(graph.name, metrics, stop_tx, done))
}

/// Counters for every subtask of `graph`, all zero.
fn metrics_of(graph: &JobGraph) -> JobMetrics {
    JobMetrics {
        nodes: graph
            .nodes
            .iter()
            .map(|n| NodeMetrics {
                name: n.name.clone(),
                subtasks: (0..n.parallelism).map(|_| Arc::default()).collect(),
            })
            .collect(),
        checkpoints: Default::default(),
    }
}

pub(crate) fn subtask_error(node: &str, subtask: usize, source: Error) -> Error {
    Error::Subtask {
        node: node.to_string(),
        subtask,
        source: Box::new(source),
    }
}

/// What watches a job's tasks.
struct Supervisor {
    job: String,
    /// Which subtask each task runs.
    names: HashMap<tokio::task::Id, (String, usize)>,
    /// Where a checkpoint that the failure leaves unacknowledged is recorded as failed.
    metrics: Arc<JobMetrics>,
    clock: Arc<dyn Clock>,
}

impl Supervisor {
    /// Waits for every subtask; on the first failure aborts the rest and reports the
    /// cause, which is also the cause of the checkpoint in flight, if any.
    async fn run(self, tasks: JoinSet<Result<()>>) -> Result<()> {
        let outcome = supervise(&self.job, tasks, &self.names).await;
        if let Err(error) = &outcome {
            let now = self.clock.now_millis();
            let message = error.to_string();
            self.metrics.checkpoints.fail_in_flight(&message, now);
        }
        outcome
    }
}

/// Waits for every subtask; on the first failure aborts the rest and reports the cause.
/// A subtask that stopped only because a neighbour went away reports `Cancelled`, which
/// is never preferred over a real cause.
async fn supervise(
    job: &str,
    mut tasks: JoinSet<Result<()>>,
    names: &HashMap<tokio::task::Id, (String, usize)>,
) -> Result<()> {
    let mut failure: Option<Error> = None;
    while let Some(joined) = tasks.join_next_with_id().await {
        let (id, result) = match joined {
            Ok((id, result)) => (id, result),
            Err(e) if e.is_cancelled() => continue,
            Err(e) => {
                let id = e.id();
                let message = panic_message(e.into_panic());
                (id, Err(Error::Internal(format!("panicked: {message}"))))
            }
        };
        let Err(error) = result else { continue };
        let (node, subtask) = names.get(&id).cloned().unwrap_or_default();
        let error = match error {
            Error::Cancelled => Error::Cancelled,
            other => subtask_error(&node, subtask, other),
        };
        if !matches!(error, Error::Cancelled) {
            tracing::error!(job = %job, "job failed: {error}");
        }
        let replace = match &failure {
            None => true,
            Some(Error::Cancelled) => !matches!(error, Error::Cancelled),
            Some(_) => false,
        };
        if replace {
            failure = Some(error);
        }
        tasks.abort_all();
    }
    match failure {
        Some(error) => Err(error),
        None => {
            tracing::info!(job = %job, "job finished");
            Ok(())
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

#[cfg(test)]
mod backpressure_tests;
#[cfg(test)]
mod restart_tests;
#[cfg(test)]
mod restore_watermark_tests;
#[cfg(test)]
mod tests;
