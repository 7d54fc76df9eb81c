//! The results endpoint with a real client: pyarrow (from PyPI) reads
//! `GET /v1/jobs/{id}/results` of a `runnel serve` process while the job runs. The
//! first batch arrives before the job ends; the rows equal the batch oracle; a reader
//! starting from `earliest` after a server restart sees the same rows again, each once,
//! tagged with the same epochs; and one resuming with `from=epoch:K` gets exactly the
//! rows of epochs `K` and later.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use arrow::ipc::reader::FileReader;
use arrow::record_batch::RecordBatch;

use common::durable::*;
use common::http::{epochs, snapshot_ids, without_tags};
use common::python::{python, script};
use common::{Row, oracle_rows, streaming_rows};

/// `(epoch, row)` of every streamed row, sorted. A batch holds the rows of one epoch,
/// and a job without a table has no snapshot ids.
fn rows_with_epochs(batches: &[RecordBatch]) -> Vec<(i64, Row)> {
    let mut out = Vec::new();
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        let epochs = epochs(batch);
        assert!(epochs.iter().all(|e| *e == epochs[0]), "{epochs:?}");
        assert!(snapshot_ids(batch).iter().all(Option::is_none));
        let rows = streaming_rows(&without_tags(std::slice::from_ref(batch)));
        out.extend(rows.into_iter().map(|row| (epochs[0], row)));
    }
    out.sort();
    out
}

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
    assert_eq!(streaming_rows(&without_tags(&live)), expected);
    let live = rows_with_epochs(&live);
    let seen: BTreeSet<i64> = live.iter().map(|(epoch, _)| *epoch).collect();
    assert!(seen.len() >= 3, "results of several epochs: {seen:?}");
    assert!(
        seen.first() > Some(&0),
        "every row was committed by an epoch"
    );

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
    assert_eq!(streaming_rows(&without_tags(&replayed)), expected);
    assert_eq!(rows_with_epochs(&replayed), live, "the same epochs again");

    // A client that saw up to epoch K - 1 resumes with `from=epoch:K`: exactly the rows
    // of epochs K and later. Past the last epoch there is nothing (the job finished).
    let middle = *seen.iter().nth(seen.len() / 2).unwrap();
    let last = *seen.last().unwrap();
    for k in [middle, middle + 1, last + 1] {
        let resume = format!("{url}/v1/jobs/{JOB}/results?from=epoch:{k}");
        let (out, data) = (temp.path().join(format!("epoch-{k}.arrow")), dir.clone());
        let (resumed, _) =
            tokio::task::spawn_blocking(move || read_with_pyarrow(&resume, &out, &data))
                .await
                .unwrap();
        let wanted: Vec<(i64, Row)> = live.iter().filter(|(e, _)| *e >= k).cloned().collect();
        assert_eq!(rows_with_epochs(&resumed), wanted, "from=epoch:{k}");
    }

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
        (format!("/v1/jobs/{JOB}/results?from=epoch:x"), 400),
        (format!("/v1/jobs/{JOB}/results?from=epoch:-1"), 400),
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
