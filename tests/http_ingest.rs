//! `POST /v1/topics/{topic}/records` against a real `runnel serve` process: JSON lines
//! and Arrow IPC appends land in the log exactly as sent, producer retries do not append
//! twice, and every kind of bad request gets a 4xx with a JSON error while the log and
//! the rest of the data directory stay untouched.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Schema, TimestampMillisecondType};
use arrow::ipc::writer::{FileWriter, StreamWriter};
use runnel_connectors::log::EmbeddedLog;
use runnel_connectors::nexmark::{NexmarkOptions, NexmarkTable, generate_partition};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOPIC: &str = "bids";
const PARTITIONS: u32 = 4;
const NDJSON: &str = "application/x-ndjson";
const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// A `runnel serve` process, killed when dropped.
struct Server {
    child: Child,
    url: String,
    /// `host:port`, for requests that need a raw socket.
    address: String,
}

impl Server {
    fn start(dir: &Path, stderr: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_runnel"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg("--data")
            .arg(dir)
            .args(extra)
            .env_remove("RUNNEL_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap();
        let url = wait_listening(&mut child);
        let address = url.strip_prefix("http://").unwrap().to_owned();
        Server {
            child,
            url,
            address,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_listening(child: &mut Child) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    for line in std::io::BufReader::new(stdout).lines() {
        if let Some(url) = line.unwrap().strip_prefix("listening on ") {
            return url.to_owned();
        }
    }
    panic!("the server exited before it listened");
}

/// A data directory holding the empty topic `bids` with the Nexmark bid schema.
async fn data_dir(temp: &Path) -> std::path::PathBuf {
    let dir = temp.join("data");
    let log = EmbeddedLog::local(&dir).unwrap();
    log.create_topic(TOPIC, PARTITIONS, NexmarkTable::Bid.schema())
        .await
        .unwrap();
    dir
}

fn bids(rows: u64) -> RecordBatch {
    let options = NexmarkOptions {
        seed: 7,
        max_events: Some(rows),
        batch_size: 64,
        partitions: 1,
        ..NexmarkOptions::default()
    };
    let batches = generate_partition(&options, NexmarkTable::Bid, 0).unwrap();
    concat_batches(&NexmarkTable::Bid.schema(), &batches).unwrap()
}

/// The rows of `batch` as JSON lines; `date_time` alternates between an RFC 3339 string
/// and integer epoch milliseconds.
fn json_lines(batch: &RecordBatch) -> String {
    let int = |name: &str| {
        batch[name]
            .as_primitive::<arrow::datatypes::Int64Type>()
            .clone()
    };
    let text = |name: &str| batch[name].as_string::<i32>().clone();
    let (auction, bidder, price) = (int("auction"), int("bidder"), int("price"));
    let (channel, url, extra) = (text("channel"), text("url"), text("extra"));
    let times = batch["date_time"].as_primitive::<TimestampMillisecondType>();
    let iso = cast(&batch["date_time"], &DataType::Utf8).unwrap();
    let iso = iso.as_string::<i32>();
    (0..batch.num_rows())
        .map(|i| {
            let date_time = if i % 2 == 0 {
                json!(format!("{}Z", iso.value(i)))
            } else {
                json!(times.value(i))
            };
            let line = json!({
                "auction": auction.value(i), "bidder": bidder.value(i), "price": price.value(i),
                "channel": channel.value(i), "url": url.value(i), "date_time": date_time,
                "extra": extra.value(i),
            });
            format!("{line}\n")
        })
        .collect()
}

fn ipc_stream(batch: &RecordBatch) -> Vec<u8> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema()).unwrap();
    writer.write(batch).unwrap();
    writer.into_inner().unwrap()
}

async fn post(
    client: &reqwest::Client,
    url: String,
    content_type: &str,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = client
        .post(url)
        .header("content-type", content_type)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn partition_rows(log: &EmbeddedLog, partition: u32) -> RecordBatch {
    let topic = log.topic(TOPIC).await.unwrap();
    let end = topic.end_offset(partition).await.unwrap();
    let read = topic.read(partition, 0, end as usize).await.unwrap();
    concat_batches(&topic.schema(), &read.batches).unwrap()
}

async fn end_offsets(log: &EmbeddedLog) -> Vec<u64> {
    let topic = log.topic(TOPIC).await.unwrap();
    let mut ends = Vec::new();
    for p in 0..PARTITIONS {
        ends.push(topic.end_offset(p).await.unwrap());
    }
    ends
}

fn offsets(reply: &Value) -> (u64, u64, u64, u64, bool) {
    let n = |k: &str| {
        reply[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {reply}"))
    };
    let duplicate = reply["duplicate"].as_bool().unwrap();
    (
        n("partition"),
        n("first_offset"),
        n("next_offset"),
        n("count"),
        duplicate,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_and_arrow_ipc_land_in_the_log_once() {
    let temp = tempfile::tempdir().unwrap();
    let dir = data_dir(temp.path()).await;
    let server = Server::start(&dir, &temp.path().join("stderr"), &[]);
    let client = reqwest::Client::new();
    let records = |query: &str| format!("{}/v1/topics/{TOPIC}/records{query}", server.url);
    let all = bids(500);
    assert!(all.num_rows() > 300, "{} bids", all.num_rows());
    let (first, second) = (all.slice(0, 200), all.slice(200, all.num_rows() - 200));

    // JSON lines, then Arrow IPC, to partition 2.
    let (status, reply) = post(
        &client,
        records("?partition=2"),
        NDJSON,
        json_lines(&first),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(offsets(&reply), (2, 0, 200, 200, false));
    let (status, reply) = post(
        &client,
        records("?partition=2"),
        ARROW_STREAM,
        ipc_stream(&second),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let rows = all.num_rows() as u64;
    assert_eq!(offsets(&reply), (2, 200, rows, rows - 200, false));
    let log = EmbeddedLog::local(&dir).unwrap();
    let stored = partition_rows(&log, 2).await;
    assert_eq!(
        stored.columns(),
        all.columns(),
        "partition 2 differs from what was sent"
    );
    assert_eq!(end_offsets(&log).await, vec![0, 0, rows, 0]);

    // A producer's retry is acknowledged with the original offsets, not appended again.
    let batch = all.slice(0, 10);
    let producer = |seq: &'static str| [("x-producer-id", "loader-1"), ("x-producer-seq", seq)];
    let (status, reply) = post(
        &client,
        records(""),
        NDJSON,
        json_lines(&batch),
        &producer("0"),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let (partition, first_offset, next_offset, count, duplicate) = offsets(&reply);
    assert_eq!((count, duplicate), (10, false));
    let (status, retry) = post(
        &client,
        records(""),
        NDJSON,
        json_lines(&batch),
        &producer("0"),
    )
    .await;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(
        offsets(&retry),
        (partition, first_offset, next_offset, 10, true)
    );
    let (status, next) = post(
        &client,
        records(""),
        ARROW_STREAM,
        ipc_stream(&batch),
        &producer("1"),
    )
    .await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(
        offsets(&next),
        (partition, next_offset, next_offset + 10, 10, false)
    );
    let (status, gap) = post(
        &client,
        records(""),
        NDJSON,
        json_lines(&batch),
        &producer("5"),
    )
    .await;
    assert_eq!(status, 409, "{gap}");
    assert_eq!(gap["error"]["code"], "conflict");
    let stored = partition_rows(&log, partition as u32).await;
    let expected_rows = if partition == 2 { rows + 20 } else { 20 };
    assert_eq!(
        stored.num_rows() as u64,
        expected_rows,
        "a retry appended twice"
    );

    // Anonymous appends without `?partition=` go round the partitions.
    let before = end_offsets(&log).await;
    let mut chosen = Vec::new();
    for _ in 0..PARTITIONS {
        let (status, reply) = post(&client, records(""), NDJSON, json_lines(&batch), &[]).await;
        assert_eq!(status, 200, "{reply}");
        chosen.push(offsets(&reply).0);
    }
    chosen.sort_unstable();
    assert_eq!(chosen, (0..u64::from(PARTITIONS)).collect::<Vec<_>>());
    let after = end_offsets(&log).await;
    assert!(
        before.iter().zip(&after).all(|(b, a)| a - b == 10),
        "{before:?} {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3339_offsets_and_integer_millis_mean_the_same_instant() {
    let temp = tempfile::tempdir().unwrap();
    let dir = data_dir(temp.path()).await;
    let server = Server::start(&dir, &temp.path().join("stderr"), &[]);
    let line = |date_time: Value| {
        json!({"auction": 1, "bidder": 2, "price": 3, "channel": "c", "url": "u",
               "date_time": date_time, "extra": ""})
        .to_string()
    };
    let body = [
        line(json!("2024-05-01T12:00:00.250Z")),
        line(json!("2024-05-01T14:00:00.250+02:00")),
        line(json!(1_714_564_800_250_i64)),
    ]
    .join("\n");
    let (status, reply) = post(
        &reqwest::Client::new(),
        format!("{}/v1/topics/{TOPIC}/records?partition=0", server.url),
        "application/x-ndjson; charset=utf-8",
        body,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let stored = partition_rows(&EmbeddedLog::local(&dir).unwrap(), 0).await;
    let times = stored["date_time"]
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .unwrap();
    assert_eq!(times.values(), &[1_714_564_800_250; 3]);
}

/// One bad request and what it must get.
struct Case {
    what: String,
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// Words the error message must contain (the line, the field).
    mentions: Vec<&'static str>,
    /// Sent with chunked transfer encoding: no Content-Length announces its size.
    chunked: bool,
}

const TOKEN: &str = "s3cret";
const MAX_BODY: usize = 64 * 1024;

impl Case {
    /// An authorized JSON-lines append to `bids` that must fail with `status`/`code`.
    fn new(what: impl Into<String>, status: u16, code: &'static str) -> Case {
        Case {
            what: what.into(),
            method: "POST",
            path: format!("/v1/topics/{TOPIC}/records"),
            headers: vec![
                ("authorization".into(), format!("Bearer {TOKEN}")),
                ("content-type".into(), NDJSON.into()),
            ],
            body: good_line().into_bytes(),
            status,
            code,
            mentions: Vec::new(),
            chunked: false,
        }
    }
    fn chunked(mut self) -> Case {
        self.chunked = true;
        self
    }
    fn path(mut self, path: impl Into<String>) -> Case {
        self.path = path.into();
        self
    }
    fn method(mut self, method: &'static str) -> Case {
        self.method = method;
        self
    }
    fn header(mut self, name: &str, value: impl Into<String>) -> Case {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.into(), value.into()));
        self
    }
    fn without(mut self, name: &str) -> Case {
        self.headers.retain(|(n, _)| n != name);
        self
    }
    fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = body.into();
        self
    }
    fn mentions(mut self, words: &[&'static str]) -> Case {
        self.mentions = words.to_vec();
        self
    }
}

fn bid_json() -> Value {
    json!({"auction": 1, "bidder": 2, "price": 3, "channel": "c", "url": "u",
           "date_time": "2024-05-01T12:00:00Z", "extra": ""})
}

fn good_line() -> String {
    format!("{}\n", bid_json())
}

/// `good_line()` with `change` applied, as JSON lines after `lines_before` good lines.
fn bad_line(
    lines_before: usize,
    change: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> String {
    let mut bid = bid_json();
    change(bid.as_object_mut().unwrap());
    format!("{}{bid}\n{}", good_line().repeat(lines_before), good_line())
}

fn ipc_of(fields: Vec<Field>, columns: Vec<ArrayRef>) -> Vec<u8> {
    ipc_stream(&RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap())
}

fn cases() -> Vec<Case> {
    let ok = |what: &str| Case::new(what, 400, "bad_request");
    let ipc = |what: &str, body: Vec<u8>| ok(what).header("content-type", ARROW_STREAM).body(body);
    let good_ipc = ipc_stream(&bids(50));
    let long_name = "a".repeat(201);
    let mut other_schema = bids(10);
    other_schema = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
        vec![other_schema["price"].clone()],
    )
    .unwrap();
    let text_price = {
        let b = bids(10);
        let mut fields: Vec<Field> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut columns = b.columns().to_vec();
        fields[2] = Field::new("price", DataType::Utf8, false);
        columns[2] = cast(&columns[2], &DataType::Utf8).unwrap();
        ipc_of(fields, columns)
    };
    let without_bidder = {
        let b = bids(10);
        let keep = [0, 2, 3, 4, 5, 6];
        let fields = keep.iter().map(|&i| b.schema().field(i).clone()).collect();
        ipc_of(fields, keep.iter().map(|&i| b.column(i).clone()).collect())
    };
    let ipc_file = {
        let b = bids(10);
        let mut writer = FileWriter::try_new(Vec::new(), &b.schema()).unwrap();
        writer.write(&b).unwrap();
        writer.into_inner().unwrap()
    };
    let oversized = good_line().repeat(MAX_BODY / good_line().len() + 10);
    vec![
        // Authentication comes before everything else.
        Case::new("no token", 401, "unauthorized").without("authorization"),
        Case::new("wrong token", 401, "unauthorized").header("authorization", "Bearer s3cre7"),
        Case::new("token prefix", 401, "unauthorized").header("authorization", "Bearer s3cr"),
        Case::new("basic auth", 401, "unauthorized").header("authorization", "Basic czNjcmV0"),
        Case::new("bare token", 401, "unauthorized").header("authorization", TOKEN),
        Case::new("no token, unknown topic", 401, "unauthorized")
            .without("authorization")
            .path("/v1/topics/nope/records"),
        Case::new("no token, jobs", 401, "unauthorized")
            .without("authorization")
            .method("GET")
            .path("/v1/jobs"),
        // Routing.
        Case::new("unknown endpoint", 404, "not_found").path("/v1/nothing"),
        Case::new("GET records", 405, "method_not_allowed").method("GET"),
        Case::new("unknown topic", 404, "not_found")
            .path("/v1/topics/nope/records")
            .mentions(&["nope"]),
        // Topic names, in several encodings.
        ok("traversal").path("/v1/topics/../x/records"),
        ok("deep traversal").path("/v1/topics/../../etc/records"),
        ok("encoded dots").path("/v1/topics/%2e%2e/records"),
        ok("encoded dots and slash").path("/v1/topics/%2E%2E%2Fx/records"),
        ok("dots and encoded slash").path("/v1/topics/..%2fx/records"),
        ok("nested name").path("/v1/topics/a/b/records"),
        ok("encoded slash").path("/v1/topics/a%2Fb/records"),
        ok("backslash").path("/v1/topics/a%5Cb/records"),
        ok("hidden")
            .path("/v1/topics/.hidden/records")
            .mentions(&[".hidden"]),
        ok("single dot").path("/v1/topics/./records"),
        ok("over-long name")
            .path(format!("/v1/topics/{long_name}/records"))
            .mentions(&["201"]),
        ok("space").path("/v1/topics/a%20b/records"),
        ok("non-ASCII").path("/v1/topics/%C3%A9/records"),
        ok("invalid UTF-8").path("/v1/topics/%FF/records"),
        // Query.
        ok("partition not a number").path(format!("/v1/topics/{TOPIC}/records?partition=abc")),
        ok("negative partition").path(format!("/v1/topics/{TOPIC}/records?partition=-1")),
        ok("partition out of range")
            .path(format!("/v1/topics/{TOPIC}/records?partition=4"))
            .mentions(&["partition 4"]),
        ok("partition overflows").path(format!("/v1/topics/{TOPIC}/records?partition=99999999999")),
        ok("misspelt query").path(format!("/v1/topics/{TOPIC}/records?partiton=1")),
        // Content type.
        Case::new("no content type", 415, "unsupported_media_type").without("content-type"),
        Case::new("plain JSON", 415, "unsupported_media_type")
            .header("content-type", "application/json"),
        Case::new("text", 415, "unsupported_media_type").header("content-type", "text/plain"),
        // Producer headers.
        ok("producer id alone").header("x-producer-id", "p"),
        ok("producer seq alone").header("x-producer-seq", "1"),
        ok("seq not a number")
            .header("x-producer-id", "p")
            .header("x-producer-seq", "abc"),
        ok("negative seq")
            .header("x-producer-id", "p")
            .header("x-producer-seq", "-1"),
        ok("seq overflows")
            .header("x-producer-id", "p")
            .header("x-producer-seq", "18446744073709551616"),
        ok("empty producer id")
            .header("x-producer-id", "")
            .header("x-producer-seq", "1"),
        ok("long producer id")
            .header("x-producer-id", "p".repeat(300))
            .header("x-producer-seq", "1"),
        // JSON lines: every error names the line, and the field when there is one.
        ok("malformed line")
            .body(format!("{}{{\"auction\": 1,,}}\n", good_line()))
            .mentions(&["line 2", "malformed"]),
        ok("truncated last record")
            .body(format!("{}{}{{\"auction\": 1", good_line(), good_line()))
            .mentions(&["line 3"]),
        ok("price is text")
            .body(bad_line(0, |b| {
                b.insert("price".into(), json!("cheap"));
            }))
            .mentions(&["line 1", "price"]),
        ok("channel is a number")
            .body(bad_line(2, |b| {
                b.insert("channel".into(), json!(5));
            }))
            .mentions(&["line 3", "channel"]),
        ok("unknown field")
            .body(bad_line(1, |b| {
                b.insert("zip".into(), json!(1));
            }))
            .mentions(&["line 2", "zip"]),
        ok("missing field")
            .body(bad_line(0, |b| {
                b.remove("bidder");
            }))
            .mentions(&["line 1", "bidder", "missing"]),
        ok("null in a non-null field")
            .body(bad_line(0, |b| {
                b.insert("url".into(), Value::Null);
            }))
            .mentions(&["line 1", "url", "null"]),
        ok("unparseable timestamp")
            .body(bad_line(4, |b| {
                b.insert("date_time".into(), json!("yesterday"));
            }))
            .mentions(&["line 5", "date_time"]),
        ok("boolean timestamp")
            .body(bad_line(0, |b| {
                b.insert("date_time".into(), json!(true));
            }))
            .mentions(&["date_time"]),
        ok("array instead of object")
            .body(format!("{}[1, 2]\n", good_line()))
            .mentions(&["line 2", "object"]),
        ok("empty body").body(Vec::new()).mentions(&["no records"]),
        ok("blank lines only")
            .body("\n  \n\n")
            .mentions(&["no records"]),
        ok("invalid UTF-8 in a record")
            .body([b"{\"channel\": \"".as_slice(), &[0xff, 0xfe], b"\"}\n"].concat())
            .mentions(&["line 1"]),
        // Arrow IPC.
        ipc("garbage IPC", b"definitely not an arrow stream".to_vec()).mentions(&["Arrow IPC"]),
        ipc("IPC of another schema", ipc_stream(&other_schema)).mentions(&["unknown field \"x\""]),
        ipc("IPC with a text price", text_price).mentions(&["price"]),
        ipc("IPC without a non-null field", without_bidder).mentions(&["bidder"]),
        ipc("truncated IPC", good_ipc[..good_ipc.len() - 40].to_vec()).mentions(&["Arrow IPC"]),
        ipc("IPC file instead of stream", ipc_file).mentions(&["Arrow IPC"]),
        ipc("JSON sent as IPC", good_line().into_bytes()).mentions(&["Arrow IPC"]),
        ok("IPC sent as JSON").body(good_ipc.clone()),
        // Size.
        Case::new("oversized body", 413, "payload_too_large")
            .body(oversized.clone())
            .mentions(&["65536 bytes"]),
        Case::new("oversized chunked body", 413, "payload_too_large")
            .body(oversized)
            .chunked()
            .mentions(&["65536 bytes"]),
    ]
}

/// Sends a request on a fresh connection, exactly as written (no path normalization).
async fn raw_request(address: &str, case: &Case) -> (u16, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n",
        case.method, case.path
    );
    for (name, value) in &case.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = if case.chunked {
        head.push_str("transfer-encoding: chunked\r\n\r\n");
        let mut chunked = Vec::new();
        for chunk in case.body.chunks(8 * 1024) {
            chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            chunked.extend_from_slice(chunk);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        chunked
    } else {
        head.push_str(&format!("content-length: {}\r\n\r\n", case.body.len()));
        case.body.clone()
    };
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and stop reading) before the whole body is sent.
    let _ = stream.write_all(&body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "{}: no response: {:?}",
                case.what,
                String::from_utf8_lossy(&response)
            )
        });
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response[split + 4..].to_vec();
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "{}: unexpected chunked reply",
        case.what
    );
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_and_change_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = data_dir(temp.path()).await;
    let max_body = MAX_BODY.to_string();
    let server = Server::start(
        &dir,
        &temp.path().join("stderr"),
        &["--token", TOKEN, "--max-body-bytes", &max_body],
    );
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let (status, body) = raw_request(&server.address, case).await;
        let reply: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let code = reply["error"]["code"].as_str();
        let message = reply["error"]["message"].as_str().unwrap_or("");
        let missing: Vec<_> = case
            .mentions
            .iter()
            .filter(|w| !message.contains(*w))
            .collect();
        if status != case.status
            || code != Some(case.code)
            || message.is_empty()
            || !missing.is_empty()
        {
            failures.push(format!(
                "{}: got {status} {}, expected {} {} mentioning {:?}",
                case.what,
                String::from_utf8_lossy(&body),
                case.status,
                case.code,
                case.mentions
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let client = reqwest::Client::new();

    // Nothing was appended, and nothing was created outside the topic.
    let log = EmbeddedLog::local(&dir).unwrap();
    assert_eq!(end_offsets(&log).await, vec![0; PARTITIONS as usize]);
    let names = |path: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&dir.join("log")), vec![TOPIC]);
    assert_eq!(names(temp.path()), vec!["data", "stderr"]);
    assert!(!dir.join("x").exists() && !dir.join("log").join("x").exists());

    // The server still answers, and a good append still works.
    let health = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200, "/healthz needs no token");
    let (status, reply) = post(
        &client,
        format!("{}/v1/topics/{TOPIC}/records?partition=3", server.url),
        NDJSON,
        good_line().repeat(3),
        &[("authorization", &format!("Bearer {TOKEN}"))],
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(offsets(&reply), (3, 0, 3, 3, false));
    let stored = partition_rows(&log, 3).await;
    let prices = stored["price"]
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(prices.values(), &[3, 3, 3]);
    let channels = stored["channel"]
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(channels.value(0), "c");
}
