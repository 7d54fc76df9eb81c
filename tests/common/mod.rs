//! Shared by the end-to-end tests: the hot-items batch oracle and result decoding.

// Tests wait on and time real processes with the machine's clock.
#![allow(clippy::disallowed_methods)]
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod durable;
pub mod http;
pub mod kafka;
pub mod python;
pub mod s3;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMillisecondType, UInt64Type};
use datafusion::prelude::SessionContext;
use runnel_connectors::log::{EmbeddedLog, Topic};
use runnel_connectors::nexmark::{NexmarkOptions, NexmarkTable, generate_partition};

/// Generates bids with `options` into a new topic `bids` of `log`, one partition of the
/// generator per log partition; returns the topic and every batch appended.
pub async fn append_bids(log: &EmbeddedLog, options: &NexmarkOptions) -> (Topic, Vec<RecordBatch>) {
    let partitions = options.partitions as u32;
    let topic = log
        .create_topic("bids", partitions, NexmarkTable::Bid.schema())
        .await
        .unwrap();
    let mut all = Vec::new();
    for p in 0..options.partitions {
        for batch in generate_partition(options, NexmarkTable::Bid, p).unwrap() {
            topic
                .append(p as u32, std::slice::from_ref(&batch), None)
                .await
                .unwrap();
            all.push(batch);
        }
    }
    (topic, all)
}

/// (window_start, window_end, auction, bids, rank)
pub type Row = (i64, i64, i64, i64, u64);

pub fn streaming_rows(batches: &[RecordBatch]) -> Vec<Row> {
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

pub async fn oracle_rows(bids: Vec<RecordBatch>, top: usize) -> Vec<Row> {
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

/// Rows of the hot-items table as an Iceberg table holds them (microsecond timestamps, no
/// unsigned integers), in the stream's types, for [`streaming_rows`].
pub fn table_rows(batches: &[RecordBatch]) -> Vec<Row> {
    use arrow::compute::cast;
    use arrow::datatypes::{DataType, TimeUnit};
    let millis = DataType::Timestamp(TimeUnit::Millisecond, None);
    let converted: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let schema = b.schema();
            let columns: Vec<_> = schema
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(f, c)| {
                    let to = match f.name().as_str() {
                        "window_start" | "window_end" => millis.clone(),
                        "rn" => DataType::UInt64,
                        _ => DataType::Int64,
                    };
                    (f.name().clone(), cast(c, &to).unwrap())
                })
                .collect();
            RecordBatch::try_from_iter(columns).unwrap()
        })
        .collect();
    streaming_rows(&converted)
}
