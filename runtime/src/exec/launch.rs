//! Starting a job's subtasks: each becomes one tokio task holding the channel ends the
//! [`Wiring`] planned for it, its counters, and what the checkpoint it resumes from
//! restored for it (source positions, operator state, the watermark reached).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::{Id, JoinSet};

use super::coordinator::{Inject, Report};
use super::gate::InputGate;
use super::restore::{self, Restored};
use super::router::Router;
use super::tasks::{self, SourceTask, SubtaskCtx};
use super::wiring::{SubtaskId, Wiring};
use super::{JobConfig, subtask_error};
use crate::checkpoint::CheckpointStore;
use crate::error::Result;
use crate::graph::{JobGraph, Node, NodeId, NodeKind};
use crate::metrics::JobMetrics;
use crate::operator::{OperatorContext, OperatorFactory};
use crate::source::{Assignment, Source};
use crate::watermark::WatermarkStrategy;

/// The running subtasks of a job, as they are started.
pub(crate) struct Launch<'a> {
    graph: &'a JobGraph,
    config: &'a JobConfig,
    metrics: &'a JobMetrics,
    reports: mpsc::UnboundedSender<Report>,
    /// The checkpoint store and this instance's generation, when the job checkpoints.
    store: Option<(Arc<dyn CheckpointStore>, u64)>,
    stop: watch::Receiver<bool>,
    restored: Restored,
    pub(crate) tasks: JoinSet<Result<()>>,
    /// Which subtask each task runs, to name the one that fails.
    pub(crate) names: HashMap<Id, (String, usize)>,
    /// The coordinator's line to every source subtask, by node then subtask.
    pub(crate) injections: Vec<mpsc::UnboundedSender<Inject>>,
}

impl<'a> Launch<'a> {
    pub(crate) fn new(
        graph: &'a JobGraph,
        config: &'a JobConfig,
        metrics: &'a JobMetrics,
        reports: mpsc::UnboundedSender<Report>,
        store: Option<(Arc<dyn CheckpointStore>, u64)>,
        stop: watch::Receiver<bool>,
        restored: Restored,
    ) -> Self {
        Launch {
            graph,
            config,
            metrics,
            reports,
            store,
            stop,
            restored,
            tasks: JoinSet::new(),
            names: HashMap::new(),
            injections: Vec::new(),
        }
    }

    /// Starts every subtask of node `id`. Operators are created (and their state restored)
    /// here, so an invalid operator fails the start; sources and sinks open in their task.
    pub(crate) fn node(&mut self, id: NodeId, wiring: &mut Wiring) -> Result<()> {
        let node = &self.graph.nodes[id];
        let state = self.restored.state.remove(&node.name).unwrap_or_default();
        for subtask in 0..node.parallelism {
            let ctx = SubtaskCtx {
                node: id,
                name: node.name.clone(),
                subtask,
                metrics: self.metrics.nodes[id].subtasks[subtask].clone(),
                reports: self.reports.clone(),
                store: self.store.clone(),
            };
            let ends = wiring.take(SubtaskId { node: id, subtask });
            let clock = self.config.clock.clone();
            let router = Router::new(ends.outputs, ctx.metrics.clone(), clock);
            let gate = InputGate::new(ends.inputs, ctx.metrics.clone());
            match &node.kind {
                NodeKind::Source { source, watermark } => {
                    let task = self.source_task(ctx, node, source, watermark, router);
                    self.start(node, subtask, tasks::run_source(task));
                }
                NodeKind::Operator { factory } => {
                    let restored_watermark = self.restored.watermarks.get(&node.name).copied();
                    let operator = self.operator(node, subtask, factory, &state)?;
                    let task = tasks::run_operator(ctx, operator, gate, router, restored_watermark);
                    self.start(node, subtask, task);
                }
                NodeKind::Sink { sink } => {
                    let task = tasks::run_sink(ctx, sink.clone(), node.parallelism, gate);
                    self.start(node, subtask, task);
                }
            }
        }
        Ok(())
    }

    fn start(
        &mut self,
        node: &Node,
        subtask: usize,
        task: impl Future<Output = Result<()>> + Send + 'static,
    ) {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), (node.name.clone(), subtask));
    }

    /// A source subtask reads partition `p` when `p % parallelism` is its index, from the
    /// restored position if the checkpoint has one.
    fn source_task(
        &mut self,
        ctx: SubtaskCtx,
        node: &Node,
        source: &Arc<dyn Source>,
        strategy: &WatermarkStrategy,
        router: Router,
    ) -> SourceTask {
        let assignment = Assignment::of(ctx.subtask, node.parallelism, source.partitions());
        let restored_times = self.restored.event_times.get(&node.name);
        let owned = restored_times.into_iter().flatten();
        let event_times = owned
            .filter(|(p, _)| assignment.owns(**p))
            .map(|(&p, &t)| (p, t))
            .collect();
        let (inject_tx, inject_rx) = mpsc::unbounded_channel();
        self.injections.push(inject_tx);
        SourceTask {
            ctx,
            source: source.clone(),
            strategy: strategy.clone(),
            assignment,
            positions: self
                .restored
                .positions
                .get(&node.name)
                .cloned()
                .unwrap_or_default(),
            event_times,
            router,
            clock: self.config.clock.clone(),
            stop: self.stop.clone(),
            injections: inject_rx,
        }
    }

    /// Creates the operator of `subtask` and hands it the key groups it now owns.
    fn operator(
        &self,
        node: &Node,
        subtask: usize,
        factory: &OperatorFactory,
        state: &[(usize, Vec<arrow::record_batch::RecordBatch>)],
    ) -> Result<Box<dyn crate::operator::Operator>> {
        let max_key_groups = self.graph.max_key_groups;
        let context = OperatorContext {
            node: node.name.clone(),
            subtask,
            parallelism: node.parallelism,
            max_key_groups,
            input_schemas: node.input_schemas.clone(),
        };
        let failed = |e| subtask_error(&node.name, subtask, e);
        let mut operator = factory(&context).map_err(failed)?;
        if !state.is_empty() {
            let mine =
                restore::state_for_subtask(state, subtask, node.parallelism, max_key_groups)?;
            operator.restore(mine).map_err(failed)?;
        }
        Ok(operator)
    }
}
