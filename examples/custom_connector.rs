//! A user-defined source and an exactly-once sink.
//!
//! **The source** ([`Counter`]) produces `(partition, n, at)` rows: in every partition the
//! numbers 0, 1, 2, ... with an event time. What makes it a runnel source is that it is
//! *replayable*: a reader reports its position per partition (the next number), the
//! runtime stores positions with every checkpoint, and after a restart it opens readers
//! at those positions. A source that could not seek would lose or repeat rows.
//!
//! **The sink** ([`JsonFiles`]) writes one JSON-lines object per epoch and subtask. It is
//! two-phase, which is what makes it exactly-once:
//! - *phase 1* (`pre_commit`, when the barrier of an epoch arrives) hands the epoch's
//!   rows to the runtime as Arrow batches. The runtime writes them with the checkpoint,
//!   so the sink needs no staging area of its own; nothing is visible yet;
//! - *phase 2* (`commit`, once the checkpoint is durable, and again after a restart)
//!   writes `{epoch:020}-{subtask:05}.jsonl` with a create-only put. A repeat finds the
//!   object there and changes nothing, so a crash between the phases neither loses nor
//!   duplicates a row.
//!
//! Run with `cargo run --example custom_connector`; `cargo test --example
//! custom_connector` stops a job after a checkpoint, resumes it, and checks that the
//! files hold every number exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, Int64Array, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, UInt32Type};
use async_trait::async_trait;
use datafusion::prelude::{col, lit};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use runnel::operators::StreamExt;
use runnel::runtime::{
    Dataflow, Epoch, Error, JobConfig, PreCommit, Result, Sink, SinkWriter, Source, SourcePoll,
    SourceReader, Staged, WatermarkStrategy, spawn,
};

/// `partitions` partitions of the numbers `0..count`, event time `n` seconds.
#[derive(Debug)]
struct Counter {
    partitions: u32,
    count: u64,
}

fn counter_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("partition", DataType::UInt32, false),
        Field::new("n", DataType::Int64, false),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ]))
}

#[async_trait]
impl Source for Counter {
    fn schema(&self) -> SchemaRef {
        counter_schema()
    }

    fn partitions(&self) -> usize {
        self.partitions as usize
    }

    /// Resumes each partition at its checkpointed position, or at 0.
    async fn open_at(
        &self,
        partitions: &[u32],
        positions: &HashMap<u32, u64>,
    ) -> Result<Box<dyn SourceReader>> {
        let next = partitions
            .iter()
            .map(|p| (*p, positions.get(p).copied().unwrap_or(0)))
            .collect();
        Ok(Box::new(CounterReader {
            next,
            count: self.count,
            turn: 0,
        }))
    }
}

struct CounterReader {
    /// Per assigned partition, the next number to produce: the reader's position.
    next: Vec<(u32, u64)>,
    count: u64,
    /// Which partition produces next.
    turn: usize,
}

/// Rows per batch.
const BATCH: u64 = 100;

#[async_trait]
impl SourceReader for CounterReader {
    async fn next(&mut self) -> Result<SourcePoll> {
        let Some(index) = (0..self.next.len())
            .map(|i| (self.turn + i) % self.next.len())
            .find(|&i| self.next[i].1 < self.count)
        else {
            return Ok(SourcePoll::End);
        };
        self.turn = index + 1;
        let (partition, start) = self.next[index];
        let end = (start + BATCH).min(self.count);
        self.next[index].1 = end;
        let n: Vec<i64> = (start as i64..end as i64).collect();
        let at: Vec<i64> = n.iter().map(|n| n * 1_000).collect();
        let rows = n.len();
        let batch = RecordBatch::try_new(
            counter_schema(),
            vec![
                Arc::new(UInt32Array::from(vec![partition; rows])),
                Arc::new(Int64Array::from(n)),
                Arc::new(arrow::array::TimestampMillisecondArray::from(at)),
            ],
        )?;
        Ok(SourcePoll::Batch { partition, batch })
    }

    fn positions(&self) -> Vec<(u32, u64)> {
        self.next.clone()
    }
}

/// JSON-lines files under `dir` of an object store, one per epoch and subtask.
#[derive(Debug)]
struct JsonFiles {
    store: Arc<dyn ObjectStore>,
    dir: Path,
}

#[async_trait]
impl Sink for JsonFiles {
    async fn open(&self, _subtask: usize, _parallelism: usize) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(Buffer(Vec::new())))
    }

    /// Phase 2: safe to repeat, because the put is create-only.
    async fn commit(&self, epoch: Epoch, _generation: u64, staged: Vec<Staged>) -> Result<()> {
        for part in staged {
            if part.pre_commit.batches.is_empty() {
                continue;
            }
            let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
            for batch in &part.pre_commit.batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            let name = format!("{epoch:020}-{:05}.jsonl", part.subtask);
            let path = self.dir.clone().join(name.as_str());
            let create = PutOptions::from(PutMode::Create);
            match self
                .store
                .put_opts(&path, writer.into_inner().into(), create)
                .await
            {
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(Error::external(format!("writing {path}"), e)),
            }
        }
        Ok(())
    }
}

/// A sink subtask's rows since the last barrier.
struct Buffer(Vec<RecordBatch>);

#[async_trait]
impl SinkWriter for Buffer {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.0.push(batch);
        Ok(())
    }

    /// Phase 1: the rows go to the runtime, which keeps them with the checkpoint.
    async fn pre_commit(&mut self, _epoch: Epoch) -> Result<PreCommit> {
        Ok(PreCommit {
            meta: serde_json::Value::Null,
            batches: std::mem::take(&mut self.0),
        })
    }
}

/// Counter -> the rows with an even `n` -> JSON files.
fn flow(count: u64, store: Arc<dyn ObjectStore>) -> Result<Dataflow> {
    let flow = Dataflow::new("evens").with_parallelism(2);
    let watermark = WatermarkStrategy::bounded("at", Duration::ZERO);
    let source = Arc::new(Counter {
        partitions: 4,
        count,
    });
    flow.source("counter", source, watermark)?
        .filter((col("n") % lit(2)).eq(lit(0)))?
        .sink(
            "files",
            Arc::new(JsonFiles {
                store,
                dir: Path::from("out"),
            }),
        )?;
    Ok(flow)
}

/// Every `(partition, n)` in the sink's files, sorted.
async fn read_back(store: &dyn ObjectStore) -> Result<Vec<(u32, i64)>> {
    let external = |e| Error::external("reading the sink's files", e);
    let files: Vec<_> = store
        .list(Some(&Path::from("out")))
        .try_collect()
        .await
        .map_err(external)?;
    let mut rows = Vec::new();
    for file in files {
        let bytes = store
            .get(&file.location)
            .await
            .map_err(external)?
            .bytes()
            .await
            .map_err(external)?;
        let reader = arrow::json::ReaderBuilder::new(counter_schema()).build(&bytes[..])?;
        for batch in reader {
            let batch = batch?;
            let partition = batch.column(0).as_primitive::<UInt32Type>();
            let n = batch.column(1).as_primitive::<Int64Type>();
            rows.extend((0..batch.num_rows()).map(|i| (partition.value(i), n.value(i))));
        }
    }
    rows.sort_unstable();
    Ok(rows)
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    spawn(flow(1_000, store.clone())?.build()?, JobConfig::default())
        .await?
        .join()
        .await?;
    let rows = read_back(store.as_ref()).await?;
    println!(
        "{} even numbers written, the first: {:?}",
        rows.len(),
        &rows[..3.min(rows.len())]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use runnel::runtime::CheckpointConfig;
    use runnel::runtime::checkpoint::ObjectStoreCheckpoints;

    use super::*;

    #[tokio::test]
    async fn a_stopped_and_resumed_job_writes_every_row_once() {
        let count = 50_000;
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let config = || JobConfig {
            checkpoints: Some(CheckpointConfig::new(
                Arc::new(
                    ObjectStoreCheckpoints::new(store.clone(), Path::from("ck"), "evens").unwrap(),
                ),
                Duration::from_millis(10),
            )),
            ..JobConfig::default()
        };
        let job = spawn(
            flow(count, store.clone()).unwrap().build().unwrap(),
            config(),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        job.stop();
        job.join().await.unwrap();
        let first = read_back(store.as_ref()).await.unwrap().len();
        spawn(
            flow(count, store.clone()).unwrap().build().unwrap(),
            config(),
        )
        .await
        .unwrap()
        .join()
        .await
        .unwrap();
        let rows = read_back(store.as_ref()).await.unwrap();
        let expected: Vec<(u32, i64)> = (0..4)
            .flat_map(|p| {
                (0..count as i64)
                    .filter(|n| n % 2 == 0)
                    .map(move |n| (p, n))
            })
            .collect();
        assert!(
            first < expected.len(),
            "the first run stopped part-way ({first} rows)"
        );
        assert_eq!(rows, expected);
    }
}
