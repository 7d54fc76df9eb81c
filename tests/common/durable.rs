//! A durable hot-items job run by real `runnel serve` processes: the bids, the job
//! definition over exactly them, the processes, and the check of the output topic
//! against the batch oracle.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use runnel::data::DataRoot;
use runnel::hot_items::HotItems;
use runnel::jobs::{JobCatalog, JobDefinition, LogInput};
use runnel_connectors::log::EmbeddedLog;
use runnel_connectors::nexmark::{NexmarkOptions, NexmarkTable, generate_partition};
use tokio::task::JoinHandle;

use super::{oracle_rows, streaming_rows};

pub const JOB: &str = "hot_items";
pub const OUTPUT: &str = "hot_items_out";
pub const TOP: usize = 3;

/// The bids of a run, per partition, and the job defined over exactly them. The bids
/// are not in the log yet: [`produce`] appends them while the servers run, so a job can
/// never finish before the last kill, and every kill lands mid-stream.
pub async fn prepare(dir: &Path, events: u64) -> Vec<Vec<RecordBatch>> {
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
pub fn produce(
    dir: &Path,
    partitions: Vec<Vec<RecordBatch>>,
    duration: Duration,
) -> JoinHandle<()> {
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

pub fn catalog(dir: &Path) -> JobCatalog {
    let data = DataRoot::local(dir, runnel::runtime::Ambient::system()).unwrap();
    JobCatalog::new(data.store, data.root)
}

/// A `runnel serve` process on `dir`; its stderr goes to `log`.
pub fn spawn_server(dir: &Path, interval: &str, log: &Path) -> Server {
    spawn_server_on(dir, interval, log, "127.0.0.1:0")
}

/// A free local port (bound and released: a restarted server can take it again).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `runnel serve` process on `dir` listening on `listen`.
pub fn spawn_server_on(dir: &Path, interval: &str, log: &Path, listen: &str) -> Server {
    spawn_server_with(dir, interval, log, listen, &[])
}

/// A `runnel serve` process on `dir` listening on `listen`, with more arguments.
pub fn spawn_server_with(
    dir: &Path,
    interval: &str,
    log: &Path,
    listen: &str,
    extra: &[&str],
) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args([
            "serve",
            "--listen",
            listen,
            "--checkpoint-interval",
            interval,
        ])
        .args(extra)
        .arg("--data")
        .arg(dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(log).unwrap())
        .spawn()
        .unwrap();
    Server(child)
}

/// Reads the server's stdout up to its `listening on` line; returns the base URL.
pub fn wait_listening(child: &mut Child) -> String {
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

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

pub fn finished(dir: &Path) -> bool {
    dir.join("jobs").join(JOB).join("finished.json").exists()
}

/// Sequence number of the newest manifest of the job's chain (0: none). Older ones
/// are garbage-collected, so this counts every claim and checkpoint ever written.
pub fn newest_manifest(dir: &Path) -> u64 {
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

pub async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts the output topic holds exactly the oracle's rows.
pub async fn assert_output_equals_oracle(dir: &Path, partitions: Vec<Vec<RecordBatch>>) {
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

pub fn stderr_logs(dir: &Path) -> PathBuf {
    let logs = dir.join("process-logs");
    std::fs::create_dir_all(&logs).unwrap();
    logs
}

/// A server process that is killed when dropped, so a failed test leaves none behind.
pub struct Server(Child);

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// When dropped during a failing test, prints the end of every process log in `dir`
/// (the temporary directory holding them is removed right after).
pub struct LogsOnFailure(pub PathBuf);

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        logs.sort();
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            eprintln!("--- end of {} ---\n{tail}", log.display());
        }
    }
}
