//! Backpressure as the jobs API (the console's graph) and `/metrics` show it: a SQL
//! job whose sink writes its phase-1 state to a slow store. Each checkpoint holds the
//! sink for seconds; meanwhile its input channels fill, and everything upstream waits
//! for room: every channel into the sink and into the nodes before it reads full, and
//! the nodes before the sink spend their time blocked on send.

// Tests wait on and time the server with the machine's clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutOptions, PutPayload, PutResult};
use runnel::connectors::log::{EmbeddedLog, Topic};
use runnel::data::DataRoot;
use runnel::server::{DEFAULT_MAX_BODY_BYTES, ServeOptions, serve};
use runnel_runtime::Ambient;
use runnel_runtime::storage::{Layered, StoreLayer};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use common::durable::free_port;
use common::http::{bids_by_partition, get_json, get_text, post_sql, sql_file};

/// How long the sink's state write of every checkpoint takes.
const SLOW_PUT: Duration = Duration::from_secs(2);

/// Delays the puts of the sink node `output`'s checkpoint state: a sink whose phase 1
/// writes to slow storage.
#[derive(Debug)]
struct SlowSinkState(Arc<dyn ObjectStore>);

#[async_trait]
impl StoreLayer for SlowSinkState {
    fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.0
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        options: PutOptions,
    ) -> object_store::Result<PutResult> {
        let path = location.as_ref();
        if path.contains("/checkpoints/") && path.contains("/output/") {
            tokio::time::sleep(SLOW_PUT).await;
        }
        self.0.put_opts(location, payload, options).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_shows_full_channels_and_blocked_upstream() {
    let (url, log, stop, server) = start_server().await;
    let client = reqwest::Client::new();
    let source = sql_file("bids_source.sql", &[("partitions", "2")]);
    let (status, reply) = post_sql(&client, &url, &source).await;
    assert_eq!(status, 200, "{reply:#}");
    let producer = tokio::spawn(feed_bids(log.topic("bids").await.unwrap()));
    let sink = "CREATE SINK slow WITH (connector = 'log', topic = 'slow_out') AS \
                SELECT auction, price, date_time FROM bids";
    let (status, reply) = post_sql(&client, &url, sink).await;
    assert_eq!(status, 200, "{reply:#}");

    // Every channel from the sources to the sink full, the nodes before the sink blocked
    // on send: in the graph and in /metrics, read together (the sink runs free for a
    // moment after each checkpoint).
    let start = Instant::now();
    let (job, text) = loop {
        let job = get_json(&client, &format!("{url}/v1/jobs/slow")).await;
        let text = get_text(&client, &format!("{url}/metrics")).await;
        if in_graph(&job) && in_metrics(&job, &text) {
            break (job, text);
        }
        assert!(start.elapsed() < Duration::from_secs(90), "{job:#}\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let operators = job["operators"].as_array().unwrap();
    let sink = operators.last().unwrap();
    assert_eq!(sink["role"], "sink", "{job:#}");
    assert!(sink["input_queued"].as_u64() > Some(0), "{job:#}");
    assert!(
        job["edges"].as_array().is_some_and(|e| !e.is_empty()),
        "{job:#}"
    );
    let blocked = metric(
        &text,
        "runnel_operator_send_blocked_seconds_total",
        &operators[0],
    );
    assert!(blocked > Some(1.0), "{blocked:?} s blocked\n{text}");
    producer.abort();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// A server over an in-memory store whose sink state puts are slow, checkpointing every
/// 100 ms: its URL, its log, and what stops it.
async fn start_server() -> (
    String,
    EmbeddedLog,
    oneshot::Sender<()>,
    JoinHandle<anyhow::Result<()>>,
) {
    let store: Arc<dyn ObjectStore> =
        Arc::new(Layered::wrap(SlowSinkState(Arc::new(InMemory::new()))));
    let data = DataRoot::new(store, Path::from("data"), "memory", Ambient::system()).unwrap();
    let log = data.log();
    let port = free_port();
    let options = ServeOptions {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        checkpoint_interval: Duration::from_millis(100),
        shutdown_timeout: Duration::from_secs(10),
        token: None,
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        query: Default::default(),
        results: Default::default(),
        limits: runnel::server::ServerLimits::default(),
        sql_limits: Default::default(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(data, options, async {
        let _ = stopped.await;
    }));
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_for(Duration::from_secs(30), || async {
        client.get(format!("{url}/healthz")).send().await.is_ok()
    })
    .await;
    (url, log, stop, server)
}

/// Feeds the bids topic at a steady 8,000 bids/s (a batch of 200 per partition every
/// 50 ms: 40 batches per partition during each stalled checkpoint, more than the
/// channels hold) for 15 s, longer than the test looks.
async fn feed_bids(bids: Topic) {
    let partitions = bids_by_partition(5, 240_000, 200, 2);
    for round in 0..partitions[0].len() {
        for (p, batches) in partitions.iter().enumerate() {
            let batch = &batches[round..=round];
            bids.append(p as u32, batch, None).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every node but the sources has full inputs; every operator between them and the sink
/// was blocked on send for at least half the rate window. A generator source spends
/// much of its time making rows (more so in a debug build on a busy machine), so of it
/// only a clear share of blocked time is asked.
fn in_graph(job: &Value) -> bool {
    let operators = job["operators"].as_array().cloned().unwrap_or_default();
    operators.len() >= 3
        && operators.iter().all(|op| {
            let fill = op["input_fill"].as_f64();
            backpressured(op, fill, op["backpressure"].as_f64())
        })
}

/// The reading of one node that [`in_graph`] asks for.
fn backpressured(op: &Value, fill: Option<f64>, blocked: Option<f64>) -> bool {
    match op["role"].as_str() {
        Some("source") => blocked >= Some(0.1),
        Some("sink") => fill >= Some(0.99),
        _ => fill >= Some(0.99) && blocked >= Some(0.5),
    }
}

/// The same in the Prometheus text.
fn in_metrics(job: &Value, text: &str) -> bool {
    let operators = job["operators"].as_array().cloned().unwrap_or_default();
    operators.iter().all(|op| {
        let fill = metric(text, "runnel_operator_input_fill_ratio", op);
        let ratio = metric(text, "runnel_operator_backpressure_ratio", op);
        backpressured(op, fill, ratio)
    })
}

/// The sample of `family` for operator `op` of job `slow`.
fn metric(text: &str, family: &str, op: &Value) -> Option<f64> {
    let name = op["name"].as_str()?;
    let prefix = format!("{family}{{job=\"slow\",operator=\"{name}\"}} ");
    let line = text.lines().find(|l| l.starts_with(&prefix))?;
    line[prefix.len()..].parse().ok()
}

async fn wait_for<F: std::future::Future<Output = bool>>(timeout: Duration, check: impl Fn() -> F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "timed out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
