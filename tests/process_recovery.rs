//! Exactly once across real crashes: `runnel serve` processes are killed with SIGKILL
//! at seeded random moments and restarted on the same data directory; another is frozen
//! with SIGSTOP while a second instance takes over, then thawed. Every time, the output
//! topic in the end equals the batch oracle over the same bids: no row lost, none
//! duplicated.
//!
//! The job is durable: its definition is stored under the data root before the first
//! process starts, and each process resumes it by itself from the last checkpoint.

// Tests wait on and time real processes with the machine's clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel::data::DataRoot;
use runnel_runtime::checkpoint::{ObjectStoreCheckpoints, read_chain};

use common::durable::*;
use common::http::get_json;

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
        let status: serde_json::Value = get_json(&client, &url).await;
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
    let data = DataRoot::local(&dir, runnel::runtime::Ambient::system()).unwrap();
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
