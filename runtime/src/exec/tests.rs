//! Whole-job tests of the executor with in-memory sources and sinks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{AsArray, Int64Array, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;

use crate::*;

pub(super) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ]))
}

pub(super) fn batch(keys: &[i64], ts: &[i64]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(keys.to_vec())),
            Arc::new(TimestampMillisecondArray::from(ts.to_vec())),
        ],
    )
    .unwrap()
}

/// Partition `p` yields `batches[p]` in order, then ends (or idles forever if `endless`).
#[derive(Debug)]
struct VecSource {
    batches: Vec<Vec<RecordBatch>>,
    endless: bool,
    /// Moves this clock forward before each batch is handed out.
    tick: Option<(ManualClock, Millis)>,
}

struct VecReader {
    queue: Vec<(u32, RecordBatch)>,
    endless: bool,
    tick: Option<(ManualClock, Millis)>,
}

#[async_trait]
impl Source for VecSource {
    fn schema(&self) -> SchemaRef {
        schema()
    }
    fn partitions(&self) -> usize {
        self.batches.len()
    }
    async fn open_at(
        &self,
        partitions: &[u32],
        positions: &HashMap<u32, u64>,
    ) -> Result<Box<dyn SourceReader>> {
        if !positions.is_empty() {
            return Err(Error::Plan("this test source cannot seek".into()));
        }
        // Round-robin over the partitions: batch i of every partition, then batch i + 1.
        let mut queue = Vec::new();
        let longest = self.batches.iter().map(Vec::len).max().unwrap_or(0);
        for i in 0..longest {
            for &p in partitions {
                if let Some(b) = self.batches[p as usize].get(i) {
                    queue.push((p, b.clone()));
                }
            }
        }
        queue.reverse();
        Ok(Box::new(VecReader {
            queue,
            endless: self.endless,
            tick: self.tick.clone(),
        }))
    }
}

#[async_trait]
impl SourceReader for VecReader {
    async fn next(&mut self) -> Result<SourcePoll> {
        match self.queue.pop() {
            Some((partition, batch)) => {
                if let Some((clock, step)) = &self.tick {
                    clock.advance(*step);
                }
                Ok(SourcePoll::Batch { partition, batch })
            }
            None if self.endless => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(SourcePoll::Idle)
            }
            None => Ok(SourcePoll::End),
        }
    }
    fn positions(&self) -> Vec<(u32, u64)> {
        Vec::new()
    }
}

#[derive(Debug, Default, Clone)]
pub(super) struct Collected(
    Arc<Mutex<Vec<(usize, RecordBatch)>>>,
    Arc<Mutex<Vec<(usize, Millis)>>>,
);

impl Collected {
    pub(super) fn watermarks(&self, subtask: usize) -> Vec<Millis> {
        let all = self.1.lock().unwrap();
        all.iter()
            .filter(|(s, _)| *s == subtask)
            .map(|(_, w)| *w)
            .collect()
    }
}

#[derive(Debug)]
pub(super) struct VecSink(pub(super) Collected);

struct VecWriter(usize, Collected);

#[async_trait]
impl Sink for VecSink {
    async fn open(&self, subtask: usize, _parallelism: usize) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(VecWriter(subtask, self.0.clone())))
    }
}

#[async_trait]
impl SinkWriter for VecWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.1.0.lock().unwrap().push((self.0, batch));
        Ok(())
    }
    async fn on_watermark(&mut self, watermark: Millis) -> Result<()> {
        self.1.1.lock().unwrap().push((self.0, watermark));
        Ok(())
    }
}

/// Tags every row with the subtask that saw it, to check hash routing.
struct TagSubtask(i64);

impl Operator for TagSubtask {
    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let tag = Int64Array::from(vec![self.0; batch.num_rows()]);
        out.emit(RecordBatch::try_new(
            batch.schema(),
            vec![Arc::new(tag), batch.column(1).clone()],
        )?);
        let keys = batch.column(0).as_primitive::<Int64Type>();
        if keys.values().contains(&-1) {
            return Err(Error::Data("key -1 is not allowed".into()));
        }
        if keys.values().contains(&-2) {
            panic!("key -2 makes this operator panic");
        }
        Ok(())
    }
}

fn tagging_job(source: VecSource, collected: Collected) -> JobGraph {
    let flow = Dataflow::new("t").with_parallelism(3);
    let tag: OperatorFactory = Arc::new(|ctx: &OperatorContext| {
        Ok(Box::new(TagSubtask(ctx.subtask as i64)) as Box<dyn Operator>)
    });
    flow.source(
        "src",
        Arc::new(source),
        WatermarkStrategy::bounded("ts", Duration::from_millis(10)),
    )
    .unwrap()
    .key_by(&["k"])
    .unwrap()
    .operator("tag", schema(), tag)
    .unwrap()
    .sink("out", Arc::new(VecSink(collected)))
    .unwrap();
    flow.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_reach_the_subtask_of_their_key_and_the_final_watermark_arrives() {
    let keys: Vec<i64> = (0..300).collect();
    let ts: Vec<i64> = (0..300).map(|i| 1_000 + i).collect();
    let source = VecSource {
        batches: (0..4)
            .map(|p| {
                vec![batch(
                    &keys[p * 75..(p + 1) * 75],
                    &ts[p * 75..(p + 1) * 75],
                )]
            })
            .collect(),
        endless: false,
        tick: None,
    };
    let collected = Collected::default();
    let job = spawn(tagging_job(source, collected.clone()), JobConfig::default())
        .await
        .unwrap();
    let metrics = job.metrics().clone();
    job.join().await.unwrap();

    let rows: usize = collected
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| b.num_rows())
        .sum();
    assert_eq!(rows, 300);
    // Each key went to the subtask owning its key group.
    let mut expected_tags = Vec::new();
    let key_col: arrow::array::ArrayRef = Arc::new(Int64Array::from(keys.clone()));
    let mut hashes = Vec::new();
    keys::hash_rows(&[key_col], &mut hashes).unwrap();
    for (k, h) in keys.iter().zip(hashes) {
        let sub = keys::subtask_for_key_group(keys::key_group(h, 128), 128, 3);
        expected_tags.push((1_000 + k, sub as i64));
    }
    let mut seen = Vec::new();
    for (_, b) in collected.0.lock().unwrap().iter() {
        let tags = b.column(0).as_primitive::<Int64Type>();
        let ts = b
            .column(1)
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        seen.extend(ts.values().iter().zip(tags.values()).map(|(t, s)| (*t, *s)));
    }
    seen.sort();
    expected_tags.sort();
    assert_eq!(seen, expected_tags);
    for subtask in 0..3 {
        let wms = collected.watermarks(subtask);
        assert_eq!(wms.last(), Some(&WATERMARK_END));
        assert!(
            wms.windows(2).all(|w| w[0] < w[1]),
            "watermarks went back: {wms:?}"
        );
    }
    assert_eq!(metrics.node("src").unwrap().rows_in(), 300);
    assert_eq!(metrics.node("tag").unwrap().rows_out(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_error_fails_the_job_with_its_cause() {
    let source = VecSource {
        batches: vec![vec![batch(&[1, 2], &[1, 2])], vec![batch(&[-1], &[3])]],
        endless: true,
        tick: None,
    };
    let job = spawn(
        tagging_job(source, Collected::default()),
        JobConfig::default(),
    )
    .await
    .unwrap();
    let err = job.join().await.unwrap_err();
    assert!(
        matches!(&err, Error::Subtask { node, .. } if node == "tag"),
        "{err}"
    );
    assert!(err.to_string().contains("key -1 is not allowed"), "{err}");
    assert_eq!(err.fault(), Fault::User);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_operator_fails_the_job_without_taking_the_process_down() {
    let source = VecSource {
        batches: vec![vec![batch(&[-2], &[3])]],
        endless: true,
        tick: None,
    };
    let job = spawn(
        tagging_job(source, Collected::default()),
        JobConfig::default(),
    )
    .await
    .unwrap();
    let err = job.join().await.unwrap_err();
    assert!(err.to_string().contains("panicked: key -2"), "{err}");
    assert_eq!(err.fault(), Fault::Internal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_an_unbounded_job_cleanly_without_the_final_watermark() {
    let source = VecSource {
        batches: vec![vec![batch(&[1], &[100])], vec![batch(&[2], &[200])]],
        endless: true,
        tick: None,
    };
    let collected = Collected::default();
    let job = spawn(tagging_job(source, collected.clone()), JobConfig::default())
        .await
        .unwrap();
    while job.metrics().node("out").unwrap().rows_in() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    job.stop();
    job.join().await.unwrap();
    for subtask in 0..3 {
        let wms = collected.watermarks(subtask);
        assert!(!wms.contains(&WATERMARK_END), "{wms:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_partition_stops_holding_back_the_watermark() {
    // Partition 1 has one early event, then nothing; partition 0 goes on, and each of its
    // batches moves processing time 100 ms forward.
    let clock = ManualClock::new(0);
    let p0: Vec<RecordBatch> = (0..50).map(|i| batch(&[i], &[1_000 * i])).collect();
    let source = VecSource {
        batches: vec![p0, vec![batch(&[7], &[5])]],
        endless: true,
        tick: Some((clock.clone(), 100)),
    };
    let collected = Collected::default();
    let flow = Dataflow::new("idle").with_parallelism(1);
    flow.source(
        "src",
        Arc::new(source),
        WatermarkStrategy::bounded("ts", Duration::ZERO).with_idle_timeout(Duration::from_secs(1)),
    )
    .unwrap()
    .sink("out", Arc::new(VecSink(collected.clone())))
    .unwrap();
    let config = JobConfig {
        clock: Arc::new(clock.clone()),
        ..JobConfig::default()
    };
    let job = spawn(flow.build().unwrap(), config).await.unwrap();
    while job.metrics().node("out").unwrap().rows_in() < 51 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    job.stop();
    job.join().await.unwrap();
    let wms = collected.watermarks(0);
    // Held at partition 1's 5 ms until it had been idle for 1 s (ten batches of p0),
    // then following partition 0 alone.
    assert_eq!(wms[..2], [0, 5], "{wms:?}");
    assert!(wms.contains(&49_000), "{wms:?}");
    assert!(!wms.iter().any(|&w| w > 5 && w < 10_000), "{wms:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restoring_job_runs_inside_a_spawned_task_and_counts_its_checkpoints() {
    use crate::checkpoint::ObjectStoreCheckpoints;
    use crate::exec::CheckpointConfig;

    let store = Arc::new(object_store::memory::InMemory::new());
    let checkpoints = Arc::new(
        ObjectStoreCheckpoints::new(store, object_store::path::Path::from("r"), "t").unwrap(),
    );
    let config = JobConfig {
        checkpoints: Some(CheckpointConfig::new(checkpoints, Duration::from_secs(60))),
        ..JobConfig::default()
    };
    let source = || VecSource {
        batches: vec![vec![batch(&[1, 2, 3], &[10, 20, 30])]],
        endless: false,
        tick: None,
    };
    let mut epochs = Vec::new();
    for _ in 0..2 {
        let (graph, config) = (tagging_job(source(), Collected::default()), config.clone());
        // A server runs jobs from spawned tasks: the whole start (claim, restore) must be
        // Send for any lifetime, which a closure over borrowed state files once broke.
        let metrics = tokio::spawn(async move {
            let job = spawn(graph, config).await?;
            let metrics = job.metrics().clone();
            job.join().await.map(|()| metrics)
        })
        .await
        .unwrap()
        .unwrap();
        let last = metrics.checkpoints.last().expect("the final checkpoint");
        epochs.push(last.epoch);
    }
    assert!(
        epochs[1] > epochs[0],
        "the second run restored and went on: {epochs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_falling_back_past_a_corrupt_manifest_epochs_are_never_reused() {
    use object_store::ObjectStoreExt;

    use crate::checkpoint::layout::{job_dir, manifest_path};
    use crate::checkpoint::{CorruptPolicy, ObjectStoreCheckpoints};
    use crate::exec::CheckpointConfig;

    let store = Arc::new(object_store::memory::InMemory::new());
    let root = object_store::path::Path::from("r");
    let checkpoints =
        Arc::new(ObjectStoreCheckpoints::new(store.clone(), root.clone(), "t").unwrap());
    let mut config = CheckpointConfig::new(checkpoints.clone(), Duration::from_secs(60));
    config.policy = CorruptPolicy::FallbackToPrevious;
    let config = JobConfig {
        checkpoints: Some(config),
        ..JobConfig::default()
    };
    let run = |config: JobConfig| async move {
        let source = VecSource {
            batches: vec![vec![batch(&[1, 2, 3], &[10, 20, 30])]],
            endless: false,
            tick: None,
        };
        let job = spawn(tagging_job(source, Collected::default()), config)
            .await
            .unwrap();
        let metrics = job.metrics().clone();
        job.join().await.unwrap();
        metrics
            .checkpoints
            .last()
            .expect("the final checkpoint")
            .epoch
    };
    run(config.clone()).await;
    let second = run(config.clone()).await;
    // The newest manifest (the second run's final checkpoint) is damaged: the third run
    // falls back to the first run's checkpoint, but must not reuse the second's epoch,
    // which its sinks may already have committed.
    let newest = *crate::checkpoint::CheckpointStore::list_manifests(checkpoints.as_ref(), None)
        .await
        .unwrap()
        .last()
        .unwrap();
    let path = manifest_path(&job_dir(&root, "t"), newest);
    store.put(&path, "{ damaged".into()).await.unwrap();
    let third = run(config).await;
    assert!(third > second, "epoch {third} after {second}");
}
