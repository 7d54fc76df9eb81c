//! Throughput of hot items (Nexmark q5: HOP 10 s / 2 s COUNT(*) per auction, top-1 per
//! window) over bids read from the embedded log on the local file system.
//!
//! The bids are generated and appended before the clock starts; the timed part is the
//! whole job: reading Arrow IPC segments, watermarks, hash shuffle, pane aggregation,
//! two-phase top-K. It runs three times: without checkpoints, with a checkpoint every
//! 10 s (the default interval; a run this short sees few or none), and with one every
//! 100 ms, which shows what checkpointing costs under load. Checkpoints go to the local
//! file system. Run with `cargo bench -p runnel-benches --bench hot_items`;
//! `RUNNEL_BENCH_EVENTS` changes the number of bids (default 10,000,000).

// A benchmark measures wall-clock time.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use runnel::hot_items::HotItems;
use runnel_connectors::channel::CollectSink;
use runnel_connectors::log::{EmbeddedLog, LogSource};
use runnel_connectors::nexmark::{NexmarkTable, generate_partition};
use runnel_runtime::checkpoint::ObjectStoreCheckpoints;
use runnel_runtime::{CheckpointConfig, JobConfig, spawn};

mod bid_options;

use bid_options::bid_options;

const PARTITIONS: usize = 4;

fn main() {
    let events: u64 = std::env::var("RUNNEL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(events));
}

async fn run(events: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn object_store::ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("local store"));
    let log = EmbeddedLog::new(store.clone(), Path::from(""));
    let topic = log
        .create_topic("bids", PARTITIONS as u32, NexmarkTable::Bid.schema())
        .await
        .expect("topic");
    let options = bid_options(events, PARTITIONS);
    let generating = Instant::now();
    let mut bids = 0u64;
    for p in 0..PARTITIONS {
        for batch in generate_partition(&options, NexmarkTable::Bid, p).expect("generate") {
            bids += batch.num_rows() as u64;
            topic
                .append(p as u32, &[batch], None)
                .await
                .expect("append");
        }
    }
    println!(
        "prepared {bids} bids in {PARTITIONS} partitions in {:.1}s",
        generating.elapsed().as_secs_f64()
    );

    let mut baseline = None;
    for interval in [
        None,
        Some(Duration::from_secs(10)),
        Some(Duration::from_millis(100)),
    ] {
        // Best of three: a run lasts about a second, so single runs are noisy. Each run
        // is its own job, so none restores another's checkpoint.
        let mut rate: f64 = 0.0;
        for attempt in 0..3 {
            let checkpoints = interval.map(|interval| {
                let job = format!("hot_items-{}ms-{attempt}", interval.as_millis());
                let store = ObjectStoreCheckpoints::new(store.clone(), Path::from(""), &job)
                    .expect("checkpoint store");
                CheckpointConfig::new(Arc::new(store), interval)
            });
            rate = rate.max(run_job(&topic, bids, checkpoints).await);
        }
        let label = match interval {
            None => "no checkpoints".to_string(),
            Some(i) => format!("checkpoint every {i:?}"),
        };
        let overhead = baseline.map_or(String::new(), |b: f64| {
            format!(
                ", {:.1}% overhead vs no checkpoints",
                (b / rate - 1.0) * 100.0
            )
        });
        println!("  {label}: {rate:.0} events/s{overhead}");
        baseline.get_or_insert(rate);
    }
}

/// Runs hot items over the topic once; returns events/s.
async fn run_job(
    topic: &runnel_connectors::log::Topic,
    bids: u64,
    checkpoints: Option<CheckpointConfig>,
) -> f64 {
    let sink = CollectSink::new();
    let graph = HotItems {
        top: 1,
        parallelism: 2,
        max_out_of_orderness: Duration::from_secs(5),
        ..HotItems::default()
    }
    .build(
        Arc::new(LogSource::new(topic.clone()).bounded()),
        Arc::new(sink.clone()),
    )
    .expect("job graph");
    let config = JobConfig {
        checkpoints,
        ..JobConfig::default()
    };
    let started = Instant::now();
    let job = spawn(graph, config).await.expect("spawn");
    let metrics = job.metrics().clone();
    job.join().await.expect("job");
    let elapsed = started.elapsed().as_secs_f64();
    let read = metrics.node("bids").map_or(0, |n| n.rows_in());
    assert_eq!(read, bids, "every bid must be read");
    let windows: usize = sink.batches().iter().map(|b| b.num_rows()).sum();
    println!(
        "hot_items: {read} bids in {elapsed:.2}s = {:.0} events/s ({windows} windows, parallelism 2)",
        read as f64 / elapsed
    );
    read as f64 / elapsed
}
