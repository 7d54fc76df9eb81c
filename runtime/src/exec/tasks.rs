//! The loops of the three kinds of subtask. Each runs as one tokio task and returns the
//! error that stopped it; the job supervisor turns the first one into the job's failure.
//!
//! Checkpoints: a source subtask emits `Barrier(e)` between two batches when the
//! coordinator asks, and acknowledges with its positions (which count exactly the rows
//! sent before the barrier); an operator snapshots its state when the barrier is aligned
//! on all its inputs; a sink runs phase 1 of its commit. Each writes its part under the
//! epoch's never-overwritten paths and acknowledges before forwarding the barrier.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, watch};

use super::coordinator::{AckPart, Inject, Report};
use super::gate::{GateEvent, InputGate};
use super::router::Router;
use crate::checkpoint::{CheckpointStore, StateFile, StateFileKey, write_state};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::graph::Port;
use crate::message::{Epoch, Message, Millis, WATERMARK_END, WATERMARK_START};
use crate::metrics::SubtaskMetrics;
use crate::operator::{Operator, Output};
use crate::sink::Sink;
use crate::source::{Assignment, Source, SourcePoll, SourceReader};
use crate::time::max_event_time;
use crate::watermark::{PartitionWatermarks, WatermarkStatus, WatermarkStrategy};

/// Who a subtask is, and where its checkpoint parts go.
#[derive(Clone)]
pub(crate) struct SubtaskCtx {
    pub(crate) node: usize,
    pub(crate) name: String,
    pub(crate) subtask: usize,
    pub(crate) metrics: Arc<SubtaskMetrics>,
    pub(crate) reports: mpsc::UnboundedSender<Report>,
    /// Store and generation when the job checkpoints.
    pub(crate) store: Option<(Arc<dyn CheckpointStore>, u64)>,
}

impl SubtaskCtx {
    fn ack(&self, epoch: Epoch, part: AckPart) -> Result<()> {
        self.reports
            .send(Report::Ack {
                node: self.node,
                subtask: self.subtask,
                epoch,
                part,
            })
            .map_err(|_| Error::Cancelled)
    }

    /// Writes this subtask's part of checkpoint `epoch`, if the job checkpoints and there
    /// is anything to write.
    async fn write(
        &self,
        epoch: Epoch,
        batches: &[arrow::record_batch::RecordBatch],
    ) -> Result<Vec<StateFile>> {
        let Some((store, generation)) = &self.store else {
            return Ok(Vec::new());
        };
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(Vec::new());
        }
        let key = StateFileKey {
            epoch,
            generation: *generation,
            node: self.name.clone(),
            subtask: self.subtask,
        };
        Ok(vec![write_state(store.as_ref(), &key, batches).await?])
    }
}

pub(crate) struct SourceTask {
    pub(crate) ctx: SubtaskCtx,
    pub(crate) source: Arc<dyn Source>,
    pub(crate) strategy: WatermarkStrategy,
    pub(crate) assignment: Assignment,
    pub(crate) positions: HashMap<u32, u64>,
    /// Per owned partition, the largest event time read before the restore.
    pub(crate) event_times: HashMap<u32, Millis>,
    pub(crate) router: Router,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) injections: mpsc::UnboundedReceiver<Inject>,
}

/// The barriers of one source subtask, and the positions of the last one.
struct Barriers {
    /// The positions the previous barrier acknowledged: its checkpoint is complete once
    /// the coordinator injects the next barrier (it injects one only after completing
    /// the one before).
    previous: Option<Vec<(u32, u64)>>,
}

impl Barriers {
    /// Tells the reader its previous checkpoint is done, emits the barrier and
    /// acknowledges it with the reader's positions. Returns whether it was the final one.
    async fn emit(
        &mut self,
        inject: Inject,
        reader: &mut dyn SourceReader,
        watermarks: &PartitionWatermarks,
        router: &mut Router,
        ctx: &SubtaskCtx,
    ) -> Result<bool> {
        if let Some(done) = self.previous.take()
            && let Err(e) = reader.checkpoint_done(&done).await
        {
            tracing::warn!(
                node = ctx.name,
                subtask = ctx.subtask,
                "after a checkpoint: {e}"
            );
        }
        let positions = reader.positions();
        router.broadcast(Message::Barrier(inject.epoch)).await?;
        let part = AckPart::Source {
            positions: positions.clone(),
            event_times: watermarks.event_times(),
        };
        ctx.ack(inject.epoch, part)?;
        self.previous = Some(positions);
        Ok(inject.last)
    }
}

impl Barriers {
    /// After the input: answers barriers until the final one, then ends the stream.
    async fn until_final(
        &mut self,
        injections: &mut mpsc::UnboundedReceiver<Inject>,
        reader: &mut dyn SourceReader,
        watermarks: &PartitionWatermarks,
        router: &mut Router,
        ctx: &SubtaskCtx,
    ) -> Result<()> {
        while let Some(inject) = injections.recv().await {
            if self.emit(inject, reader, watermarks, router, ctx).await? {
                return router.broadcast(Message::End).await;
            }
        }
        Err(Error::Cancelled)
    }
}

/// What a source subtask last told downstream of its event time.
struct Announced {
    watermark: Millis,
    idle: bool,
}

impl Announced {
    fn nothing() -> Self {
        Announced {
            watermark: WATERMARK_START,
            idle: false,
        }
    }

    /// Sends a watermark that moved forward, or the news that the subtask went idle.
    async fn announce(
        &mut self,
        status: WatermarkStatus,
        router: &mut Router,
        ctx: &SubtaskCtx,
    ) -> Result<()> {
        match status {
            WatermarkStatus::Active(w) if w > self.watermark => {
                self.watermark = w;
                ctx.metrics.watermark.store(w, Ordering::Relaxed);
                router.broadcast(Message::Watermark(w)).await
            }
            WatermarkStatus::Idle if !self.idle => {
                self.idle = true;
                router.broadcast(Message::Idle).await
            }
            _ => Ok(()),
        }
    }
}

/// Reads the assigned partitions and stamps watermarks. When the input is exhausted it
/// sends the final watermark; when asked to stop it does not, so open windows are not
/// fired with partial contents. Either way it then answers barriers until the final one,
/// and ends the stream right behind it.
pub(crate) async fn run_source(task: SourceTask) -> Result<()> {
    let SourceTask {
        ctx,
        source,
        strategy,
        assignment,
        positions,
        event_times,
        mut router,
        clock,
        stop,
        mut injections,
    } = task;
    let time_column = source.schema().index_of(&strategy.time_column)?;
    let mut reader = source.open_assigned(&assignment, &positions).await?;
    let partitions = &assignment.partitions;
    let now = clock.now_millis();
    let mut watermarks =
        PartitionWatermarks::new(&strategy, partitions, now).restored(&event_times, now);
    let mut announced = Announced::nothing();
    let mut barriers = Barriers { previous: None };
    loop {
        while let Ok(inject) = injections.try_recv() {
            if barriers
                .emit(inject, reader.as_mut(), &watermarks, &mut router, &ctx)
                .await?
            {
                return Err(Error::Internal(
                    "final barrier before the input ended".into(),
                ));
            }
        }
        if *stop.borrow() {
            break;
        }
        match reader.next().await? {
            SourcePoll::Batch { partition, batch } => {
                let rows = batch.num_rows();
                if rows == 0 {
                    continue;
                }
                ctx.metrics
                    .rows_in
                    .fetch_add(rows as u64, Ordering::Relaxed);
                let column = batch.column(time_column);
                if let Some(max) = max_event_time(column, &strategy.time_column)? {
                    watermarks.observe(partition, max, clock.now_millis());
                }
                announced.idle = false;
                router.send(Port::Main, batch).await?;
            }
            SourcePoll::Rejected { rows, .. } => {
                let count = rows.num_rows() as u64;
                ctx.metrics
                    .rejected_rows
                    .fetch_add(count, Ordering::Relaxed);
                router.send(Port::Late, rows).await?;
            }
            SourcePoll::Idle => {}
            SourcePoll::End => {
                ctx.metrics
                    .watermark
                    .store(WATERMARK_END, Ordering::Relaxed);
                router.broadcast(Message::Watermark(WATERMARK_END)).await?;
                break;
            }
        }
        let status = watermarks.status(clock.now_millis(), |p| reader.caught_up(p));
        announced.announce(status, &mut router, &ctx).await?;
    }
    ctx.reports
        .send(Report::SourceDone)
        .map_err(|_| Error::Cancelled)?;
    let reader = reader.as_mut();
    barriers
        .until_final(&mut injections, reader, &watermarks, &mut router, &ctx)
        .await
}

/// Sends what the operator emitted: main rows downstream, late rows counted and sent to
/// the late-rows output.
async fn flush(out: &mut Output, router: &mut Router, metrics: &SubtaskMetrics) -> Result<()> {
    let (main, late) = out.take();
    for batch in main {
        router.send(Port::Main, batch).await?;
    }
    for batch in late {
        metrics
            .late_rows
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        router.send(Port::Late, batch).await?;
    }
    Ok(())
}

pub(crate) async fn run_operator(
    ctx: SubtaskCtx,
    mut operator: Box<dyn Operator>,
    mut gate: InputGate,
    mut router: Router,
    restored_watermark: Option<Millis>,
) -> Result<()> {
    let mut out = Output::default();
    if let Some(w) = restored_watermark {
        // The operator saw this watermark before the checkpoint; telling it again fires
        // nothing that had not fired, but lets it judge late rows as it did then.
        gate.restore_watermark(w);
        operator.on_watermark(w, &mut out)?;
        flush(&mut out, &mut router, &ctx.metrics).await?;
    }
    loop {
        match gate.next().await {
            GateEvent::Batch(input, batch) => {
                ctx.metrics
                    .rows_in
                    .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                operator.on_batch(input, batch, &mut out)?;
                flush(&mut out, &mut router, &ctx.metrics).await?;
            }
            GateEvent::Watermark(w) => {
                ctx.metrics.watermark.store(w, Ordering::Relaxed);
                operator.on_watermark(w, &mut out)?;
                flush(&mut out, &mut router, &ctx.metrics).await?;
                router.broadcast(Message::Watermark(w)).await?;
            }
            GateEvent::Idle => router.broadcast(Message::Idle).await?,
            GateEvent::Barrier(epoch) => {
                let state = operator.snapshot(epoch)?;
                let files = ctx.write(epoch, &state).await?;
                let watermark = gate.watermark();
                ctx.ack(epoch, AckPart::Operator { files, watermark })?;
                router.broadcast(Message::Barrier(epoch)).await?;
            }
            GateEvent::End => {
                operator.on_end(&mut out)?;
                flush(&mut out, &mut router, &ctx.metrics).await?;
                return router.broadcast(Message::End).await;
            }
            GateEvent::Broken => return Err(Error::Cancelled),
        }
    }
}

pub(crate) async fn run_sink(
    ctx: SubtaskCtx,
    sink: Arc<dyn Sink>,
    parallelism: usize,
    mut gate: InputGate,
) -> Result<()> {
    let mut writer = sink.open(ctx.subtask, parallelism).await?;
    loop {
        match gate.next().await {
            GateEvent::Batch(_, batch) => {
                let rows = batch.num_rows() as u64;
                ctx.metrics.rows_in.fetch_add(rows, Ordering::Relaxed);
                writer.write(batch).await?;
                ctx.metrics.rows_out.fetch_add(rows, Ordering::Relaxed);
            }
            GateEvent::Watermark(w) => {
                ctx.metrics.watermark.store(w, Ordering::Relaxed);
                writer.on_watermark(w).await?;
            }
            GateEvent::Idle => {}
            GateEvent::Barrier(epoch) => {
                let pre_commit = writer.pre_commit(epoch).await?;
                let files = ctx.write(epoch, &pre_commit.batches).await?;
                ctx.ack(epoch, AckPart::Sink { files, pre_commit })?;
            }
            GateEvent::End => return writer.finish().await,
            GateEvent::Broken => return Err(Error::Cancelled),
        }
    }
}
