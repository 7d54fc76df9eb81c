//! Iceberg tables on an S3 data root (moto, from PyPI): `runnel serve --data
//! s3://bucket/prefix` keeps a SQL sink's table (pointers, metadata, data files) in the
//! bucket, is killed with SIGKILL midway and restarted, and PyIceberg, reading the table
//! straight from its metadata file in S3, sees exactly the batch oracle's rows.

mod common;

use std::process::Command;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::ipc::reader::FileReader;

use common::http::{
    bids_by_partition, get_json, get_table, post_first_half, post_second_half_and_flush,
    submit_hot_top3, wait_for_table,
};
use common::python::{python, script};
use common::s3::{BUCKET, serve_on_s3, start_moto};
use common::{oracle_rows, table_rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iceberg_sink_on_s3_survives_a_kill_and_pyiceberg_reads_it_from_s3() {
    let (_moto, endpoint) = start_moto().await;
    let client = reqwest::Client::new();
    let partitions = bids_by_partition(9, 16_000, 1_000, 2);
    let all: Vec<RecordBatch> = partitions.iter().flatten().cloned().collect();
    let expected = oracle_rows(all.clone(), 3).await;

    let temp = tempfile::tempdir().unwrap();
    let (server, url) = serve_on_s3(&endpoint, &temp.path().join("first.log"));
    submit_hot_top3(&client, &url, "WITH (connector = 'iceberg', table = 'hot')").await;
    post_first_half(&client, &url, &partitions).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let committed_before_kill = table_rows(&get_table(&client, &url, "hot").await).len();
    drop(server);

    let (server, url) = serve_on_s3(&endpoint, &temp.path().join("second.log"));
    post_second_half_and_flush(&client, &url, &partitions, &all).await;
    let batches = wait_for_table(&client, &url, "hot", Duration::from_secs(60), |b| {
        table_rows(b).len() >= expected.len()
    })
    .await;
    let got = table_rows(&batches);
    if got != expected {
        let log = std::fs::read_to_string(temp.path().join("second.log")).unwrap_or_default();
        let tail = &log[log.len().saturating_sub(4000)..];
        panic!(
            "GET /v1/tables/hot: {} rows, {} expected; server log:\n{tail}",
            got.len(),
            expected.len()
        );
    }
    assert!(
        committed_before_kill > 0,
        "nothing committed before the kill"
    );

    let metadata = get_json(&client, &format!("{url}/v1/tables/hot/metadata")).await;
    let location = metadata["metadata_location"].as_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!(
            "s3://{BUCKET}/data/warehouse/default/hot/metadata/"
        )),
        "{location}"
    );
    drop(server);

    // PyIceberg, from the metadata file alone, through S3.
    let out = temp.path().join("pyiceberg.arrow");
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let output = Command::new(python)
        .arg(script("read_iceberg_s3.py"))
        .arg(&location)
        .arg(&endpoint)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "read_iceberg_s3.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["format_version"], 2);
    let appends = report["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["operation"] == "append")
        .count();
    assert!(appends > 1, "{report}");
    let read: Vec<RecordBatch> = FileReader::try_new(std::fs::File::open(&out).unwrap(), None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(table_rows(&read), expected, "PyIceberg");
}
