//! A Kafka source's partitions and the watermark, against a real broker (tansu): a
//! partition that stays empty does not hold the watermark back past the source's idle
//! timeout, and a partition that receives its first record while the job runs is read.

// Tests wait on and time real processes with the machine's clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, Int64Array, RecordBatch, TimestampMillisecondArray};

use common::durable::{spawn_server, stderr_logs, wait_listening, wait_until};
use common::http::{bids_by_partition, flush_row, newest_event, post_sql, sql_file};
use common::kafka::{Broker, produce_json, read_with_kafka_python, record_count};

/// `rows` copies of `template`'s first row with `auction` at `at`.
fn bids_of(template: &RecordBatch, auction: i64, at: i64, rows: usize) -> RecordBatch {
    let one = template.slice(0, 1);
    let schema = one.schema();
    let columns = schema
        .fields()
        .iter()
        .zip(one.columns())
        .map(|(f, c)| match f.name().as_str() {
            "auction" => Arc::new(Int64Array::from(vec![auction; rows])) as Arc<dyn Array>,
            "date_time" => Arc::new(TimestampMillisecondArray::from(vec![at; rows])),
            _ => arrow::compute::concat(&vec![c.as_ref(); rows]).unwrap(),
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_partition_goes_idle_and_a_late_first_record_is_read() {
    let broker = Broker::start();
    broker.create_topic("bids", 4);
    broker.create_topic("counts", 1);
    // Three of the four partitions get bids; the fourth none for now.
    let mut bids = bids_by_partition(5, 6_000, 500, 3);
    let newest = newest_event(&bids.concat());
    let template = bids[0][0].clone();
    bids.push(Vec::new());
    produce_json(&broker.bootstrap, "bids", &bids).await;

    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let logs = stderr_logs(temp.path());
    let mut server = spawn_server(&dir, "100ms", &logs.join("server.log"));
    let url = wait_listening(&mut server);
    // The file's source has a 1 s idle timeout.
    let sql = sql_file("kafka_counts.sql", &[("bootstrap", &broker.bootstrap)]);
    let (status, body) = post_sql(&reqwest::Client::new(), &url, &sql).await;
    assert_eq!(status, 200, "{body}");
    let bootstrap = broker.bootstrap.clone();
    wait_until(
        "windows close with partition 3 empty",
        Duration::from_secs(60),
        || record_count(&bootstrap, "counts", 1) > 0,
    )
    .await;

    // Partition 3's first records, after everything else, then a row on every partition
    // that closes their window.
    let at = newest + 10_000;
    let late_first = vec![
        Vec::new(),
        Vec::new(),
        Vec::new(),
        vec![bids_of(&template, 424_242, at, 5)],
    ];
    produce_json(&broker.bootstrap, "bids", &late_first).await;
    let flush: Vec<Vec<RecordBatch>> = (0..4)
        .map(|_| vec![flush_row(&template, at + 60_000)])
        .collect();
    produce_json(&broker.bootstrap, "bids", &flush).await;
    let found = || {
        read_with_kafka_python(&bootstrap, "counts")
            .iter()
            .any(|r| r["value"]["auction"] == 424_242 && r["value"]["n"] == 5)
    };
    let start = std::time::Instant::now();
    while !found() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "partition 3's rows were not counted"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
}
