//! The restart budget counts failures close together: an attempt that checkpointed
//! healthily for a while before failing starts the count afresh.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use super::tests::{Collected, VecSink, batch, schema};
use crate::checkpoint::ObjectStoreCheckpoints;
use crate::exec::{CheckpointConfig, is_restartable};
use crate::*;

/// Emits a row every 2 ms; fails with an outside fault after `fail_after` rows in each
/// of the first `failing` attempts, and ends after that many rows in the next one.
#[derive(Debug)]
struct FlakySource {
    attempts: Arc<AtomicU32>,
    failing: u32,
    fail_after: usize,
}

struct FlakyReader {
    last: bool,
    left: usize,
}

#[async_trait]
impl Source for FlakySource {
    fn schema(&self) -> SchemaRef {
        schema()
    }
    fn partitions(&self) -> usize {
        1
    }
    async fn open_at(
        &self,
        _partitions: &[u32],
        _positions: &HashMap<u32, u64>,
    ) -> Result<Box<dyn SourceReader>> {
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(FlakyReader {
            last: attempt >= self.failing,
            left: self.fail_after,
        }))
    }
}

#[async_trait]
impl SourceReader for FlakyReader {
    async fn next(&mut self) -> Result<SourcePoll> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        match (self.left, self.last) {
            (0, true) => Ok(SourcePoll::End),
            (0, false) => Err(Error::external("test broker", "connection reset")),
            _ => {
                self.left -= 1;
                let batch = batch(&[1], &[self.left as i64]);
                Ok(SourcePoll::Batch {
                    partition: 0,
                    batch,
                })
            }
        }
    }
    fn positions(&self) -> Vec<(u32, u64)> {
        Vec::new()
    }
}

/// Runs the job through five failures with a budget of two restarts; returns the
/// outcome and how many attempts started.
async fn five_failures(fail_after: usize) -> (Result<()>, u32) {
    let store = Arc::new(object_store::memory::InMemory::new());
    let checkpoints = Arc::new(
        ObjectStoreCheckpoints::new(store, object_store::path::Path::from("r"), "f").unwrap(),
    );
    let config = JobConfig {
        checkpoints: Some(CheckpointConfig::new(
            checkpoints,
            Duration::from_millis(10),
        )),
        ..JobConfig::default()
    };
    let policy = RestartPolicy {
        max_restarts: 2,
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        reset_after_checkpoints: 3,
    };
    let attempts = Arc::new(AtomicU32::new(0));
    let build = || {
        let source = FlakySource {
            attempts: attempts.clone(),
            failing: 5,
            fail_after,
        };
        let flow = Dataflow::new("f").with_parallelism(1);
        let strategy = WatermarkStrategy::bounded("ts", Duration::ZERO);
        flow.source("src", Arc::new(source), strategy)?
            .sink("out", Arc::new(VecSink(Collected::default())))?;
        flow.build()
    };
    let outcome = run_with_restarts(build, config, policy, |_| {}).await;
    (outcome, attempts.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_far_apart_do_not_use_up_the_restart_budget() {
    // Each attempt runs ~200 ms, checkpointing every 10 ms, before it fails.
    let (outcome, attempts) = five_failures(100).await;
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(attempts, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_in_a_row_end_the_job_after_the_budget() {
    // Each attempt fails before its first checkpoint.
    let (outcome, attempts) = five_failures(0).await;
    assert!(outcome.is_err_and(|e| is_restartable(&e)));
    assert_eq!(attempts, 3);
}
