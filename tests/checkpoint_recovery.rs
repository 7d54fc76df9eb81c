//! Exactly once across crashes: the hot-items job checkpoints to object storage, is
//! killed at seeded random moments and restarted on the same store, and its output topic
//! in the end equals the batch oracle over the same bids: no row lost, none duplicated.
//!
//! Killing here is `JobHandle::abort` inside the process: every subtask and the
//! coordinator stop at whatever await point they are in (mid-upload, between manifest
//! and sink commit, mid-commit), and the old instance's tasks may still be finishing a
//! call while the new instance starts, as a paused zombie would.

mod common;

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel::hot_items::HotItems;
use runnel_connectors::log::{EmbeddedLog, LogSink, LogSource, Topic};
use runnel_connectors::nexmark::NexmarkOptions;
use runnel_runtime::checkpoint::{ObjectStoreCheckpoints, read_chain};
use runnel_runtime::{CheckpointConfig, Dataflow, JobConfig, JobGraph, spawn};

use common::{append_bids, oracle_rows, streaming_rows};

const TOP: usize = 3;

async fn hot_items_job(log: &EmbeddedLog, bids: &Topic, parallelism: usize) -> (JobGraph, Topic) {
    let flow = Dataflow::new("hot_items").with_parallelism(parallelism);
    let ranked = HotItems {
        top: TOP,
        max_out_of_orderness: Duration::from_secs(2),
        parallelism,
        ..HotItems::default()
    }
    .stream(&flow, Arc::new(LogSource::new(bids.clone()).bounded()))
    .unwrap();
    let out = log
        .create_topic("hot_items", 1, ranked.schema().clone())
        .await
        .unwrap();
    let sink = LogSink::new(out.clone(), "hot_items.sink").unwrap();
    ranked.sink("hot_items", Arc::new(sink)).unwrap();
    (flow.build().unwrap(), out)
}

async fn produce_bids(log: &EmbeddedLog) -> (Topic, Vec<arrow::array::RecordBatch>) {
    let options = NexmarkOptions {
        seed: 3,
        events_per_second: 2_000,
        max_events: Some(80_000),
        batch_size: 500,
        partitions: 4,
        out_of_order_group_size: 200,
        ..NexmarkOptions::default()
    };
    append_bids(log, &options).await
}

async fn run_with_kills(seed: u64, kills: usize, parallelism_of_run: impl Fn(usize) -> usize) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let log = EmbeddedLog::new(store.clone(), Path::from("data"));
    let (bids, all) = produce_bids(&log).await;
    let checkpoints = Arc::new(
        ObjectStoreCheckpoints::new(store.clone(), Path::from("data"), "hot_items").unwrap(),
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = None;
    for run in 0..=kills {
        let (graph, topic) = hot_items_job(&log, &bids, parallelism_of_run(run)).await;
        out = Some(topic);
        let config = JobConfig {
            checkpoints: Some(CheckpointConfig::new(
                checkpoints.clone(),
                Duration::from_millis(20),
            )),
            ..JobConfig::default()
        };
        let job = spawn(graph, config).await.unwrap();
        if run == kills {
            job.join().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..120))).await;
        job.abort();
        let _ = job.join().await;
    }
    // Every run fenced the chain, and checkpoints were taken in between.
    let chain = read_chain(checkpoints.as_ref()).await.unwrap();
    let newest = chain.last().map_or(0, |(seq, _)| *seq);
    assert!(newest > kills as u64, "newest manifest {newest}");

    let out = out.unwrap();
    let end = out.end_offset(0).await.unwrap();
    let written = out.read(0, 0, end as usize).await.unwrap();
    let got = streaming_rows(&written.batches);
    let expected = oracle_rows(all, TOP).await;
    assert!(expected.len() > 60, "{} oracle rows", expected.len());
    assert_eq!(got.len(), expected.len(), "rows lost or duplicated");
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_twenty_times_the_output_equals_the_oracle() {
    run_with_kills(11, 20, |_| 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_at_another_parallelism_keep_the_output_exact() {
    // Checkpoints taken at parallelism 2 restore at 3 and at 1, and back.
    run_with_kills(5, 6, |run| [2, 3, 1, 2, 1, 3, 2][run % 7]).await;
}
