//! Nexmark q5 (hot items, the join form of `examples/sql/q5_kafka.sql`) planned from SQL
//! and run with exactly-once checkpoints, reading the same bids once from a Kafka topic
//! and once from the embedded log, so the two sources can be compared in events/s.
//!
//! The broker is tansu (a Kafka-protocol broker on SQLite, installed into a cache
//! directory by `scripts/install-tansu.sh`), started on a free port for the run. The bids
//! (`RUNNEL_BENCH_EVENTS`, default 200,000, in 4 partitions) are generated and written to
//! both places untimed: JSON records with rdkafka's producer, Arrow batches to the log.
//! Each run is a fresh job (its own checkpoint chain on the local file system, a
//! checkpoint every 10 s; parallelism 2); events/s are over the time from its start
//! until every bid is read, and the time until a checkpoint completed after that (when
//! its results would be committed) is printed beside; `RUNNEL_BENCH_RUNS` runs of each
//! (default 2), alternating.
//!
//! Run with `cargo bench -p runnel-benches --bench kafka_q5`.

// A benchmark measures wall-clock time and starts a broker process.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use runnel::sql::{SourceDef, Statement, build, parse_with, plan_sink};
use runnel_connectors::channel::CollectSink;
use runnel_connectors::kafka::{KafkaSource, KafkaSourceOptions};
use runnel_connectors::log::{EmbeddedLog, LogSource};
use runnel_connectors::nexmark::{NexmarkTable, generate_partition};
use runnel_connectors::registry::Registry;
use runnel_runtime::checkpoint::ObjectStoreCheckpoints;
use runnel_runtime::{CheckpointConfig, Dataflow, JobConfig, Source, spawn};

mod bid_options;

use bid_options::bid_options;

const PARTITIONS: usize = 4;
const INTERVAL: Duration = Duration::from_secs(10);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let events = env_or("RUNNEL_BENCH_EVENTS", 200_000);
    let runs = env_or("RUNNEL_BENCH_RUNS", 2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(events, runs));
}

/// A tansu broker on a free port, killed when dropped.
struct Broker {
    child: Child,
    bootstrap: String,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker() -> Broker {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-tansu.sh");
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("install tansu");
    assert!(out.status.success(), "installing tansu failed");
    let tansu = PathBuf::from(String::from_utf8(out.stdout).expect("path").trim());
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let bootstrap = format!("127.0.0.1:{port}");
    let url = format!("tcp://{bootstrap}");
    let child = Command::new(&tansu)
        .current_dir(dir.path())
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    while std::net::TcpStream::connect(&bootstrap).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let created = Command::new(&tansu)
        .args(["topic", "create", "--broker", &url])
        .args(["--partitions", &PARTITIONS.to_string(), "bids"])
        .stdout(Stdio::null())
        .status()
        .expect("create topic");
    assert!(created.success(), "creating the topic failed");
    Broker {
        child,
        bootstrap,
        _dir: dir,
    }
}

/// Writes `batches` of partition `p` as JSON records with the idempotent producer.
async fn produce(bootstrap: &str, p: usize, batches: &[RecordBatch]) {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "50")
        .create()
        .expect("producer");
    let mut deliveries = Vec::new();
    for batch in batches {
        let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
        writer.write(batch).expect("json");
        writer.finish().expect("json");
        for line in writer
            .into_inner()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let record = FutureRecord::<(), [u8]>::to("bids")
                .partition(p as i32)
                .payload(line);
            let sent = producer.send_result(record).map_err(|(e, _)| e);
            deliveries.push(sent.expect("enqueue"));
        }
    }
    for d in deliveries {
        d.await
            .expect("delivery")
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
}

/// The q5 statements, their bids source reading the broker.
fn statements(bootstrap: &str) -> (SourceDef, runnel::sql::SinkDef) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/sql/q5_kafka.sql");
    let text = std::fs::read_to_string(path).expect("q5_kafka.sql");
    // The log offers no Kafka metadata column: both runs plan the same columns.
    let text = text
        .replace("    kafka_offset BIGINT METADATA FROM 'offset',\n", "")
        .replace("localhost:9092", bootstrap);
    let (mut source, mut sink) = (None, None);
    for statement in parse_with(&text, Registry::builtin()).expect("q5 parses") {
        match statement {
            Statement::CreateSource(s) => source = Some(s),
            Statement::CreateSink(s) => sink = Some(s),
            _ => {}
        }
    }
    (source.expect("source"), sink.expect("sink"))
}

async fn run(events: u64, runs: u64) {
    let broker = start_broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn object_store::ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("local store"));
    let log = EmbeddedLog::new(store.clone(), Path::from(""));
    let topic = log
        .create_topic("bids", PARTITIONS as u32, NexmarkTable::Bid.schema())
        .await
        .expect("topic");
    let options = bid_options(events, PARTITIONS);
    let preparing = Instant::now();
    let mut bids = 0u64;
    for p in 0..PARTITIONS {
        let batches = generate_partition(&options, NexmarkTable::Bid, p).expect("generate");
        bids += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        topic
            .append(p as u32, &batches, None)
            .await
            .expect("append");
        produce(&broker.bootstrap, p, &batches).await;
    }
    println!(
        "prepared {bids} bids in {PARTITIONS} partitions (Kafka and the log) in {:.1}s",
        preparing.elapsed().as_secs_f64()
    );
    let (source_def, sink_def) = statements(&broker.bootstrap);
    let kafka_options =
        KafkaSourceOptions::from_options(&source_def.connector.options).expect("options");
    for attempt in 0..runs {
        let kafka = KafkaSource::connect(
            kafka_options.clone(),
            source_def.schema(),
            source_def.metadata(),
        )
        .await
        .expect("kafka source");
        let sources: [(&str, Arc<dyn Source>); 2] = [
            ("kafka", Arc::new(kafka)),
            ("log", Arc::new(LogSource::new(topic.clone()))),
        ];
        for (name, source) in sources {
            let job = format!("q5-{name}-{attempt}");
            let checkpoints = ObjectStoreCheckpoints::new(store.clone(), Path::from(""), &job)
                .expect("checkpoint store");
            let config = JobConfig {
                checkpoints: Some(CheckpointConfig::new(Arc::new(checkpoints), INTERVAL)),
                ..JobConfig::default()
            };
            let rate = run_job(&source_def, &sink_def, source, config, bids).await;
            println!("  q5 from {name}: {rate:.0} events/s");
        }
    }
}

/// Runs q5 once over `source` until every bid is read and a checkpoint completed after
/// that; returns events/s while reading (the wait for the next checkpoint is shown, not
/// counted: at this input size it would be most of a log run).
async fn run_job(
    source_def: &SourceDef,
    sink_def: &runnel::sql::SinkDef,
    source: Arc<dyn Source>,
    config: JobConfig,
    bids: u64,
) -> f64 {
    let plan = plan_sink(sink_def, std::slice::from_ref(source_def)).expect("plan");
    let flow = Dataflow::new(&plan.name).with_parallelism(2);
    let results = CollectSink::new();
    let sources = HashMap::from([(source_def.name.clone(), source)]);
    build(&plan, &flow, &sources)
        .expect("build")
        .sink("results", Arc::new(results.clone()))
        .expect("sink");
    let started = Instant::now();
    let job = spawn(flow.build().expect("graph"), config)
        .await
        .expect("spawn");
    let metrics = job.metrics().clone();
    let read = || metrics.node(&source_def.name).map_or(0, |n| n.rows_in());
    while read() < bids {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let read_at = started.elapsed();
    let before = metrics.checkpoints.last().map_or(0, |c| c.epoch);
    while metrics.checkpoints.last().map_or(0, |c| c.epoch) <= before {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    job.stop();
    job.join().await.expect("job");
    let windows: usize = results.batches().iter().map(|b| b.num_rows()).sum();
    println!(
        "{}: {bids} bids read in {:.2}s, committed at {elapsed:.2}s ({windows} result rows)",
        source_def.name,
        read_at.as_secs_f64()
    );
    bids as f64 / read_at.as_secs_f64()
}
