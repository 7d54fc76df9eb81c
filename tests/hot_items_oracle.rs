//! Hot items (Nexmark q5) over the embedded log equals a batch query over the same bids.
//!
//! The bids are generated with disorder into 4 log partitions, read back by the streaming
//! job at parallelism 2, and compared row for row with DataFusion SQL over the very same
//! batches, which knows nothing of panes, watermarks or two-phase top-K.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMillisecondType, UInt64Type};
use datafusion::prelude::SessionContext;
use object_store::memory::InMemory;
use object_store::path::Path;
use runnel::hot_items::HotItems;
use runnel_connectors::channel::CollectSink;
use runnel_connectors::log::{EmbeddedLog, LogSource};
use runnel_connectors::nexmark::{NexmarkOptions, NexmarkTable, generate_partition};
use runnel_runtime::{JobConfig, spawn};

/// (window_start, window_end, auction, bids, rank)
type Row = (i64, i64, i64, i64, u64);

fn streaming_rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut rows = Vec::new();
    for b in batches {
        let col = |name: &str| b.column(b.schema().index_of(name).unwrap()).clone();
        let (start, end) = (col("window_start"), col("window_end"));
        let start = start.as_primitive::<TimestampMillisecondType>();
        let end = end.as_primitive::<TimestampMillisecondType>();
        let (auction, bids, rn) = (col("auction"), col("bids"), col("rn"));
        let auction = auction.as_primitive::<Int64Type>();
        let bids = bids.as_primitive::<Int64Type>();
        let rn = rn.as_primitive::<UInt64Type>();
        for i in 0..b.num_rows() {
            rows.push((
                start.value(i),
                end.value(i),
                auction.value(i),
                bids.value(i),
                rn.value(i),
            ));
        }
    }
    rows.sort();
    rows
}

async fn oracle_rows(bids: Vec<RecordBatch>, top: usize) -> Vec<Row> {
    let ctx = SessionContext::new();
    ctx.register_batch(
        "bids_part",
        arrow::compute::concat_batches(&bids[0].schema(), &bids).unwrap(),
    )
    .unwrap();
    // Each bid belongs to the 5 windows of 10 s that start at the 5 slides of 2 s before it.
    let sql = format!(
        "WITH t AS (SELECT auction, CAST(date_time AS BIGINT) AS ts FROM bids_part),
              w AS (SELECT auction, (ts / 2000 - k) * 2000 AS window_start
                    FROM t CROSS JOIN (VALUES (0), (1), (2), (3), (4)) AS o(k)),
              c AS (SELECT window_start, window_start + 10000 AS window_end, auction, COUNT(*) AS bids
                    FROM w GROUP BY window_start, auction),
              r AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start
                                                 ORDER BY bids DESC, auction ASC) AS rn FROM c)
         SELECT window_start, window_end, auction, bids, CAST(rn AS BIGINT) AS rn
         FROM r WHERE rn <= {top}"
    );
    let out = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let mut rows = Vec::new();
    for b in &out {
        let c = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
        let (s, e, a, n, r) = (c(0), c(1), c(2), c(3), c(4));
        for i in 0..b.num_rows() {
            assert!(!s.is_null(i));
            rows.push((
                s.value(i),
                e.value(i),
                a.value(i),
                n.value(i),
                r.value(i) as u64,
            ));
        }
    }
    rows.sort();
    rows
}

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
    let topic = log
        .create_topic("bids", 4, NexmarkTable::Bid.schema())
        .await
        .unwrap();
    let mut all = Vec::new();
    for p in 0..4 {
        for batch in generate_partition(&options, NexmarkTable::Bid, p).unwrap() {
            topic
                .append(p as u32, std::slice::from_ref(&batch), None)
                .await
                .unwrap();
            all.push(batch);
        }
    }
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
    let job = spawn(graph, JobConfig::default()).unwrap();
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
