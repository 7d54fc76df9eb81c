//! The jobs endpoints of a real `runnel serve`: status with rates while rows flow,
//! Prometheus metrics (commit latency included), and dropping a job, which stops it
//! after a final checkpoint and keeps it stopped across a server restart.

// Tests wait on and time real processes with the machine's clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use serde_json::Value;

use common::durable::*;
use common::http::{get_json, get_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_metrics_and_drop() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let bids = prepare(&dir, 200_000).await;
    let producer = produce(&dir, bids, Duration::from_secs(20));
    let mut server = spawn_server(&dir, "100ms", &temp.path().join("server.log"));
    let url = wait_listening(&mut server);
    let client = reqwest::Client::new();

    // Running, reading, checkpointing.
    let job_url = format!("{url}/v1/jobs/{JOB}");
    let start = std::time::Instant::now();
    let status = loop {
        let status = get_json(&client, &job_url).await;
        if status["checkpoints_completed"].as_u64() >= Some(2) {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{status:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["state"], "running", "{status:#}");
    assert_eq!(status["parallelism"], 2);
    assert!(
        status["last_checkpoint"]["epoch"].as_u64() >= Some(2),
        "{status:#}"
    );
    // Rows per second, sampled by the server, while the bids still flow in.
    let status = loop {
        let status = get_json(&client, &job_url).await;
        if status["rows_in_per_second"].as_f64() > Some(0.0) {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{status:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        !producer.is_finished(),
        "rates are measured while rows flow"
    );
    assert!(
        status["rate_window_seconds"].as_f64() > Some(0.0),
        "{status:#}"
    );
    assert!(
        status["rows_out_per_second"].as_f64() >= Some(0.0),
        "{status:#}"
    );
    assert!(status["rows_in"].as_u64() > Some(0), "{status:#}");
    let source = status["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "bids")
        .unwrap_or_else(|| panic!("no source operator in {status:#}"));
    assert!(
        source["rows_in_per_second"].as_f64() > Some(0.0),
        "{status:#}"
    );
    assert!(source["rows_out_per_second"].is_number(), "{status:#}");

    let list = get_json(&client, &format!("{url}/v1/jobs")).await;
    assert_eq!(list["jobs"][0]["id"], JOB, "{list:#}");

    let metrics = get_text(&client, &format!("{url}/metrics")).await;
    let bids_read = metrics
        .lines()
        .find(|l| {
            l.starts_with("runnel_operator_rows_in_total{")
                && l.contains(&format!("job=\"{JOB}\",operator=\"bids\""))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no rows_in for the source in\n{metrics}"));
    assert!(bids_read > 0.0, "{metrics}");
    assert!(metrics.contains("# TYPE runnel_checkpoint_duration_seconds gauge"));
    let commits = metrics
        .lines()
        .find_map(|l| {
            let prefix =
                format!("runnel_sink_commit_seconds_count{{job=\"{JOB}\",sink=\"output\"}} ");
            l.strip_prefix(&prefix)?.parse::<f64>().ok()
        })
        .unwrap_or_else(|| panic!("no commit latency in\n{metrics}"));
    assert!(commits > 0.0, "{metrics}");

    // Dropping takes a final checkpoint and stops the job for good.
    let reply = client.delete(&job_url).send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let dropped: Value = reply.json().await.unwrap();
    assert_eq!(dropped["state"], "dropped", "{dropped:#}");
    let missing = client
        .delete(format!("{url}/v1/jobs/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["error"]["code"], "not_found");
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(!finished(&dir), "a dropped job is not a finished one");

    // A new process leaves it dropped: no claim, no checkpoint.
    let before = newest_manifest(&dir);
    let mut server = spawn_server(&dir, "100ms", &temp.path().join("server-2.log"));
    let url = wait_listening(&mut server);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = get_json(&client, &format!("{url}/v1/jobs/{JOB}")).await;
    assert_eq!(status["state"], "dropped", "{status:#}");
    assert_eq!(newest_manifest(&dir), before);
    server.kill().unwrap();
    server.wait().unwrap();
    producer.abort();
}
