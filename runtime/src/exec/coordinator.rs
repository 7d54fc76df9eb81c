//! The checkpoint coordinator of one running job.
//!
//! It injects `Barrier(epoch)` at every source subtask, collects one acknowledgement per
//! subtask (source positions, state files, staged sink output), and when every subtask
//! has acknowledged an epoch it writes that epoch's manifest (create-only, fenced) and
//! only then runs phase 2 of every sink, one sink after the other in graph order, timing
//! each commit ([`crate::CheckpointMetrics::record_sink_commit`]). At most one checkpoint
//! is in flight. Each checkpoint, and the message of one that fails here, goes into the
//! job's checkpoint history ([`crate::CheckpointMetrics::history`]).
//!
//! The end of the input is a checkpoint too: when every source subtask has finished
//! (bounded input exhausted, or the job was asked to stop) the coordinator injects a
//! final barrier, and the sources send `End` right behind it. So sinks commit
//! everything a job produced, with or without periodic checkpoints.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::checkpoint::{
    ChainPosition, CheckpointMeta, CheckpointStore, CommitOutcome, CorruptPolicy, GcOutcome,
    OperatorState, SinkCommit, SourcePosition, StateFile, collect_garbage, commit_checkpoint,
};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::graph::{JobGraph, NodeKind};
use crate::message::{Epoch, Millis};
use crate::metrics::{CheckpointOutcome, CheckpointRecord, JobMetrics};
use crate::sink::{PreCommit, Sink, Staged};

/// Periodic checkpoints of a job to object storage.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// Where the manifests and state files go.
    pub store: Arc<dyn CheckpointStore>,
    /// Time between the starts of two checkpoints.
    pub interval: Duration,
    /// Completed checkpoints kept; older ones are garbage-collected.
    pub retain: usize,
    /// What to do when the newest manifest cannot be read.
    pub policy: CorruptPolicy,
}

impl CheckpointConfig {
    /// Checkpoints every `interval` into `store`, keeping the newest three, failing
    /// closed on a corrupt manifest.
    pub fn new(store: Arc<dyn CheckpointStore>, interval: Duration) -> Self {
        CheckpointConfig {
            store,
            interval,
            retain: crate::checkpoint::DEFAULT_RETAIN,
            policy: CorruptPolicy::default(),
        }
    }
}

/// Sent by the coordinator to a source subtask.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inject {
    pub(crate) epoch: Epoch,
    /// The final barrier: the source ends right after it.
    pub(crate) last: bool,
}

/// What a subtask reports to the coordinator.
#[derive(Debug)]
pub(crate) enum Report {
    /// A source subtask has read everything it will read.
    SourceDone,
    /// A subtask has taken its part of checkpoint `epoch`.
    Ack {
        node: usize,
        subtask: usize,
        epoch: Epoch,
        part: AckPart,
    },
}

#[derive(Debug)]
pub(crate) enum AckPart {
    Source {
        positions: Vec<(u32, u64)>,
        event_times: Vec<(u32, Millis)>,
    },
    Operator {
        files: Vec<StateFile>,
        watermark: Millis,
    },
    Sink {
        files: Vec<StateFile>,
        pre_commit: PreCommit,
    },
}

/// What the coordinator knows of the job's nodes.
#[derive(Debug)]
struct NodeInfo {
    name: String,
    parallelism: usize,
    sink: Option<Arc<dyn Sink>>,
}

/// The checkpointing side of a coordinator: absent when the job runs without
/// checkpoints (it still gets its final epoch).
pub(crate) struct Durable {
    pub(crate) store: Arc<dyn CheckpointStore>,
    pub(crate) position: ChainPosition,
    pub(crate) interval: Duration,
    pub(crate) retain: usize,
}

pub(crate) struct Coordinator {
    job: String,
    nodes: Vec<NodeInfo>,
    max_key_groups: u32,
    sources: Vec<mpsc::UnboundedSender<Inject>>,
    reports: mpsc::UnboundedReceiver<Report>,
    durable: Option<Durable>,
    next_epoch: Epoch,
    metrics: Arc<JobMetrics>,
    clock: Arc<dyn Clock>,
}

struct InFlight {
    epoch: Epoch,
    last: bool,
    /// [`Clock::monotonic`] when the barrier was injected.
    injected: Duration,
    acks: Vec<(usize, usize, AckPart)>,
}

impl Coordinator {
    /// The coordinator of `graph`, reaching its source subtasks through `sources`.
    pub(crate) fn new(
        graph: &JobGraph,
        sources: Vec<mpsc::UnboundedSender<Inject>>,
        reports: mpsc::UnboundedReceiver<Report>,
        durable: Option<Durable>,
        next_epoch: Epoch,
        metrics: Arc<JobMetrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let nodes = graph
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
            .collect();
        Coordinator {
            job: graph.name.clone(),
            nodes,
            max_key_groups: graph.max_key_groups,
            sources,
            reports,
            durable,
            next_epoch,
            metrics,
            clock,
        }
    }

    fn subtasks(&self) -> usize {
        self.nodes.iter().map(|n| n.parallelism).sum()
    }

    fn inject(&mut self, last: bool) -> Result<InFlight> {
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        for source in &self.sources {
            // A source subtask that is gone has failed; the supervisor reports why.
            source
                .send(Inject { epoch, last })
                .map_err(|_| Error::Cancelled)?;
        }
        if self.durable.is_some() {
            let checkpoints = &self.metrics.checkpoints;
            checkpoints.begin(epoch, self.clock.now_millis());
        }
        Ok(InFlight {
            epoch,
            last,
            injected: self.clock.monotonic(),
            acks: Vec::new(),
        })
    }

    /// Runs until the final checkpoint has been committed.
    pub(crate) async fn run(mut self) -> Result<()> {
        let total_sources = self.sources.len();
        let mut done_sources = 0;
        let mut in_flight: Option<InFlight> = None;
        let mut final_pending = false;
        let period = self.durable.as_ref().map(|d| d.interval);
        let mut ticker = tokio::time::interval(period.unwrap_or(Duration::from_secs(3600)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        if total_sources == 0 {
            return Ok(());
        }
        loop {
            tokio::select! {
                _ = ticker.tick(), if period.is_some() && in_flight.is_none() && !final_pending => {
                    in_flight = Some(self.inject(false)?);
                }
                report = self.reports.recv() => {
                    let Some(report) = report else { return Err(Error::Cancelled) };
                    match report {
                        Report::SourceDone => {
                            done_sources += 1;
                            if done_sources == total_sources {
                                final_pending = true;
                            }
                        }
                        Report::Ack { node, subtask, epoch, part } => {
                            let Some(flight) = in_flight.as_mut().filter(|f| f.epoch == epoch) else {
                                return Err(Error::Internal(format!(
                                    "acknowledgement of epoch {epoch} from {}[{subtask}] that is not in flight",
                                    self.nodes[node].name
                                )));
                            };
                            flight.acks.push((node, subtask, part));
                            if flight.acks.len() == self.subtasks() {
                                let flight = in_flight.take().expect("checked above");
                                let last = flight.last;
                                self.complete(flight).await?;
                                if last {
                                    return Ok(());
                                }
                            }
                        }
                    }
                    if final_pending && in_flight.is_none() {
                        in_flight = Some(self.inject(true)?);
                    }
                }
            }
        }
    }

    /// Every subtask acknowledged: make the checkpoint durable, then commit the sinks, and
    /// record how that went (a job without checkpoints only commits its sinks).
    async fn complete(&mut self, flight: InFlight) -> Result<()> {
        let (epoch, injected) = (flight.epoch, flight.injected);
        match self.commit(flight).await {
            Ok(Some(record)) => self.metrics.checkpoints.record(record),
            Ok(None) => {}
            Err(error) if self.durable.is_some() => {
                let (now, took) = (self.clock.now_millis(), self.clock.elapsed(injected));
                let failed = CheckpointRecord::failed(epoch, now, millis(took), error.to_string());
                self.metrics.checkpoints.record(failed);
                return Err(error);
            }
            Err(error) => return Err(error),
        }
        if let Some(durable) = &self.durable {
            match collect_garbage(durable.store.as_ref(), &durable.position, durable.retain).await {
                Ok(GcOutcome::Collected(_)) | Ok(GcOutcome::Superseded { .. }) => {}
                // Garbage left behind is collected next time; it never blocks progress.
                Err(e) => {
                    tracing::warn!(job = %self.job, "checkpoint garbage collection failed: {e}")
                }
            }
        }
        Ok(())
    }

    /// Writes the manifest of the acknowledged checkpoint and runs phase 2 of the sinks;
    /// what it took (nothing to tell for a job without checkpoints).
    async fn commit(&mut self, flight: InFlight) -> Result<Option<CheckpointRecord>> {
        let epoch = flight.epoch;
        let Assembled { meta, staged } = self.assemble(flight.acks, epoch);
        let size_bytes = meta
            .operators
            .iter()
            .flat_map(|o| &o.files)
            .map(|f| f.size)
            .sum();
        let Some(durable) = self.durable.as_mut() else {
            self.commit_sinks(epoch, staged).await?;
            return Ok(None);
        };
        let started = self.clock.monotonic();
        match commit_checkpoint(durable.store.as_ref(), &mut durable.position, meta).await? {
            CommitOutcome::Committed { seq } => {
                tracing::info!(
                    job = %self.job, epoch, seq,
                    "checkpoint complete in {:?} (manifest {:?})",
                    self.clock.elapsed(flight.injected),
                    self.clock.elapsed(started)
                );
            }
            CommitOutcome::Fenced { by_generation } => {
                return Err(Error::Fenced(format!(
                    "job {} is owned by a newer instance (generation {by_generation:?}); \
                     this instance stops without committing epoch {epoch}",
                    self.job
                )));
            }
        }
        let finished_at = self.clock.now_millis();
        let duration_millis = millis(self.clock.elapsed(flight.injected));
        let sinks = self.clock.monotonic();
        self.commit_sinks(epoch, staged).await?;
        Ok(Some(CheckpointRecord {
            epoch,
            finished_at,
            duration_millis,
            size_bytes,
            sink_commit_millis: Some(millis(self.clock.elapsed(sinks))),
            outcome: CheckpointOutcome::Completed,
        }))
    }

    /// Phase 2 of every sink, in graph order, as after a restart: a job that adds its
    /// table sink before the sink its results stream reads has every epoch in the table
    /// first.
    async fn commit_sinks(&self, epoch: Epoch, staged: BTreeMap<usize, Vec<Staged>>) -> Result<()> {
        let generation = self.durable.as_ref().map_or(0, |d| d.position.generation());
        for (node, mut parts) in staged {
            parts.sort_by_key(|s| s.subtask);
            if let Some(sink) = &self.nodes[node].sink {
                let started = self.clock.monotonic();
                sink.commit(epoch, generation, parts).await?;
                self.metrics
                    .checkpoints
                    .record_sink_commit(&self.nodes[node].name, self.clock.elapsed(started));
            }
        }
        Ok(())
    }

    /// The manifest of checkpoint `epoch` and the sinks' staged output, from every
    /// subtask's acknowledgement.
    fn assemble(&self, acks: Vec<(usize, usize, AckPart)>, epoch: Epoch) -> Assembled {
        let mut meta = CheckpointMeta {
            epoch,
            generation: self.durable.as_ref().map_or(0, |d| d.position.generation()),
            max_key_groups: self.max_key_groups,
            operators: Vec::new(),
            sources: Vec::new(),
            sinks: Vec::new(),
        };
        let mut staged: BTreeMap<usize, Vec<Staged>> = BTreeMap::new();
        for (node, subtask, part) in acks {
            let info = &self.nodes[node];
            let state = |files, watermark| OperatorState {
                node: info.name.clone(),
                subtask,
                parallelism: info.parallelism,
                files,
                watermark,
            };
            match part {
                AckPart::Source {
                    positions,
                    event_times,
                } => {
                    let times: HashMap<u32, Millis> = event_times.into_iter().collect();
                    let position = |(partition, offset)| SourcePosition {
                        node: info.name.clone(),
                        partition,
                        offset,
                        max_event_time: times.get(&partition).copied(),
                    };
                    meta.sources.extend(positions.into_iter().map(position));
                }
                AckPart::Operator { files, watermark } => {
                    meta.operators.push(state(files, Some(watermark)));
                }
                AckPart::Sink { files, pre_commit } => {
                    meta.operators.push(state(files, None));
                    meta.sinks.push(SinkCommit {
                        node: info.name.clone(),
                        subtask,
                        staged: pre_commit.meta.clone(),
                    });
                    let parts = staged.entry(node).or_default();
                    parts.push(Staged {
                        subtask,
                        pre_commit,
                    });
                }
            }
        }
        Assembled { meta, staged }
    }
}

fn millis(took: Duration) -> u64 {
    u64::try_from(took.as_millis()).unwrap_or(u64::MAX)
}

/// A checkpoint's manifest and, per sink node, what its subtasks staged.
struct Assembled {
    meta: CheckpointMeta,
    staged: BTreeMap<usize, Vec<Staged>>,
}
