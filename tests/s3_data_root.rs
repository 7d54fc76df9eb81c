//! `runnel serve --data s3://bucket/prefix` against an S3-compatible server (moto, from
//! PyPI): the start-up probe accepts it, a SQL job's sources, sinks and checkpoints live
//! in the bucket, the server is killed with SIGKILL midway and restarted on the same
//! bucket, and the results equal the batch oracle.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;

use common::durable::{free_port, wait_listening};
use common::http::{
    bids_by_partition, flush_row, newest_event, post_bids, post_sql, read_with_pyarrow, sql_file,
};
use common::python::venv_command;
use common::{oracle_rows, streaming_rows};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(endpoint: &str, log: &std::path::Path) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args([
            "serve",
            "--data",
            "s3://runnel-test/data",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--checkpoint-interval", "200ms"])
        .env("AWS_ENDPOINT", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let url = wait_listening(&mut child);
    (Killed(child), url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_job_on_s3_survives_a_kill() {
    let moto = tokio::task::spawn_blocking(|| venv_command("moto_server"))
        .await
        .unwrap();
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let _moto = Killed(
        Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        match client.put(format!("{endpoint}/runnel-test")).send().await {
            Ok(reply) if reply.status().is_success() => break,
            _ if start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("moto did not come up: {other:?}"),
        }
    }

    let partitions = bids_by_partition(5, 20_000, 1_000, 2);
    let all: Vec<RecordBatch> = partitions.iter().flatten().cloned().collect();
    let expected = oracle_rows(all.clone(), 3).await;

    let temp = tempfile::tempdir().unwrap();
    let (server, url) = serve(&endpoint, &temp.path().join("first.log"));
    let (status, reply) = post_sql(
        &client,
        &url,
        &format!(
            "{}\n{}",
            sql_file("bids_source.sql", &[("partitions", "2")]),
            sql_file("hot_top3.sql", &[("with", "")])
        ),
    )
    .await;
    assert_eq!(status, 200, "{reply:#}");
    for (p, batches) in partitions.iter().enumerate() {
        for (seq, batch) in batches[..batches.len() / 2].iter().enumerate() {
            post_bids(&client, &url, "bids", p, seq, batch).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    drop(server);

    let (server, url) = serve(&endpoint, &temp.path().join("second.log"));
    for (p, batches) in partitions.iter().enumerate() {
        for (seq, batch) in batches.iter().enumerate().skip(batches.len() / 2) {
            post_bids(&client, &url, "bids", p, seq, batch).await;
        }
        let flush = flush_row(&all[0], newest_event(&all) + 60_000);
        post_bids(&client, &url, "bids", p, batches.len(), &flush).await;
    }
    let results = format!("{url}/v1/jobs/hot/results?from=earliest");
    let out = temp.path().join("hot.arrow");
    let rows = expected.len();
    let got = tokio::task::spawn_blocking(move || read_with_pyarrow(&results, &out, rows))
        .await
        .unwrap();
    assert_eq!(streaming_rows(&got), expected);
    drop(server);
}
