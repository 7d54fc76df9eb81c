//! Requests that would pin the cores or fill the memory of `runnel serve`, against the
//! real binary: runaway ad-hoc queries run on their own low-priority pool until their
//! time limit, amplifying functions are refused before they allocate, results streams
//! whose clients never read hold a bounded buffer and are capped, and through all of
//! it `/healthz` answers quickly and a running job keeps its pace.

// Latencies and rates are measured on the machine's clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::durable::*;
use common::http::post_sql;

/// A job that generates bids as fast as it can and streams every one as a result.
const JOB_SQL: &str = "
CREATE SOURCE gen (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    date_time TIMESTAMP(3), extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND
) WITH (connector = 'nexmark', type = 'bid', partitions = '1');
CREATE SINK busy AS SELECT auction, bidder, price, extra FROM gen;
";

/// A 6-way cross join of 100 rows: 10^12 rows to sum, far past any time limit (and,
/// as a sum, not answered from statistics).
const RUNAWAY: &str = "WITH t(x) AS (VALUES (1),(2),(3),(4),(5),(6),(7),(8),(9),(10)) \
    , h(x) AS (SELECT a.x FROM t a, t b) \
    SELECT sum(a.x + b.x + c.x + d.x + e.x + f.x) FROM h a, h b, h c, h d, h e, h f";

async fn post_query(client: &reqwest::Client, url: &str, sql: &str) -> (u16, String) {
    let response = client
        .post(format!("{url}/v1/query"))
        .body(sql.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The slowest of `probes` `/healthz` answers, one every 50 ms.
async fn slowest_health(client: &reqwest::Client, url: &str, probes: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for _ in 0..probes {
        let started = Instant::now();
        let answer = client.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    slowest
}

/// Rows the job's operators have taken in so far (from `/metrics`).
async fn rows_in(client: &reqwest::Client, url: &str) -> f64 {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("runnel_operator_rows_in_total{") && l.contains("job=\"busy\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The job's rows per second over `window`.
async fn job_rate(client: &reqwest::Client, url: &str, window: Duration) -> f64 {
    let before = rows_in(client, url).await;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    (rows_in(client, url).await - before) / started.elapsed().as_secs_f64()
}

/// A results request whose answer is never read.
fn idle_stream(address: &str) -> TcpStream {
    let mut socket = TcpStream::connect(address).unwrap();
    write!(
        socket,
        "GET /v1/jobs/busy/results?from=earliest HTTP/1.1\r\nHost: runnel\r\n\r\n"
    )
    .unwrap();
    socket
}

/// CPU time (clock ticks) the server's query threads have used.
fn query_cpu_ticks(pid: u32) -> u64 {
    let mut ticks = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() != "runnel-query" {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // After the `(comm)` field: state is 3rd, utime 14th and stime 15th.
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    ticks
}

fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// A server on a fresh data root with `extra` flags; its directory, process and URL.
fn start(extra: &[&str]) -> (tempfile::TempDir, Server, String) {
    let temp = tempfile::tempdir().unwrap();
    let log = temp.path().join("server.log");
    let mut server = spawn_server_with(&temp.path().join("data"), "1s", &log, "127.0.0.1:0", extra);
    let url = wait_listening(&mut server);
    (temp, server, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplifying_functions_and_oversized_results_are_refused() {
    let (_temp, server, url) = start(&["--query-max-result-bytes", "100000"]);
    let client = reqwest::Client::new();
    for sql in [
        "SELECT repeat('x', 1500000000)",
        "SELECT lpad('x', 2000000000)",
        "SELECT length(repeat(repeat('x', 100000), 100000))",
    ] {
        let (status, body) = post_query(&client, &url, sql).await;
        assert_eq!(status, 400, "{sql}: {body}");
        assert!(body.contains("--query-max-memory-bytes"), "{sql}: {body}");
    }
    let big = "WITH t(x) AS (VALUES ('a'),('b'),('c'),('d'),('e'),('f'),('g'),('h')) \
        SELECT repeat(a.x, 100) FROM t a, t b, t c, t d";
    let (status, body) = post_query(&client, &url, big).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("--query-max-result-bytes"), "{body}");
    let (status, _) = post_query(&client, &url, "SELECT repeat('ab', 3)").await;
    assert_eq!(status, 200);
    assert!(resident_bytes(server.id()) < 1 << 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_queries_and_idle_streams_leave_health_and_jobs_responsive() {
    let (_temp, server, url) = start(&["--query-timeout", "6s", "--max-result-streams", "200"]);
    let address = url.trim_start_matches("http://").to_string();
    let client = reqwest::Client::new();
    let (status, body) = post_sql(&client, &url, JOB_SQL).await;
    assert_eq!(status, 200, "{body}");
    // Warm up, then the job's pace alone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alone = job_rate(&client, &url, Duration::from_secs(4)).await;
    let quiet_health = slowest_health(&client, &url, 20).await;

    let streams: Vec<TcpStream> = (0..200).map(|_| idle_stream(&address)).collect();
    // Each stream has been answered (its head read) before the next request.
    for mut stream in &streams {
        use std::io::Read;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
    }
    let refused = client
        .get(format!("{url}/v1/jobs/busy/results"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 429, "the 201st stream");
    let runaways: Vec<_> = (0..2)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { post_query(&client, &url, RUNAWAY).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (third, body) = post_query(&client, &url, "SELECT 1").await;
    assert_eq!(
        third, 429,
        "a third query beyond --query-concurrency 2: {body}"
    );
    let loaded_health = slowest_health(&client, &url, 40).await;
    let loaded = job_rate(&client, &url, Duration::from_secs(2)).await;
    let rss = resident_bytes(server.id());
    for runaway in runaways {
        let (status, body) = runaway.await.unwrap();
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("query_timeout"), "{body}");
    }
    // Cancelled means stopped: the query threads go idle.
    let busy = query_cpu_ticks(server.id());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = query_cpu_ticks(server.id()) - busy;
    assert!(
        after <= 10,
        "query threads used {after} ticks in the second after the timeouts"
    );
    eprintln!(
        "job alone: {alone:.0} rows/s; with 2 runaway queries and 200 idle streams: \
         {loaded:.0} rows/s ({:.0}%); slowest /healthz quiet {quiet_health:?}, loaded \
         {loaded_health:?}; server RSS {} MiB",
        100.0 * loaded / alone,
        rss >> 20
    );
    // Within 100 ms, or, on a machine already busy with other work, no slower than
    // twice the quiet server.
    let bound = Duration::from_millis(100).max(quiet_health * 2);
    assert!(
        loaded_health < bound,
        "{loaded_health:?}, quiet {quiet_health:?}"
    );
    assert!(loaded >= 0.8 * alone, "{loaded:.0} vs {alone:.0} rows/s");
    assert!(rss < 2 << 30, "RSS {} MiB", rss >> 20);
    drop(streams);
    // The streams' places are given back once their clients are gone.
    let mut reopened = false;
    for _ in 0..50 {
        let response = client
            .get(format!("{url}/v1/jobs/busy/results?from=latest"))
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 200 {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened, "no stream place was given back");
    assert_eq!(
        client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}
