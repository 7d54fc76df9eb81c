//! Running a [`JobGraph`]: one tokio task per subtask, bounded channels between them.
//!
//! Backpressure comes from the channel bounds: a slow subtask fills its input channels
//! and its upstream waits on `send`. A failing subtask fails the job: the supervisor
//! aborts the other subtasks and reports the first real cause (a panic becomes an
//! [`Error::Internal`] naming the subtask; it never crosses into other tasks).

mod coordinator;
mod gate;
mod restart;
mod restore;
mod router;
mod tasks;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::checkpoint::{ChainPosition, start as start_chain};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::graph::{JobGraph, NodeKind, Partitioning};
use crate::message::Message;
use crate::metrics::{JobMetrics, NodeMetrics};
use crate::operator::OperatorContext;
pub use coordinator::CheckpointConfig;
use coordinator::{Coordinator, Durable, NodeInfo};
use gate::InputGate;
pub use restart::{RestartPolicy, is_restartable, run_with_restarts};
use router::{OutEdge, Route, Router};
use tasks::SubtaskCtx;

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
    fn default() -> Self {
        JobConfig {
            clock: Arc::new(SystemClock),
            channel_capacity: 16,
            checkpoints: None,
        }
    }
}

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

/// Starts `graph` on the current tokio runtime.
///
/// With checkpoints configured, this first claims the job's manifest chain (fencing out
/// any older instance), restores the newest checkpoint (operator state split by key
/// group, source positions) and re-runs phase 2 of the sinks for it, which is a no-op if
/// it had already completed. Operators are created before this returns, so an invalid
/// operator configuration is reported here; sources and sinks open inside their subtasks.
pub async fn spawn(graph: JobGraph, config: JobConfig) -> Result<JobHandle> {
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
        checkpoints: Default::default(),
    });

    let (durable, mut restored, next_epoch) = match &config.checkpoints {
        None => (None, restore::Restored::default(), 1),
        Some(checkpoints) => {
            let (durable, restored, next_epoch) = recover(&graph, checkpoints).await?;
            (Some(durable), restored, next_epoch)
        }
    };
    let store = durable
        .as_ref()
        .map(|d: &Durable| (d.store.clone(), d.position.generation()));

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

    let (reports_tx, reports_rx) = mpsc::unbounded_channel();
    let mut injections = Vec::new();
    let mut tasks = JoinSet::new();
    let mut names = HashMap::new();
    for (id, node) in graph.nodes.iter().enumerate() {
        let state = restored.state.remove(&node.name).unwrap_or_default();
        let watermark = restored.watermarks.get(&node.name).copied();
        for subtask in (0..node.parallelism).rev() {
            let ctx = SubtaskCtx {
                node: id,
                name: node.name.clone(),
                subtask,
                metrics: metrics.nodes[id].subtasks[subtask].clone(),
                reports: reports_tx.clone(),
                store: store.clone(),
            };
            let router = Router::new(outputs[id].pop().unwrap_or_default(), ctx.metrics.clone());
            let gate = InputGate::new(inputs[id].pop().unwrap_or_default());
            let handle = match &node.kind {
                NodeKind::Source { source, watermark } => {
                    let partitions = (0..source.partitions() as u32)
                        .filter(|p| *p as usize % node.parallelism == subtask)
                        .collect();
                    let (inject_tx, inject_rx) = mpsc::unbounded_channel();
                    injections.push(inject_tx);
                    tasks.spawn(tasks::run_source(tasks::SourceTask {
                        ctx,
                        source: source.clone(),
                        strategy: watermark.clone(),
                        partitions,
                        positions: restored
                            .positions
                            .get(&node.name)
                            .cloned()
                            .unwrap_or_default(),
                        router,
                        clock: config.clock.clone(),
                        stop: stop_rx.clone(),
                        injections: inject_rx,
                    }))
                }
                NodeKind::Operator { factory } => {
                    let mut operator = factory(&OperatorContext {
                        node: node.name.clone(),
                        subtask,
                        parallelism: node.parallelism,
                        max_key_groups: graph.max_key_groups,
                        input_schemas: node.input_schemas.clone(),
                    })
                    .map_err(|e| subtask_error(&node.name, subtask, e))?;
                    if !state.is_empty() {
                        let mine = restore::state_for_subtask(
                            &state,
                            subtask,
                            node.parallelism,
                            graph.max_key_groups,
                        )?;
                        operator
                            .restore(mine)
                            .map_err(|e| subtask_error(&node.name, subtask, e))?;
                    }
                    tasks.spawn(tasks::run_operator(ctx, operator, gate, router, watermark))
                }
                NodeKind::Sink { sink } => {
                    tasks.spawn(tasks::run_sink(ctx, sink.clone(), node.parallelism, gate))
                }
            };
            names.insert(handle.id(), (node.name.clone(), subtask));
        }
    }
    injections.reverse();
    drop(reports_tx);
    let coordinator = Coordinator {
        job: graph.name.clone(),
        nodes: graph
            .nodes
            .iter()
            .map(|n| NodeInfo {
                name: n.name.clone(),
                parallelism: n.parallelism,
                sink: match &n.kind {
                    NodeKind::Sink { sink } => Some(sink.clone()),
                    _ => None,
                },
            })
            .collect(),
        max_key_groups: graph.max_key_groups,
        sources: injections,
        reports: reports_rx,
        durable,
        next_epoch,
        metrics: metrics.clone(),
        clock: config.clock.clone(),
    };
    let handle = tasks.spawn(coordinator.run());
    names.insert(handle.id(), ("checkpoint coordinator".to_string(), 0));
    tracing::info!(job = %graph.name, "job started:\n{}", graph.explain());
    let name = graph.name.clone();
    let done = tokio::spawn(supervise(name.clone(), tasks, names));
    Ok(JobHandle {
        name,
        metrics,
        stop: Arc::new(stop_tx),
        done,
    })
}

/// Claims the job's chain and loads the checkpoint to resume from, re-committing its
/// sinks. Returns the checkpointing state, what to restore, and the next epoch.
async fn recover(
    graph: &JobGraph,
    config: &CheckpointConfig,
) -> Result<(Durable, restore::Restored, u64)> {
    let started = start_chain(config.store.as_ref(), config.policy).await?;
    if !started.skipped.is_empty() {
        tracing::warn!(
            job = %graph.name,
            "skipped corrupt checkpoint manifests {:?}, restoring an older checkpoint",
            started.skipped
        );
    }
    let position: ChainPosition = started.position;
    // Every manifest's epoch is at most its sequence number (one manifest per
    // checkpoint, and epochs start above the fence), so epochs above the fence's number
    // were never used, not even by a checkpoint whose manifest is now corrupt or missing
    // and which a sink may already have committed. A sink keyed by epoch (Iceberg) can
    // therefore trust that a new epoch is new, also after a fallback.
    let epoch_floor = started.seq + 1;
    let (restored, next_epoch) = match &started.restore {
        None => (restore::Restored::default(), epoch_floor),
        Some(meta) => {
            let mut restored = restore::load(config.store.as_ref(), meta, graph).await?;
            for (node, staged) in restore::staged_sinks(meta, &mut restored, graph) {
                if let NodeKind::Sink { sink } = &graph.nodes[node].kind {
                    sink.commit_as(meta.epoch, position.generation(), staged)
                        .await?;
                }
            }
            tracing::info!(
                job = %graph.name,
                epoch = meta.epoch,
                generation = position.generation(),
                "restored from checkpoint"
            );
            (restored, epoch_floor.max(meta.epoch + 1))
        }
    };
    let durable = Durable {
        store: config.store.clone(),
        position,
        interval: config.interval,
        retain: config.retain,
    };
    Ok((durable, restored, next_epoch))
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
