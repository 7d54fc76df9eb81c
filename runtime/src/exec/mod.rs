//! Running a [`JobGraph`]: one tokio task per subtask, bounded channels between them.
//!
//! Backpressure comes from the channel bounds: a slow subtask fills its input channels
//! and its upstream waits on `send`. A failing subtask fails the job: the supervisor
//! aborts the other subtasks and reports the first real cause (a panic becomes an
//! [`Error::Internal`] naming the subtask; it never crosses into other tasks).

mod gate;
mod router;
mod tasks;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::graph::{JobGraph, NodeKind, Partitioning};
use crate::message::Message;
use crate::metrics::{JobMetrics, NodeMetrics, SubtaskMetrics};
use crate::operator::OperatorContext;
use gate::InputGate;
use router::{OutEdge, Route, Router};

/// The receiving end of one channel, with the input index of the edge it belongs to.
type InputChannel = (usize, mpsc::Receiver<Message>);

/// How a job runs.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Processing-time clock (idleness of source partitions).
    pub clock: Arc<dyn Clock>,
    /// Messages buffered per channel before the sender waits.
    pub channel_capacity: usize,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            clock: Arc::new(SystemClock),
            channel_capacity: 16,
        }
    }
}

/// A running job.
#[derive(Debug)]
pub struct JobHandle {
    name: String,
    metrics: Arc<JobMetrics>,
    stop: watch::Sender<bool>,
    done: JoinHandle<Result<()>>,
}

impl JobHandle {
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

/// Starts `graph` on the current tokio runtime.
///
/// Operators are created before this returns, so an invalid operator configuration is
/// reported here; sources and sinks open inside their subtasks.
pub fn spawn(graph: JobGraph, config: JobConfig) -> Result<JobHandle> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let metrics = Arc::new(JobMetrics {
        nodes: graph
            .nodes
            .iter()
            .map(|n| NodeMetrics {
                name: n.name.clone(),
                subtasks: (0..n.parallelism).map(|_| Arc::default()).collect(),
            })
            .collect(),
    });

    // Channels: for every edge and every pair of subtasks it connects.
    let mut outputs: Vec<Vec<Vec<OutEdge>>> = graph
        .nodes
        .iter()
        .map(|n| (0..n.parallelism).map(|_| Vec::new()).collect())
        .collect();
    let mut inputs: Vec<Vec<Vec<InputChannel>>> = graph
        .nodes
        .iter()
        .map(|n| (0..n.parallelism).map(|_| Vec::new()).collect())
        .collect();
    for edge in &graph.edges {
        let up = graph.nodes[edge.from].parallelism;
        let down = graph.nodes[edge.to].parallelism;
        for (u, subtask_outputs) in outputs[edge.from].iter_mut().enumerate() {
            let (route, targets): (Route, Vec<usize>) = match &edge.partitioning {
                Partitioning::Forward if up == down => (Route::Direct, vec![u]),
                Partitioning::Forward if down == 1 => (Route::Direct, vec![0]),
                Partitioning::Forward => (Route::RoundRobin { next: u }, (0..down).collect()),
                Partitioning::Hash(columns) => (
                    Route::Hash {
                        columns: columns.clone(),
                        max_key_groups: graph.max_key_groups,
                    },
                    (0..down).collect(),
                ),
            };
            let mut senders = Vec::with_capacity(targets.len());
            for d in targets {
                let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
                senders.push(tx);
                inputs[edge.to][d].push((edge.input, rx));
            }
            subtask_outputs.push(OutEdge {
                port: edge.port,
                route,
                senders,
            });
        }
    }

    let mut tasks = JoinSet::new();
    let mut names = HashMap::new();
    for (id, node) in graph.nodes.iter().enumerate() {
        for subtask in (0..node.parallelism).rev() {
            let task_metrics: Arc<SubtaskMetrics> = metrics.nodes[id].subtasks[subtask].clone();
            let router = Router::new(outputs[id].pop().unwrap_or_default(), task_metrics.clone());
            let gate = InputGate::new(inputs[id].pop().unwrap_or_default());
            let handle = match &node.kind {
                NodeKind::Source { source, watermark } => {
                    let partitions = (0..source.partitions() as u32)
                        .filter(|p| *p as usize % node.parallelism == subtask)
                        .collect();
                    tasks.spawn(tasks::run_source(tasks::SourceTask {
                        source: source.clone(),
                        strategy: watermark.clone(),
                        partitions,
                        router,
                        metrics: task_metrics,
                        clock: config.clock.clone(),
                        stop: stop_rx.clone(),
                    }))
                }
                NodeKind::Operator { factory } => {
                    let operator = factory(&OperatorContext {
                        node: node.name.clone(),
                        subtask,
                        parallelism: node.parallelism,
                        max_key_groups: graph.max_key_groups,
                        input_schemas: node.input_schemas.clone(),
                    })
                    .map_err(|e| subtask_error(&node.name, subtask, e))?;
                    tasks.spawn(tasks::run_operator(operator, gate, router, task_metrics))
                }
                NodeKind::Sink { sink } => tasks.spawn(tasks::run_sink(
                    sink.clone(),
                    subtask,
                    node.parallelism,
                    gate,
                    task_metrics,
                )),
            };
            names.insert(handle.id(), (node.name.clone(), subtask));
        }
    }
    tracing::info!(job = %graph.name, "job started:\n{}", graph.explain());
    let name = graph.name.clone();
    let done = tokio::spawn(supervise(name.clone(), tasks, names));
    Ok(JobHandle {
        name,
        metrics,
        stop: stop_tx,
        done,
    })
}

fn subtask_error(node: &str, subtask: usize, source: Error) -> Error {
    Error::Subtask {
        node: node.to_string(),
        subtask,
        source: Box::new(source),
    }
}

/// Waits for every subtask; on the first failure aborts the rest and reports the cause.
/// A subtask that stopped only because a neighbour went away reports `Cancelled`, which
/// is never preferred over a real cause.
async fn supervise(
    job: String,
    mut tasks: JoinSet<Result<()>>,
    names: HashMap<tokio::task::Id, (String, usize)>,
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
mod tests;
