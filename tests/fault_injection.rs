//! Exactly once on a faulty object store: with a fifth of all storage calls failing, or
//! failing after they were applied (the lost response), the hot-items job retries or
//! restarts from its last checkpoint, and its output still equals the batch oracle.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;
use runnel::hot_items::HotItems;
use runnel_connectors::log::{EmbeddedLog, LogSink, LogSource, Topic};
use runnel_connectors::nexmark::NexmarkOptions;
use runnel_runtime::checkpoint::ObjectStoreCheckpoints;
use runnel_runtime::storage::{FaultConfig, FaultyStore, RetryPolicy, RetryingStore};
use runnel_runtime::{CheckpointConfig, Dataflow, JobConfig, RestartPolicy, run_with_restarts};

use common::{append_bids, oracle_rows, streaming_rows};

const TOP: usize = 3;

fn graph(bids: &Topic, out: &Topic) -> runnel_runtime::Result<runnel_runtime::JobGraph> {
    let flow = Dataflow::new("hot_items").with_parallelism(2);
    HotItems {
        top: TOP,
        max_out_of_orderness: Duration::from_secs(2),
        ..HotItems::default()
    }
    .stream(&flow, Arc::new(LogSource::new(bids.clone()).bounded()))?
    .sink(
        "hot_items",
        Arc::new(LogSink::new(out.clone(), "hot_items.sink")?),
    )?;
    flow.build()
}

/// Runs hot items over `store` with `faults` switched on, then checks the output.
async fn run_on_faulty_store(
    store: Arc<dyn ObjectStore>,
    faulty: &FaultyStore,
    min_faults: u64,
) -> u32 {
    faulty.set_enabled(false);
    let log = EmbeddedLog::new(store.clone(), Path::from("data"));
    let options = NexmarkOptions {
        seed: 9,
        events_per_second: 2_000,
        max_events: Some(60_000),
        batch_size: 1_000,
        partitions: 4,
        out_of_order_group_size: 100,
        ..NexmarkOptions::default()
    };
    let (bids, all) = append_bids(&log, &options).await;
    // The output topic takes the schema of the ranked stream.
    let out_schema = HotItems::default()
        .stream(
            &Dataflow::new("schema"),
            Arc::new(LogSource::new(bids.clone()).bounded()),
        )
        .unwrap()
        .schema()
        .clone();
    let out = log.create_topic("hot_items", 1, out_schema).await.unwrap();
    let checkpoints = Arc::new(
        ObjectStoreCheckpoints::new(store.clone(), Path::from("data"), "hot_items").unwrap(),
    );
    let config = JobConfig {
        checkpoints: Some(CheckpointConfig::new(
            checkpoints,
            Duration::from_millis(20),
        )),
        ..JobConfig::default()
    };
    let restart = RestartPolicy {
        max_restarts: 500,
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(20),
        ..RestartPolicy::default()
    };
    let attempts = AtomicU32::new(0);
    faulty.set_enabled(true);
    run_with_restarts(
        || graph(&bids, &out),
        config,
        restart,
        |_| {
            attempts.fetch_add(1, Ordering::Relaxed);
        },
    )
    .await
    .unwrap();
    faulty.set_enabled(false);
    assert!(
        faulty.stats().failures() >= min_faults,
        "too few faults were injected: {:?}",
        faulty.stats()
    );

    let end = out.end_offset(0).await.unwrap();
    let written = out.read(0, 0, end as usize).await.unwrap();
    let got = streaming_rows(&written.batches);
    let expected = oracle_rows(all, TOP).await;
    assert!(expected.len() > 50, "{} oracle rows", expected.len());
    assert_eq!(got, expected, "rows lost or duplicated");
    attempts.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_storage_calls_failing_changes_nothing_in_the_output() {
    let faulty = Arc::new(
        FaultyStore::new(Arc::new(InMemory::new()), FaultConfig::failures(0.2), 1).unwrap(),
    );
    let store = Arc::new(RetryingStore::new(faulty.clone(), RetryPolicy::default()).unwrap());
    run_on_faulty_store(store, &faulty, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retries_the_job_restarts_from_checkpoints_and_stays_exact() {
    let faulty = Arc::new(
        FaultyStore::new(Arc::new(InMemory::new()), FaultConfig::failures(0.05), 2).unwrap(),
    );
    let attempts = run_on_faulty_store(faulty.clone(), &faulty, 1).await;
    assert!(attempts > 1, "the job never had to restart");
}
