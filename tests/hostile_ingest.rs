//! Hostile requests against a real `runnel serve` process: each is answered with a 4xx
//! JSON error naming the limit or the field (never a crash, a stall, panic text or a
//! silently changed value), and the server keeps answering `/healthz` afterwards.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::ipc::writer::StreamWriter;
use common::durable::{
    LogsOnFailure, Server, signal, spawn_server_with, stderr_logs, wait_listening,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel_connectors::log::EmbeddedLog;
use runnel_connectors::nexmark::NexmarkTable;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NDJSON: &str = "application/x-ndjson";
const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// A server on a fresh data directory holding the topic `bids` (Nexmark bid schema,
/// every column non-nullable).
struct Fixture {
    /// Shows the server's log if the test fails (dropped before the directory).
    _logs: LogsOnFailure,
    _temp: tempfile::TempDir,
    dir: PathBuf,
    server: Server,
    url: String,
    address: String,
    client: reqwest::Client,
}

impl Fixture {
    async fn start(extra: &[&str]) -> Fixture {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("data");
        EmbeddedLog::local(&dir)
            .unwrap()
            .create_topic("bids", 1, NexmarkTable::Bid.schema())
            .await
            .unwrap();
        let logs = stderr_logs(temp.path());
        let log = logs.join("server");
        let mut server = spawn_server_with(&dir, "1s", &log, "127.0.0.1:0", extra);
        let url = wait_listening(&mut server);
        let address = url.strip_prefix("http://").unwrap().to_owned();
        Fixture {
            _logs: LogsOnFailure(logs),
            _temp: temp,
            dir,
            server,
            url,
            address,
            client: reqwest::Client::new(),
        }
    }

    async fn post(
        &self,
        topic: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let reply = self
            .client
            .post(format!("{}/v1/topics/{topic}/records", self.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = reply.status().as_u16();
        let text = reply.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }));
        (status, value)
    }

    /// The server process is alive and answers `/healthz` on a fresh connection.
    async fn assert_healthy(&mut self) {
        assert!(
            self.server.try_wait().unwrap().is_none(),
            "the server exited"
        );
        let reply = reqwest::Client::new()
            .get(format!("{}/healthz", self.url))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("/healthz answers");
        assert_eq!(reply.status().as_u16(), 200);
    }

    async fn rows(&self, topic: &str) -> u64 {
        let log = EmbeddedLog::local(&self.dir).unwrap();
        log.topic(topic).await.unwrap().end_offset(0).await.unwrap()
    }
}

fn message(reply: &Value) -> &str {
    reply["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {reply}"))
}

fn bid_line(price: &str, date_time: &str) -> String {
    format!(
        "{{\"auction\": 1, \"bidder\": 2, \"price\": {price}, \"channel\": \"c\", \"url\": \"u\", \
         \"date_time\": {date_time}, \"extra\": \"\"}}\n"
    )
}

fn bids(n: usize) -> RecordBatch {
    let ints =
        |f: fn(usize) -> i64| Arc::new(Int64Array::from_iter_values((0..n).map(f))) as ArrayRef;
    let text =
        |s: &str| Arc::new(StringArray::from_iter_values((0..n).map(|_| s.to_owned()))) as ArrayRef;
    let times = (0..n).map(|i| 1_000 * i as i64);
    RecordBatch::try_new(
        NexmarkTable::Bid.schema(),
        vec![
            ints(|i| i as i64),
            ints(|i| 7 * i as i64),
            ints(|i| 100 + i as i64),
            text("web"),
            text("https://example.com/"),
            Arc::new(TimestampMillisecondArray::from_iter_values(times)),
            text(""),
        ],
    )
    .unwrap()
}

fn ipc_stream(batches: &[RecordBatch]) -> Vec<u8> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batches[0].schema()).unwrap();
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_refused_at_the_nesting_limit() {
    let mut fx = Fixture::start(&[]).await;
    let brackets = 35_000;
    let whole_line = format!("{}{}\n", "[".repeat(brackets), "]".repeat(brackets));
    let in_a_field = bid_line(
        &format!("{}1{}", "[".repeat(brackets), "]".repeat(brackets)),
        "1",
    );
    let unclosed = "[".repeat(brackets);
    for body in [whole_line, in_a_field, unclosed] {
        let (status, reply) = fx.post("bids", NDJSON, body).await;
        assert_eq!(status, 400, "{reply}");
        assert!(
            message(&reply).starts_with("line 1: JSON nested deeper than 64 levels"),
            "{reply}"
        );
        fx.assert_healthy().await;
    }
    assert_eq!(fx.rows("bids").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_one_row_ipc_batches_append_as_one_segment() {
    let mut fx = Fixture::start(&[]).await;
    let all = bids(3_000);
    let batches: Vec<RecordBatch> = (0..3_000).map(|i| all.slice(i, 1)).collect();
    let body = ipc_stream(&batches);
    assert!(body.len() < 4 * 1024 * 1024, "{} bytes", body.len());
    let (status, reply) = fx.post("bids", ARROW_STREAM, body).await;
    assert_eq!(
        (status, reply["count"].as_u64()),
        (200, Some(3_000)),
        "{reply}"
    );
    fx.assert_healthy().await;
    assert_eq!(fx.rows("bids").await, 3_000);
}

/// One seeded mutation of `valid`: bytes overwritten, flipped, inserted or cut.
fn mutate(valid: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut body = valid.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = rng.random_range(0..body.len());
        match rng.random_range(0..5) {
            0 => body[at] = rng.random(),
            1 => body[at] ^= 1 << rng.random_range(0..8),
            2 => body[at] = [0x00, 0x7f, 0x80, 0xff][rng.random_range(0..4)],
            3 => body.truncate(at.max(1)),
            _ => {
                let bytes: [u8; 4] = rng.random();
                body.splice(at..at, bytes);
            }
        }
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_ipc_bodies_are_refused_without_internals() {
    let mut fx = Fixture::start(&[]).await;
    let valid = ipc_stream(&[bids(3), bids(2)]);
    let mut rng = StdRng::seed_from_u64(20_261_204);
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..3_000 {
        let body = mutate(&valid, &mut rng);
        let (status, reply) = fx.post("bids", ARROW_STREAM, body).await;
        let text = reply.to_string();
        assert!(
            status == 200 || (400..500).contains(&status),
            "mutation {i}: {status} {text}"
        );
        assert!(!text.contains("panick"), "mutation {i}: {text}");
        if status == 200 {
            accepted += 1
        } else {
            refused += 1
        }
    }
    assert!(refused > 1_000, "{accepted} accepted, {refused} refused");
    fx.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_integers_are_refused_naming_the_field() {
    let mut fx = Fixture::start(&[]).await;
    for (price, expected) in [
        ("1.5", "line 2: field \"price\": 1.5 is not a BIGINT"),
        (
            "\"12\"",
            "line 2: field \"price\": the string \"12\" is not a BIGINT",
        ),
        ("-9223372036854775809", "line 2: field \"price\": "),
        ("1e3", "line 2: field \"price\": 1000 is not a BIGINT"),
    ] {
        let body = format!("{}{}", bid_line("1", "1"), bid_line(price, "1"));
        let (status, reply) = fx.post("bids", NDJSON, body).await;
        assert_eq!(status, 400, "{price}: {reply}");
        assert!(message(&reply).starts_with(expected), "{price}: {reply}");
    }
    let exact = bid_line("-9223372036854775808", "1");
    let (status, reply) = fx.post("bids", NDJSON, exact).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(fx.rows("bids").await, 1);
    fx.assert_healthy().await;
}

/// A topic declared by `CREATE SOURCE`, whose columns may be null but whose event time
/// every job reading it needs.
async fn declare_source(fx: &Fixture) {
    let sql = common::http::sql_file("bids_source.sql", &[("partitions", "1")])
        .replace("topic = 'bids'", "topic = 'declared'")
        .replace("CREATE SOURCE bids", "CREATE SOURCE declared_bids");
    let (status, reply) = common::http::post_sql(&fx.client, &fx.url, &sql).await;
    assert_eq!(status, 200, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_a_usable_event_time_are_refused() {
    let mut fx = Fixture::start(&[]).await;
    declare_source(&fx).await;
    let many_empty = "{}\n".repeat(100_000);
    let cases = [
        (many_empty, "line 1: field \"date_time\" is missing and must not be null".to_owned()),
        (
            format!("{}{}", bid_line("1", "1"), bid_line("1", "null")),
            "line 2: field \"date_time\" is null".to_owned(),
        ),
        (
            format!("{}\n{}", bid_line("1", "1"), bid_line("1", "9223372036854775807")),
            "line 3: field \"date_time\": timestamp 9223372036854775807 is outside the years 0001 to 9999"
                .to_owned(),
        ),
    ];
    for (body, expected) in cases {
        let (status, reply) = fx.post("declared", NDJSON, body).await;
        assert_eq!(status, 400, "{reply}");
        assert!(message(&reply).starts_with(&expected), "{reply}");
    }
    // The same in Arrow IPC: a null event time, and one out of range.
    let schema = Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
    ]));
    for (times, expected) in [
        (
            vec![Some(1), None],
            "field \"date_time\" holds 1 nulls but must not be null",
        ),
        (
            vec![Some(1), Some(i64::MIN)],
            "record 2: field \"date_time\": timestamp -9223372036854775808 is outside",
        ),
    ] {
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(TimestampMillisecondArray::from(times)),
            ],
        )
        .unwrap();
        let (status, reply) = fx
            .post("declared", ARROW_STREAM, ipc_stream(&[batch]))
            .await;
        assert_eq!(status, 400, "{reply}");
        assert!(message(&reply).starts_with(expected), "{reply}");
    }
    // Columns other than the event time may still be left out.
    let (status, reply) = fx.post("declared", NDJSON, "{\"date_time\": 5}\n").await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(fx.rows("declared").await, 1);
    // A topic with non-nullable columns refuses a record missing any of them.
    let (status, reply) = fx.post("bids", NDJSON, "{}\n").await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        message(&reply).starts_with("line 1: field \"auction\" is missing"),
        "{reply}"
    );
    fx.assert_healthy().await;
}

/// Sends `head` on a raw connection and returns the reply's status line and body, or
/// `None` if nothing came back within `wait`.
async fn raw(address: &str, head: &str, wait: Duration) -> Option<String> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&chunk[..n]),
            }
            if reply.windows(4).any(|w| w == b"\r\n\r\n") && reply.ends_with(b"}") {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(wait, read).await;
    (!reply.is_empty()).then(|| String::from_utf8_lossy(&reply).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_content_length_is_refused_before_the_body_is_read() {
    let mut fx = Fixture::start(&["--max-body-bytes", "1000"]).await;
    let head = format!(
        "POST /v1/topics/bids/records HTTP/1.1\r\nHost: {}\r\nContent-Type: {NDJSON}\r\n\
         Content-Length: 1000000000\r\n\r\n",
        fx.address
    );
    let reply = raw(&fx.address, &head, Duration::from_secs(5))
        .await
        .expect("a reply without the body being sent");
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(
        reply.contains("larger than the limit of 1000 bytes"),
        "{reply}"
    );
    fx.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_time_out_and_cannot_exhaust_connections() {
    let mut fx = Fixture::start(&[
        "--max-connections",
        "100",
        "--header-read-timeout",
        "2s",
        "--body-read-timeout",
        "2s",
    ])
    .await;
    // 300 connections that send half a request head and then nothing.
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(&fx.address).await.unwrap();
        let _ = stream
            .write_all(b"POST /v1/topics/bids/records HTTP/1.1\r\nHost: x\r\n")
            .await;
        stalled.push(stream);
    }
    // Once the header timeout closes them, a fresh connection is served.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let reply = raw(
            &fx.address,
            &format!(
                "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                fx.address
            ),
            Duration::from_secs(5),
        )
        .await;
        if reply
            .as_deref()
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/healthz never answered: {reply:?}"
        );
    }
    drop(stalled);
    // A body that stops halfway is answered (or dropped) once the body timeout passes.
    let head = format!(
        "POST /v1/topics/bids/records HTTP/1.1\r\nHost: {}\r\nContent-Type: {NDJSON}\r\n\
         Content-Length: 100\r\n\r\n{{\"auction\":",
        fx.address
    );
    let started = tokio::time::Instant::now();
    let reply = raw(&fx.address, &head, Duration::from_secs(15)).await;
    assert!(started.elapsed() < Duration::from_secs(15), "{reply:?}");
    if let Some(reply) = reply {
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    }
    fx.assert_healthy().await;
    // SIGTERM still stops the server gracefully, with an idle connection open.
    let _idle = TcpStream::connect(&fx.address).await.unwrap();
    signal(&fx.server, "TERM");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = fx.server.try_wait().unwrap() {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
}
