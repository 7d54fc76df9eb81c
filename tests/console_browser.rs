//! The web console in a real browser: a `runnel serve --token` process, headless
//! Chromium driven by selenium (`tests/python/console.py`), and bids produced over HTTP
//! while it looks. The script checks the token prompt, submits the hot-items SQL
//! through the editor (and a bad text first, which must show its line and column),
//! watches the job, its graph, checkpoints and live results, the tables page, and
//! stops the job; it leaves a screenshot of every page under
//! `target/tmp/console-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); selenium
//! comes from PyPI with the other Python clients.

// Tests wait on and time real processes with the machine's clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

use common::durable::{spawn_server_with, wait_listening};
use common::http::{bids_by_partition, post_bids, post_sql, sql_file};
use common::python::{python, script};

const TOKEN: &str = "console-test-token";
const PARTITIONS: usize = 2;

/// A client that sends the token.
fn client() -> reqwest::Client {
    let mut headers = HeaderMap::new();
    let bearer = HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap();
    headers.insert(AUTHORIZATION, bearer);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Debian's chromium and chromedriver, which the script starts.
fn require_browser() {
    for program in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: `apt-get install -y chromium chromium-driver` (.ci/run does)"
        );
    }
}

/// The SQL the script types: the job (source and sink `hot` into an Iceberg table), and
/// an EXPLAIN of the same query.
fn write_sql(dir: &Path) {
    let source = sql_file("bids_source.sql", &[("partitions", "2")]);
    let with = "WITH (connector = 'iceberg', table = 'hot_items')";
    let sink = sql_file("hot_top3.sql", &[("with", with)]);
    std::fs::write(dir.join("job.sql"), format!("{source}\n{sink}")).unwrap();
    let explained = sql_file("hot_top3.sql", &[("with", "")]).replace("SINK hot", "SINK hot_plan");
    std::fs::write(dir.join("explain.sql"), format!("EXPLAIN {explained}")).unwrap();
}

pub fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// Posts the bids once job `hot` exists (the editor creates the topic), one batch per
/// partition every 250 ms (the browser test's 500-row batches: about 4,000 bids per
/// second, 2 s of event time, so a window closes every second), until `stop`.
async fn produce(url: String, partitions: Vec<Vec<RecordBatch>>, stop: Arc<AtomicBool>) {
    let client = client();
    while !stop.load(Ordering::Relaxed) {
        let reply = client.get(format!("{url}/v1/jobs/hot")).send().await;
        if reply.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rounds = partitions.iter().map(Vec::len).max().unwrap_or(0);
    for seq in 0..rounds {
        for (p, batches) in partitions.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if let Some(batch) = batches.get(seq) {
                post_bids(&client, &url, "bids", p, seq, batch).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_follows_a_job_submitted_in_its_editor() {
    require_browser();
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let temp = tempfile::tempdir().unwrap();
    write_sql(temp.path());
    let log = temp.path().join("server.log");
    let extra = ["--token", TOKEN];
    let mut server = spawn_server_with(
        &temp.path().join("data"),
        "500ms",
        &log,
        "127.0.0.1:0",
        &extra,
    );
    let url = wait_listening(&mut server);

    let stop = Arc::new(AtomicBool::new(false));
    let bids = bids_by_partition(31, 400_000, 500, PARTITIONS);
    let producer = tokio::spawn(produce(url.clone(), bids, stop.clone()));
    let shots = screenshots();
    let mut browser = Command::new(python);
    browser
        .arg(script("console.py"))
        .args([url.as_str(), TOKEN])
        .arg(temp.path())
        .arg(&shots);
    let status = tokio::task::spawn_blocking(move || browser.status().unwrap())
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    producer.await.unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = server_log.lines().collect();
    let tail = lines[lines.len().saturating_sub(60)..].join("\n");
    assert!(
        status.success(),
        "the browser checks failed; the server's log ends:\n{tail}"
    );
    for page in [
        "01-token-prompt",
        "03-sql-error",
        "06-jobs",
        "07-graph",
        "08-checkpoints",
        "09-results",
        "10-tables",
    ] {
        let file = shots.join(format!("{page}.png"));
        assert!(
            file.metadata().is_ok_and(|m| m.len() > 1000),
            "{}",
            file.display()
        );
    }
}

/// What the console costs the server while someone looks at it: a hot-items job over
/// bids posted at about 2,000 per second, then for each page (none, jobs, graph,
/// checkpoints, live results, none again) the requests the page makes, the bytes it
/// reads and the server's CPU, over 20 s each. A measurement, printed, not asserted: run
/// it with `cargo test --test console_browser -- --ignored --nocapture` (`--release` for
/// an optimised server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn console_polling_cost() {
    require_browser();
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("server.log");
    let extra = ["--token", TOKEN];
    let mut server = spawn_server_with(
        &temp.path().join("data"),
        "10s",
        &log,
        "127.0.0.1:0",
        &extra,
    );
    let url = wait_listening(&mut server);
    let source = sql_file("bids_source.sql", &[("partitions", "2")]);
    let sink = sql_file("hot_top3.sql", &[("with", "")]);
    let (status, reply) = post_sql(&client(), &url, &format!("{source}\n{sink}")).await;
    assert_eq!(status, 200, "{reply:#}");
    // 250 bids per partition every 250 ms, for longer than the six pages take.
    let stop = Arc::new(AtomicBool::new(false));
    let bids = bids_by_partition(31, 320_000, 250, PARTITIONS);
    let producer = tokio::spawn(produce(url.clone(), bids, stop.clone()));
    let mut measure = Command::new(python);
    measure.arg(script("console_cost.py")).args([
        url.as_str(),
        TOKEN,
        &server.id().to_string(),
        "20",
        "hot",
    ]);
    let status = tokio::task::spawn_blocking(move || measure.status().unwrap())
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    producer.await.unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(status.success());
}
