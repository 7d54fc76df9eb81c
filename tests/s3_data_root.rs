//! `runnel serve --data s3://bucket/prefix` against an S3-compatible server (moto, from
//! PyPI): the start-up probe accepts it, a SQL job's sources, sinks and checkpoints live
//! in the bucket, the server is killed with SIGKILL midway and restarted on the same
//! bucket, and the results equal the batch oracle.

mod common;

use std::time::Duration;

use arrow::record_batch::RecordBatch;

use common::http::{
    bids_by_partition, post_first_half, post_second_half_and_flush, read_with_pyarrow,
    submit_hot_top3, without_tags,
};
use common::s3::{serve_on_s3, start_moto};
use common::{oracle_rows, streaming_rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_job_on_s3_survives_a_kill() {
    let (_moto, endpoint) = start_moto().await;
    let client = reqwest::Client::new();

    let partitions = bids_by_partition(5, 20_000, 1_000, 2);
    let all: Vec<RecordBatch> = partitions.iter().flatten().cloned().collect();
    let expected = oracle_rows(all.clone(), 3).await;

    let temp = tempfile::tempdir().unwrap();
    let (server, url) = serve_on_s3(&endpoint, &temp.path().join("first.log"));
    submit_hot_top3(&client, &url, "").await;
    post_first_half(&client, &url, &partitions).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    drop(server);

    let (server, url) = serve_on_s3(&endpoint, &temp.path().join("second.log"));
    post_second_half_and_flush(&client, &url, &partitions, &all).await;
    let results = format!("{url}/v1/jobs/hot/results?from=earliest");
    let out = temp.path().join("hot.arrow");
    let rows = expected.len();
    let got = tokio::task::spawn_blocking(move || read_with_pyarrow(&results, &out, rows))
        .await
        .unwrap();
    assert_eq!(streaming_rows(&without_tags(&got)), expected);
    drop(server);
}
