//! A restored source subtask starts each partition's watermark where the checkpoint left
//! it: a partition with nothing left to read must not pull the watermark back to the
//! start of time (and, without an idle timeout, hold it there for ever).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;

use super::tests::{Collected, VecSink, batch, schema};
use crate::checkpoint::ObjectStoreCheckpoints;
use crate::exec::CheckpointConfig;
use crate::*;

/// Partitions that can grow between runs; a position is the index of the next batch.
#[derive(Debug, Clone, Default)]
struct GrowingSource(Arc<Mutex<Vec<Vec<RecordBatch>>>>);

struct GrowingReader {
    source: GrowingSource,
    next: Vec<(u32, u64)>,
    turn: usize,
}

#[async_trait]
impl Source for GrowingSource {
    fn schema(&self) -> SchemaRef {
        schema()
    }
    fn partitions(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    async fn open_at(
        &self,
        partitions: &[u32],
        positions: &HashMap<u32, u64>,
    ) -> Result<Box<dyn SourceReader>> {
        let next = partitions
            .iter()
            .map(|p| (*p, positions.get(p).copied().unwrap_or(0)))
            .collect();
        Ok(Box::new(GrowingReader {
            source: self.clone(),
            next,
            turn: 0,
        }))
    }
}

#[async_trait]
impl SourceReader for GrowingReader {
    async fn next(&mut self) -> Result<SourcePoll> {
        for _ in 0..self.next.len() {
            self.turn = (self.turn + 1) % self.next.len();
            let (partition, offset) = &mut self.next[self.turn];
            let found = self.source.0.lock().unwrap()[*partition as usize]
                .get(*offset as usize)
                .cloned();
            if let Some(batch) = found {
                *offset += 1;
                let partition = *partition;
                return Ok(SourcePoll::Batch { partition, batch });
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(SourcePoll::Idle)
    }
    fn positions(&self) -> Vec<(u32, u64)> {
        self.next.clone()
    }
}

/// Runs the job until its sink has seen `rows` rows, then stops it (which takes a final
/// checkpoint); returns the sink's watermarks.
async fn run_until(source: &GrowingSource, config: &JobConfig, rows: u64) -> Vec<Millis> {
    let collected = Collected::default();
    let flow = Dataflow::new("w").with_parallelism(1);
    // No idle timeout: an exhausted partition holds the watermark back for ever.
    let strategy = WatermarkStrategy::bounded("ts", Duration::ZERO);
    flow.source("src", Arc::new(source.clone()), strategy)
        .unwrap()
        .sink("out", Arc::new(VecSink(collected.clone())))
        .unwrap();
    let job = spawn(flow.build().unwrap(), config.clone()).await.unwrap();
    let watermark_reached = |want: Millis| collected.watermarks(0).iter().any(|&w| w >= want);
    for _ in 0..400 {
        let read = job.metrics().node("out").unwrap().rows_in();
        if read >= rows && watermark_reached(10_000) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    job.stop();
    job.join().await.unwrap();
    collected.watermarks(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_partition_keeps_its_watermark_across_a_restore() {
    let store = Arc::new(object_store::memory::InMemory::new());
    let root = object_store::path::Path::from("r");
    let checkpoints = Arc::new(ObjectStoreCheckpoints::new(store, root, "w").unwrap());
    let config = JobConfig {
        checkpoints: Some(CheckpointConfig::new(checkpoints, Duration::from_secs(60))),
        ..JobConfig::default()
    };
    // Partition 0 reaches 10 s, partition 1 only 1 s: the watermark stops at 1 s.
    let source = GrowingSource::default();
    *source.0.lock().unwrap() = vec![
        vec![batch(&[1], &[1_000]), batch(&[2], &[10_000])],
        vec![batch(&[3], &[1_000])],
    ];
    let first = run_until(&source, &config, 3).await;
    assert_eq!(first.iter().max(), Some(&1_000), "{first:?}");

    // After the restore only partition 1 gets more input; partition 0 has nothing left.
    source.0.lock().unwrap()[1].push(batch(&[4], &[20_000]));
    let second = run_until(&source, &config, 1).await;
    assert_eq!(second.iter().max(), Some(&10_000), "{second:?}");
}
