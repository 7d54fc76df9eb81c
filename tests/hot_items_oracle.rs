//! Hot items (Nexmark q5) over the embedded log equals a batch query over the same bids.
//!
//! The bids are generated with disorder into 4 log partitions, read back by the streaming
//! job at parallelism 2, and compared row for row with DataFusion SQL over the very same
//! batches, which knows nothing of panes, watermarks or two-phase top-K.

use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{append_bids, oracle_rows, streaming_rows};
use object_store::memory::InMemory;
use object_store::path::Path;
use runnel::hot_items::HotItems;
use runnel_connectors::channel::CollectSink;
use runnel_connectors::log::{EmbeddedLog, LogSource};
use runnel_connectors::nexmark::NexmarkOptions;
use runnel_runtime::{JobConfig, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_items_over_the_log_equals_the_batch_oracle() {
    let options = NexmarkOptions {
        seed: 42,
        events_per_second: 2_000,
        max_events: Some(120_000),
        batch_size: 1_000,
        partitions: 4,
        out_of_order_group_size: 500,
        ..NexmarkOptions::default()
    };
    let log = EmbeddedLog::new(Arc::new(InMemory::new()), Path::from("root"));
    let (topic, all) = append_bids(&log, &options).await;
    let total: usize = all.iter().map(|b| b.num_rows()).sum();
    assert!(total > 100_000, "{total} bids");

    let top = 3;
    let sink = CollectSink::new();
    let graph = HotItems {
        top,
        // Disorder is at most 500 events (~0.25 s of event time): well inside the bound.
        max_out_of_orderness: Duration::from_secs(2),
        parallelism: 2,
        ..HotItems::default()
    }
    .build(
        Arc::new(LogSource::new(topic).bounded()),
        Arc::new(sink.clone()),
    )
    .unwrap();
    let job = spawn(graph, JobConfig::default()).await.unwrap();
    let metrics = job.metrics().clone();
    job.join().await.unwrap();

    let late: u64 = metrics.nodes.iter().map(|n| n.late_rows()).sum();
    assert_eq!(late, 0, "no bid may be late in this run");
    assert_eq!(metrics.node("bids").unwrap().rows_in(), total as u64);
    let got = streaming_rows(&sink.batches());
    let expected = oracle_rows(all, top).await;
    assert!(expected.len() > 100, "{} oracle rows", expected.len());
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
}
