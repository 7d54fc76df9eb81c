//! `runnel demo`: Nexmark bids flow into the embedded log while the hot-items job reads
//! them back and prints the top auctions of every window as the watermark closes it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use runnel_connectors::channel::ChannelSink;
use runnel_connectors::log::{EmbeddedLog, LogSource, ProducerSeq, Topic};
use runnel_connectors::nexmark::{NexmarkGenerator, NexmarkOptions, NexmarkTable};
use runnel_runtime::{Ambient, JobConfig, WATERMARK_START};
use tokio::sync::watch;

use crate::hot_items::HotItems;

/// What `runnel demo` was asked to do.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub data: PathBuf,
    pub duration: Duration,
    pub rate: u64,
    pub partitions: usize,
    pub parallelism: usize,
    pub top: usize,
    /// The clock the job and the progress lines read.
    pub ambient: Ambient,
}

/// How often the producer appends to each partition.
const PRODUCE_TICK: Duration = Duration::from_millis(100);

/// Runs the demo until `duration` has passed or Ctrl-C.
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let log = EmbeddedLog::local(&options.data)
        .with_context(|| format!("cannot open data directory {}", options.data.display()))?;
    let topic = log
        .create_topic(
            "bids",
            options.partitions as u32,
            NexmarkTable::Bid.schema(),
        )
        .await
        .context("cannot create the `bids` topic")?;
    let partitions = topic.partitions();
    // Read from the current end, so the job shows this run's bids as they arrive.
    let mut start = HashMap::new();
    for p in 0..partitions {
        start.insert(p, topic.end_offset(p).await?);
    }
    let (sink, mut results) = ChannelSink::new(64);
    let job = HotItems {
        top: options.top,
        parallelism: options.parallelism,
        ..HotItems::default()
    };
    let graph = job.build(
        Arc::new(LogSource::new(topic.clone()).starting_at(start)),
        Arc::new(sink),
    )?;
    println!(
        "runnel demo: {} bids/s into {} ({} partitions), hot items = HOP 10s/2s COUNT(*) per auction, top {}",
        options.rate,
        options.data.join("log/bids").display(),
        partitions,
        options.top
    );
    let clock = options.ambient.clock.clone();
    let config = JobConfig {
        clock: clock.clone(),
        ..JobConfig::default()
    };
    let job = runnel_runtime::spawn(graph, config).await?;
    let metrics = job.metrics().clone();

    let (stop_tx, stop_rx) = watch::channel(false);
    let produced = Arc::new(AtomicU64::new(0));
    let now = clock.now_millis();
    let producer = tokio::spawn(produce(topic, options.rate, now, stop_rx, produced.clone()));

    let started = clock.monotonic();
    let deadline = tokio::time::sleep(options.duration);
    tokio::pin!(deadline);
    let mut progress = tokio::time::interval(Duration::from_secs(1));
    let mut last = (clock.monotonic(), 0u64);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = tokio::signal::ctrl_c() => break,
            batch = results.recv() => match batch {
                Some(batch) => print_windows(&batch)?,
                None => break,
            },
            _ = progress.tick() => {
                let read = metrics.node("bids").map_or(0, |n| n.rows_in());
                let rate = (read - last.1) as f64 / clock.elapsed(last.0).as_secs_f64();
                last = (clock.monotonic(), read);
                let watermark = metrics.node("hot_items").map_or(WATERMARK_START, |n| n.watermark());
                let late: u64 = metrics.nodes.iter().map(|n| n.late_rows()).sum();
                println!(
                    "[{:>5.1}s] produced {} | processed {} ({:.0} events/s) | watermark {} | late {}",
                    clock.elapsed(started).as_secs_f64(),
                    produced.load(Ordering::Relaxed),
                    read,
                    rate,
                    format_millis(watermark),
                    late
                );
            }
        }
    }
    stop_tx.send_replace(true);
    producer.await??;
    job.stop();
    while let Ok(batch) = results.try_recv() {
        print_windows(&batch)?;
    }
    let outcome = job.join().await;
    let read = metrics.node("bids").map_or(0, |n| n.rows_in());
    println!(
        "stopped after {:.1}s: {} bids produced, {} processed",
        clock.elapsed(started).as_secs_f64(),
        produced.load(Ordering::Relaxed),
        read
    );
    outcome.context("the hot-items job failed")
}

/// Appends Nexmark bids to every partition each tick, `rate` per second in total.
async fn produce(
    topic: Topic,
    rate: u64,
    now: runnel_runtime::Millis,
    mut stop: watch::Receiver<bool>,
    produced: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let partitions = topic.partitions() as usize;
    let per_tick = (rate as f64 * PRODUCE_TICK.as_secs_f64() / partitions as f64).ceil() as usize;
    let options = NexmarkOptions {
        base_time_millis: now,
        events_per_second: rate.max(1),
        batch_size: per_tick.max(1),
        partitions,
        ..NexmarkOptions::default()
    };
    let mut generators = (0..partitions)
        .map(|p| NexmarkGenerator::new(options.clone(), p))
        .collect::<Result<Vec<_>, _>>()?;
    let producer_id = format!("demo-{now}");
    let mut seq = vec![0u64; partitions];
    let mut tick = tokio::time::interval(PRODUCE_TICK);
    while !*stop.borrow() {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        for (p, generator) in generators.iter_mut().enumerate() {
            let Some(batch) = generator.next_batch(NexmarkTable::Bid)? else {
                continue;
            };
            let rows = batch.num_rows() as u64;
            let producer = ProducerSeq::new(format!("{producer_id}-{p}"), seq[p]);
            topic.append(p as u32, &[batch], Some(producer)).await?;
            seq[p] += 1;
            produced.fetch_add(rows, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn print_windows(batch: &RecordBatch) -> anyhow::Result<()> {
    println!("{}", pretty_format_batches(std::slice::from_ref(batch))?);
    Ok(())
}

fn format_millis(millis: i64) -> String {
    if millis == WATERMARK_START {
        return "-".to_string();
    }
    let secs = millis.div_euclid(1000);
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}.{:03}", millis.rem_euclid(1000))
}
