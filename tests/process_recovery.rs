//! Exactly once across real crashes: `runnel serve` processes are killed with SIGKILL
//! at seeded random moments and restarted on the same data directory; another is frozen
//! with SIGSTOP while a second instance takes over, then thawed. Every time, the output
//! topic in the end equals the batch oracle over the same bids: no row lost, none
//! duplicated.
//!
//! The job is durable: its definition is stored under the data root before the first
//! process starts, and each process resumes it by itself from the last checkpoint.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel::data::DataRoot;
use runnel::hot_items::HotItems;
use runnel::jobs::{JobCatalog, JobDefinition, LogInput};
use runnel_connectors::log::EmbeddedLog;
use runnel_connectors::nexmark::{NexmarkOptions, NexmarkTable, generate_partition};
use runnel_runtime::checkpoint::{ObjectStoreCheckpoints, read_chain};
use tokio::task::JoinHandle;

use common::{oracle_rows, streaming_rows};

const JOB: &str = "hot_items";
const OUTPUT: &str = "hot_items_out";
const TOP: usize = 3;

/// The bids of a run, per partition, and the job defined over exactly them. The bids
/// are not in the log yet: [`produce`] appends them while the servers run, so a job can
/// never finish before the last kill, and every kill lands mid-stream.
async fn prepare(dir: &Path, events: u64) -> Vec<Vec<RecordBatch>> {
    let options = NexmarkOptions {
        seed: 17,
        events_per_second: 2_000,
        max_events: Some(events),
        batch_size: 1_000,
        partitions: 4,
        out_of_order_group_size: 200,
        ..NexmarkOptions::default()
    };
    let partitions: Vec<Vec<RecordBatch>> = (0..options.partitions)
        .map(|p| generate_partition(&options, NexmarkTable::Bid, p).unwrap())
        .collect();
    let log = EmbeddedLog::local(dir).unwrap();
    log.create_topic("bids", partitions.len() as u32, NexmarkTable::Bid.schema())
        .await
        .unwrap();
    let until = partitions
        .iter()
        .map(|batches| batches.iter().map(|b| b.num_rows() as u64).sum())
        .collect();
    let shape = HotItems {
        top: TOP,
        max_out_of_orderness: Duration::from_secs(2),
        parallelism: 2,
        ..HotItems::default()
    };
    let input = LogInput {
        topic: "bids".into(),
        until: Some(until),
    };
    let definition = JobDefinition::hot_items(JOB, input, OUTPUT, &shape);
    catalog(dir).create(&definition).await.unwrap();
    partitions
}

/// Appends the bids to the log, spread evenly over `duration`.
fn produce(dir: &Path, partitions: Vec<Vec<RecordBatch>>, duration: Duration) -> JoinHandle<()> {
    let log = EmbeddedLog::local(dir).unwrap();
    tokio::spawn(async move {
        let topic = log.topic("bids").await.unwrap();
        let appends: Vec<(u32, RecordBatch)> = (0..partitions.iter().map(Vec::len).max().unwrap())
            .flat_map(|i| {
                partitions
                    .iter()
                    .enumerate()
                    .filter_map(move |(p, batches)| Some((p as u32, batches.get(i)?.clone())))
            })
            .collect();
        let pause = duration / appends.len() as u32;
        for (partition, batch) in appends {
            topic.append(partition, &[batch], None).await.unwrap();
            tokio::time::sleep(pause).await;
        }
    })
}

fn catalog(dir: &Path) -> JobCatalog {
    let data = DataRoot::local(dir).unwrap();
    JobCatalog::new(data.store, data.root)
}

/// A `runnel serve` process on `dir`; its stderr goes to `log`.
fn spawn_server(dir: &Path, interval: &str, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--checkpoint-interval",
            interval,
        ])
        .arg("--data")
        .arg(dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Reads the server's stdout up to its `listening on` line; returns the base URL.
fn wait_listening(child: &mut Child) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            return url.to_string();
        }
    }
    panic!("the server exited before it listened");
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

fn finished(dir: &Path) -> bool {
    dir.join("jobs").join(JOB).join("finished.json").exists()
}

/// Sequence number of the newest manifest of the job's chain (0: none). Older ones
/// are garbage-collected, so this counts every claim and checkpoint ever written.
fn newest_manifest(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir.join("jobs").join(JOB).join("manifests")) else {
        return 0;
    };
    entries
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts the output topic holds exactly the oracle's rows.
async fn assert_output_equals_oracle(dir: &Path, partitions: Vec<Vec<RecordBatch>>) {
    let bids = partitions.into_iter().flatten().collect();
    let log = EmbeddedLog::local(dir).unwrap();
    let out = log.topic(OUTPUT).await.unwrap();
    let end = out.end_offset(0).await.unwrap();
    let written = out.read(0, 0, end as usize).await.unwrap();
    let got = streaming_rows(&written.batches);
    let expected = oracle_rows(bids, TOP).await;
    assert!(expected.len() > 100, "{} oracle rows", expected.len());
    assert_eq!(got.len(), expected.len(), "rows lost or duplicated");
    assert_eq!(got, expected);
}

fn stderr_logs(dir: &Path) -> PathBuf {
    let logs = dir.join("process-logs");
    std::fs::create_dir_all(&logs).unwrap();
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9s_at_random_moments_lose_and_repeat_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let bids = prepare(&dir, 400_000).await;
    let producer = produce(&dir, bids.clone(), Duration::from_secs(8));
    let logs = stderr_logs(temp.path());
    let mut rng = StdRng::seed_from_u64(2026);
    let kills = 20;
    for run in 0..kills {
        let mut server = spawn_server(&dir, "50ms", &logs.join(format!("run-{run}.log")));
        let delay = rng.random_range(50..600);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        assert!(
            !finished(&dir),
            "the job finished before kill {run}: the input is too small to kill it mid-run"
        );
        server.kill().unwrap();
        server.wait().unwrap();
    }
    let checkpointed = newest_manifest(&dir);
    producer.await.unwrap();
    let mut last = spawn_server(&dir, "50ms", &logs.join("last.log"));
    wait_until("the job finished", Duration::from_secs(300), || {
        finished(&dir)
    })
    .await;
    last.kill().unwrap();
    last.wait().unwrap();
    // Every run claimed the chain, and between the kills some checkpoints completed.
    assert!(
        checkpointed > kills as u64 + 5,
        "{checkpointed} manifests after {kills} kills"
    );
    assert_output_equals_oracle(&dir, bids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_instance_is_fenced_when_it_thaws_and_writes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let bids = prepare(&dir, 150_000).await;
    let producer = produce(&dir, bids.clone(), Duration::from_secs(3));
    let logs = stderr_logs(temp.path());

    let mut old = spawn_server(&dir, "50ms", &logs.join("old.log"));
    let old_url = wait_listening(&mut old);
    wait_until(
        "the old instance checkpointed",
        Duration::from_secs(60),
        || newest_manifest(&dir) >= 3,
    )
    .await;
    signal(&old, "STOP");
    assert!(
        !finished(&dir),
        "the job finished before the old instance was frozen"
    );
    assert!(
        !producer.is_finished(),
        "all bids were produced before the freeze"
    );

    let mut new = spawn_server(&dir, "50ms", &logs.join("new.log"));
    wait_until(
        "the new instance finished the job",
        Duration::from_secs(300),
        || finished(&dir),
    )
    .await;
    producer.await.unwrap();
    signal(&old, "CONT");

    // The thawed instance meets the newer generation at its next checkpoint and stops
    // the job; the server itself keeps running and says why.
    let client = reqwest::Client::new();
    let url = format!("{old_url}/v1/jobs/{JOB}");
    let start = Instant::now();
    let status = loop {
        let status: serde_json::Value =
            client.get(&url).send().await.unwrap().json().await.unwrap();
        if status["state"] != "running" || start.elapsed() > Duration::from_secs(60) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["state"], "fenced", "{status:#}");
    assert!(
        status["error"].as_str().unwrap().contains("newer instance"),
        "{status:#}"
    );
    for child in [&mut old, &mut new] {
        child.kill().unwrap();
        child.wait().unwrap();
    }

    // The chain ends with the new instance's manifests: the thawed one added none.
    let data = DataRoot::local(&dir).unwrap();
    let checkpoints = ObjectStoreCheckpoints::new(data.store, data.root, JOB).unwrap();
    let chain = read_chain(&checkpoints).await.unwrap();
    let generations: Vec<u64> = chain
        .into_iter()
        .map(|(_, m)| m.unwrap().generation)
        .collect();
    let newest = *generations.iter().max().unwrap();
    assert_eq!(generations.last(), Some(&newest), "{generations:?}");
    assert!(newest >= 2, "{generations:?}");
    assert_output_equals_oracle(&dir, bids).await;
}
