//! Exactly once across a crash at each named step of the checkpoint protocol.
//!
//! The hot-items job runs over bids in the embedded log, with every storage call of the
//! job (log and checkpoints) going through a `FaultyStore` armed with one crash point.
//! When the point fires, the call it names has reached storage and everything after it
//! fails, as if the process had died right there: after a state file was uploaded,
//! after the sink's staged output was uploaded (its phase 1), after a manifest was
//! created (so the sinks have not committed it yet), after the sink appended to the
//! output topic (its phase 2), and after the first delete of a garbage-collection pass
//! (so the pass is partial). A new instance then starts over the same storage through
//! an unarmed wrapper, runs to the end, and the output topic must equal the batch oracle:
//! no row lost, none duplicated.

// Tests wait on and time real processes with the machine's clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;
use runnel::hot_items::HotItems;
use runnel_connectors::log::{EmbeddedLog, LogSink, LogSource, Topic};
use runnel_connectors::nexmark::NexmarkOptions;
use runnel_runtime::checkpoint::layout::parse_state_path;
use runnel_runtime::checkpoint::{ObjectStoreCheckpoints, read_chain};
use runnel_runtime::storage::{CrashPoint, CrashReport, FaultConfig, FaultyStore, OpKind};
use runnel_runtime::{CheckpointConfig, Dataflow, JobConfig, JobGraph, JobHandle, spawn};

use common::{append_bids, oracle_rows, streaming_rows};

const TOP: usize = 3;
const JOB: &str = "hot_items";
const BIDS: &str = "bids";
const OUTPUT: &str = "ranked";
const SINK_NODE: &str = "ranked_sink";
/// Rows per appended segment of the bids.
const BATCH_ROWS: usize = 500;
/// Only the newest checkpoint is kept, so every checkpoint after the second one makes
/// garbage collection delete a manifest and the state files only it referenced.
const RETAIN: usize = 1;
/// How long a crashed instance may take to notice that its storage is gone.
const FAIL_WITHIN: Duration = Duration::from_secs(10);

fn root() -> Path {
    Path::from("data")
}

fn graph(bids: &Topic, out: &Topic) -> runnel_runtime::Result<JobGraph> {
    let flow = Dataflow::new(JOB).with_parallelism(2);
    HotItems {
        top: TOP,
        max_out_of_orderness: Duration::from_secs(2),
        ..HotItems::default()
    }
    .stream(&flow, Arc::new(bids_source(bids)))?
    .sink(
        SINK_NODE,
        Arc::new(LogSink::new(out.clone(), format!("{JOB}.{SINK_NODE}"))?),
    )?;
    flow.build()
}

/// One segment per read, so that slow reads slow the job down (see [`slow_reads`]).
fn bids_source(bids: &Topic) -> LogSource {
    LogSource::new(bids.clone())
        .bounded()
        .max_batch_rows(BATCH_ROWS)
}

/// Writes the bids and creates the output topic, bypassing every wrapper.
async fn prepare(inner: &Arc<dyn ObjectStore>) -> Vec<RecordBatch> {
    let log = EmbeddedLog::new(inner.clone(), root());
    let options = NexmarkOptions {
        seed: 21,
        events_per_second: 2_000,
        max_events: Some(60_000),
        batch_size: BATCH_ROWS,
        partitions: 4,
        out_of_order_group_size: 200,
        ..NexmarkOptions::default()
    };
    let (bids, all) = append_bids(&log, &options).await;
    let schema = HotItems::default()
        .stream(
            &Dataflow::new("schema"),
            Arc::new(LogSource::new(bids).bounded()),
        )
        .unwrap()
        .schema()
        .clone();
    log.create_topic(OUTPUT, 1, schema).await.unwrap();
    all
}

/// Starts one instance of the job over `store`, as a new process would: its own log
/// handle, its own view of the checkpoint chain.
async fn start(store: Arc<dyn ObjectStore>) -> JobHandle {
    let log = EmbeddedLog::new(store.clone(), root());
    let bids = log.topic(BIDS).await.unwrap();
    let out = log.topic(OUTPUT).await.unwrap();
    let checkpoints = Arc::new(ObjectStoreCheckpoints::new(store, root(), JOB).unwrap());
    let config = JobConfig {
        checkpoints: Some(CheckpointConfig {
            retain: RETAIN,
            ..CheckpointConfig::new(checkpoints, Duration::from_millis(20))
        }),
        ..JobConfig::default()
    };
    spawn(graph(&bids, &out).unwrap(), config).await.unwrap()
}

/// Reads about as slow as an object store's. In memory the whole job takes some five
/// checkpoint intervals, too few for the later crash points; with one segment per read
/// delayed 4-8 ms it spans twenty or so, and the latest point fires halfway through.
fn slow_reads() -> FaultConfig {
    let (min, max) = (Duration::from_millis(4), Duration::from_millis(8));
    FaultConfig::none()
        .with_latency(1.0, min, max)
        .with_ops(OpKind::Get)
}

/// Runs the job on a store armed with `point` until the point fires and the instance
/// has stopped; returns the crash.
async fn run_until_crash(inner: &Arc<dyn ObjectStore>, point: &CrashPoint) -> CrashReport {
    let faulty = Arc::new(FaultyStore::new(inner.clone(), slow_reads(), 0).unwrap());
    faulty.arm_crash(point.clone());
    let job = start(faulty.clone()).await;
    while faulty.crash().is_none() && !job.is_finished() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let Some(crash) = faulty.crash() else {
        let outcome = job.join().await;
        panic!("the job ended ({outcome:?}) before reaching the crash point {point}");
    };
    // Without its storage the instance fails by itself; a hung one is killed.
    let deadline = Instant::now() + FAIL_WITHIN;
    while !job.is_finished() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let failed_by_itself = job.is_finished();
    job.abort();
    let outcome = job.join().await;
    let err = outcome.expect_err("an instance whose storage crashed cannot succeed");
    if failed_by_itself {
        let text = err.to_string();
        assert!(
            text.contains("the store has crashed") || text.contains("then the store crashed"),
            "{point}: the instance failed for another reason: {text}"
        );
    }
    crash
}

/// Starts a new instance through an unarmed wrapper, runs it to the end and checks the
/// output topic against the oracle.
async fn recover_and_check(inner: &Arc<dyn ObjectStore>, all: Vec<RecordBatch>, point: &str) {
    let healthy = Arc::new(FaultyStore::new(inner.clone(), FaultConfig::none(), 0).unwrap());
    start(healthy.clone()).await.join().await.unwrap();
    assert_eq!(healthy.stats().failures(), 0);

    let out = EmbeddedLog::new(inner.clone(), root())
        .topic(OUTPUT)
        .await
        .unwrap();
    let end = out.end_offset(0).await.unwrap();
    let written = out.read(0, 0, end as usize).await.unwrap();
    let got = streaming_rows(&written.batches);
    let expected = oracle_rows(all, TOP).await;
    assert!(expected.len() > 40, "{} oracle rows", expected.len());
    assert_eq!(
        got.len(),
        expected.len(),
        "{point}: rows lost or duplicated"
    );
    assert_eq!(got, expected, "{point}");

    let chain = read_chain(&checkpoints(inner)).await.unwrap();
    let (oldest, newest) = (chain[0].0, chain.last().unwrap().0);
    // The recovered instance collected its garbage: only the newest checkpoints remain.
    let kept: HashSet<(u64, u64)> = chain
        .iter()
        .filter_map(|(_, m)| m.as_ref().unwrap().checkpoint.as_ref())
        .map(|cp| (cp.epoch, cp.generation))
        .collect();
    assert_eq!(kept.len(), RETAIN, "{point}: manifests {oldest}..={newest}");
}

fn checkpoints(inner: &Arc<dyn ObjectStore>) -> ObjectStoreCheckpoints {
    ObjectStoreCheckpoints::new(inner.clone(), root(), JOB).unwrap()
}

async fn exists(inner: &Arc<dyn ObjectStore>, location: &str) -> bool {
    use object_store::ObjectStoreExt;
    match inner.head(&Path::from(location)).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(e) => panic!("head {location}: {e}"),
    }
}

/// State files that no manifest of the chain references and that are older than every
/// checkpoint the chain names: what an interrupted collection leaves behind.
async fn garbage(inner: &Arc<dyn ObjectStore>) -> HashSet<String> {
    use runnel_runtime::checkpoint::CheckpointStore;
    let store = checkpoints(inner);
    let manifests: Vec<_> = read_chain(&store)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, m)| m.unwrap())
        .collect();
    let named = manifests.iter().filter_map(|m| m.checkpoint.as_ref());
    let Some(oldest_named) = named.clone().map(|cp| cp.epoch).min() else {
        return HashSet::new();
    };
    let referenced: HashSet<&str> = named
        .flat_map(|cp| cp.files().map(|f| f.path.as_str()))
        .collect();
    store
        .list_state_files()
        .await
        .unwrap()
        .into_iter()
        .filter(|f| !referenced.contains(f.as_str()))
        .filter(|f| parse_state_path(f).is_some_and(|key| key.epoch < oldest_named))
        .collect()
}

/// Crashes after the call `point` names (at each of `occurrences`), recovers, checks.
async fn crash_and_recover(op: OpKind, path: &str, occurrences: [u64; 2]) {
    for occurrence in occurrences {
        let point = CrashPoint::new(op, path, occurrence).unwrap();
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let all = prepare(&inner).await;
        let crash = run_until_crash(&inner, &point).await;
        // The crashing call reached storage.
        let landed = exists(&inner, &crash.location).await;
        assert_eq!(landed, op == OpKind::Put, "{crash}");
        let left_behind = garbage(&inner).await;
        if op == OpKind::Delete {
            assert!(
                !left_behind.is_empty(),
                "{crash}: the collection was not cut short"
            );
        }
        recover_and_check(&inner, all, &point.to_string()).await;
        // The next collection finished what the interrupted one began.
        for file in &left_behind {
            let path = format!("{}/{file}", checkpoints(&inner).job_dir());
            assert!(
                !exists(&inner, &path).await,
                "{crash}: {file} was never collected"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_state_file_upload_recovers_exactly() {
    crash_and_recover(OpKind::Put, "/checkpoints/", [2, 5]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_sink_staged_its_output_recovers_exactly() {
    let staged = format!("/{SINK_NODE}/");
    crash_and_recover(OpKind::Put, &staged, [2, 5]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_manifest_create_recovers_exactly() {
    crash_and_recover(OpKind::Put, "/manifests/", [2, 5]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_sink_appended_to_its_topic_recovers_exactly() {
    let appended = format!("/log/{OUTPUT}/");
    crash_and_recover(OpKind::Put, &appended, [2, 5]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_garbage_collection_recovers_exactly() {
    // The first collection deletes manifests 0 and 1, every later one a single manifest
    // before its state files: deletes 3 and 6 are the first of the 2nd and 5th passes.
    crash_and_recover(OpKind::Delete, "/manifests/", [3, 6]).await;
}
