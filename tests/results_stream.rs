//! The results endpoint with a real client: pyarrow (from PyPI) reads
//! `GET /v1/jobs/{id}/results` of a `runnel serve` process while the job runs. The
//! first batch arrives before the job ends; the rows equal the batch oracle; and a
//! reader starting from `earliest` after a server restart sees the same rows again,
//! each once.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use arrow::ipc::reader::FileReader;
use arrow::record_batch::RecordBatch;

use common::durable::*;
use common::python::{python, script};
use common::{oracle_rows, streaming_rows};

/// Runs the pyarrow reader on `url`; returns the rows it received and whether the job
/// had finished when the first batch arrived.
fn read_with_pyarrow(url: &str, out: &Path, data: &Path) -> (Vec<RecordBatch>, Option<bool>) {
    let mut child = Command::new(python())
        .arg(script("read_results.py"))
        .arg(url)
        .arg(out)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut finished_at_first_batch = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("batch ") && finished_at_first_batch.is_none() {
            finished_at_first_batch = Some(finished(data));
        }
    }
    assert!(child.wait().unwrap().success(), "the pyarrow reader failed");
    let file = std::fs::File::open(out).unwrap();
    let batches = FileReader::try_new(file, None)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (batches, finished_at_first_batch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_reads_committed_results_live_and_again_after_a_restart() {
    let python = tokio::task::spawn_blocking(python);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let bids = prepare(&dir, 60_000).await;
    let expected = oracle_rows(bids.iter().flatten().cloned().collect(), TOP).await;
    python.await.unwrap();

    let producer = produce(&dir, bids.clone(), Duration::from_secs(4));
    let mut server = spawn_server(&dir, "200ms", &temp.path().join("server.log"));
    let url = wait_listening(&mut server);
    let results = format!("{url}/v1/jobs/{JOB}/results?from=earliest");
    let (out, data) = (temp.path().join("live.arrow"), dir.clone());
    let reader = tokio::task::spawn_blocking(move || read_with_pyarrow(&results, &out, &data));
    let (live, finished_at_first) = reader.await.unwrap();
    producer.await.unwrap();
    assert_eq!(
        finished_at_first,
        Some(false),
        "the first batch arrived before the job finished"
    );
    assert!(live.len() > 1, "results arrive as they commit, not at once");
    assert_eq!(streaming_rows(&live), expected);

    // `latest` on a finished job: the schema, then the end of the stream.
    let latest = format!("{url}/v1/jobs/{JOB}/results?from=latest");
    let (out, data) = (temp.path().join("latest.arrow"), dir.clone());
    let (none, _) = tokio::task::spawn_blocking(move || read_with_pyarrow(&latest, &out, &data))
        .await
        .unwrap();
    assert_eq!(none.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);

    server.kill().unwrap();
    server.wait().unwrap();
    let mut server = spawn_server(&dir, "200ms", &temp.path().join("server-2.log"));
    let url = wait_listening(&mut server);
    let again = format!("{url}/v1/jobs/{JOB}/results?from=earliest");
    let (out, data) = (temp.path().join("again.arrow"), dir.clone());
    let (replayed, _) = tokio::task::spawn_blocking(move || read_with_pyarrow(&again, &out, &data))
        .await
        .unwrap();
    assert_eq!(streaming_rows(&replayed), expected);

    // `runnel tail` prints the same rows as tables.
    let tail = std::process::Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(["tail", JOB, "--from", "earliest", "--server", &url])
        .output()
        .unwrap();
    assert!(
        tail.status.success(),
        "{}",
        String::from_utf8_lossy(&tail.stderr)
    );
    let printed = String::from_utf8(tail.stdout).unwrap();
    let rows = printed
        .lines()
        .filter(|l| l.starts_with('|') && !l.contains("window_start"))
        .count();
    assert_eq!(rows, expected.len(), "{printed}");

    // Errors are JSON.
    let client = reqwest::Client::new();
    for (path, status) in [
        (format!("/v1/jobs/{JOB}/results?from=sideways"), 400),
        ("/v1/jobs/nope/results".to_string(), 404),
    ] {
        let reply = client.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(reply.status().as_u16(), status, "{path}");
        let body: serde_json::Value = reply.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    server.kill().unwrap();
    server.wait().unwrap();
}
