//! The loops of the three kinds of subtask. Each runs as one tokio task and returns the
//! error that stopped it; the job supervisor turns the first one into the job's failure.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;

use super::gate::{GateEvent, InputGate};
use super::router::Router;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::graph::Port;
use crate::message::{Message, WATERMARK_END, WATERMARK_START};
use crate::metrics::SubtaskMetrics;
use crate::operator::{Operator, Output};
use crate::sink::Sink;
use crate::source::{Source, SourcePoll};
use crate::time::max_event_time;
use crate::watermark::{PartitionWatermarks, WatermarkStatus, WatermarkStrategy};

pub(crate) struct SourceTask {
    pub(crate) source: Arc<dyn Source>,
    pub(crate) strategy: WatermarkStrategy,
    pub(crate) partitions: Vec<u32>,
    pub(crate) router: Router,
    pub(crate) metrics: Arc<SubtaskMetrics>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) stop: watch::Receiver<bool>,
}

/// Reads the assigned partitions, stamps watermarks, and ends with the final watermark
/// when bounded input is exhausted. A stop request ends the stream without the final
/// watermark, so open windows are not fired with partial contents.
pub(crate) async fn run_source(task: SourceTask) -> Result<()> {
    let SourceTask {
        source,
        strategy,
        partitions,
        mut router,
        metrics,
        clock,
        mut stop,
    } = task;
    let time_column = source.schema().index_of(&strategy.time_column)?;
    let mut reader = source.open(&partitions).await?;
    let mut watermarks = PartitionWatermarks::new(&strategy, &partitions, clock.now_millis());
    let mut announced = WATERMARK_START;
    let mut idle = false;
    loop {
        let poll = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            poll = reader.next() => poll?,
        };
        match poll {
            SourcePoll::Batch { partition, batch } => {
                let rows = batch.num_rows();
                if rows == 0 {
                    continue;
                }
                metrics.rows_in.fetch_add(rows as u64, Ordering::Relaxed);
                let column = batch.column(time_column);
                if let Some(max) = max_event_time(column, &strategy.time_column)? {
                    watermarks.observe(partition, max, clock.now_millis());
                }
                idle = false;
                router.send(Port::Main, batch).await?;
            }
            SourcePoll::Idle => {}
            SourcePoll::End => {
                metrics.watermark.store(WATERMARK_END, Ordering::Relaxed);
                router.broadcast(Message::Watermark(WATERMARK_END)).await?;
                break;
            }
        }
        match watermarks.status(clock.now_millis()) {
            WatermarkStatus::Active(w) if w > announced => {
                announced = w;
                metrics.watermark.store(w, Ordering::Relaxed);
                router.broadcast(Message::Watermark(w)).await?;
            }
            WatermarkStatus::Idle if !idle => {
                idle = true;
                router.broadcast(Message::Idle).await?;
            }
            _ => {}
        }
    }
    router.broadcast(Message::End).await
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
    mut operator: Box<dyn Operator>,
    mut gate: InputGate,
    mut router: Router,
    metrics: Arc<SubtaskMetrics>,
) -> Result<()> {
    let mut out = Output::default();
    loop {
        match gate.next().await {
            GateEvent::Batch(input, batch) => {
                metrics
                    .rows_in
                    .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                operator.on_batch(input, batch, &mut out)?;
                flush(&mut out, &mut router, &metrics).await?;
            }
            GateEvent::Watermark(w) => {
                metrics.watermark.store(w, Ordering::Relaxed);
                operator.on_watermark(w, &mut out)?;
                flush(&mut out, &mut router, &metrics).await?;
                router.broadcast(Message::Watermark(w)).await?;
            }
            GateEvent::Idle => router.broadcast(Message::Idle).await?,
            GateEvent::Barrier(epoch) => router.broadcast(Message::Barrier(epoch)).await?,
            GateEvent::End => {
                operator.on_end(&mut out)?;
                flush(&mut out, &mut router, &metrics).await?;
                return router.broadcast(Message::End).await;
            }
            GateEvent::Broken => return Err(Error::Cancelled),
        }
    }
}

pub(crate) async fn run_sink(
    sink: Arc<dyn Sink>,
    subtask: usize,
    parallelism: usize,
    mut gate: InputGate,
    metrics: Arc<SubtaskMetrics>,
) -> Result<()> {
    let mut writer = sink.open(subtask, parallelism).await?;
    loop {
        match gate.next().await {
            GateEvent::Batch(_, batch) => {
                let rows = batch.num_rows() as u64;
                metrics.rows_in.fetch_add(rows, Ordering::Relaxed);
                writer.write(batch).await?;
                metrics.rows_out.fetch_add(rows, Ordering::Relaxed);
            }
            GateEvent::Watermark(w) => {
                metrics.watermark.store(w, Ordering::Relaxed);
                writer.on_watermark(w).await?;
            }
            GateEvent::Idle | GateEvent::Barrier(_) => {}
            GateEvent::End => return writer.finish().await,
            GateEvent::Broken => return Err(Error::Cancelled),
        }
    }
}
