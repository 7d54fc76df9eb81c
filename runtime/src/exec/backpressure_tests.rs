//! Backpressure as the metrics show it: a slow sink fills its input channels and blocks
//! its upstream on send; every message counted into a queue is counted out.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arrow::array::{Int64Array, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;

use crate::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ]))
}

/// Two partitions, each handing out `batches` small batches (when `None`: forever) as
/// fast as it is asked.
#[derive(Debug)]
struct Counting {
    batches: Option<u64>,
}

struct CountingReader {
    partition: u32,
    left: Option<u64>,
    next_ts: i64,
}

#[async_trait]
impl Source for Counting {
    fn schema(&self) -> SchemaRef {
        schema()
    }
    fn partitions(&self) -> usize {
        2
    }
    async fn open_at(&self, parts: &[u32], _: &HashMap<u32, u64>) -> Result<Box<dyn SourceReader>> {
        Ok(Box::new(CountingReader {
            partition: parts[0],
            left: self.batches,
            next_ts: 0,
        }))
    }
}

#[async_trait]
impl SourceReader for CountingReader {
    async fn next(&mut self) -> Result<SourcePoll> {
        match &mut self.left {
            Some(0) => return Ok(SourcePoll::End),
            Some(n) => *n -= 1,
            None => {}
        }
        self.next_ts += 10;
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(TimestampMillisecondArray::from(vec![self.next_ts; 3])),
            ],
        )?;
        Ok(SourcePoll::Batch {
            partition: self.partition,
            batch,
        })
    }
    fn positions(&self) -> Vec<(u32, u64)> {
        Vec::new()
    }
}

/// Takes `delay` to write each batch.
#[derive(Debug)]
struct Slow {
    delay: Duration,
}

#[async_trait]
impl Sink for Slow {
    async fn open(&self, _: usize, _: usize) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(Slow { delay: self.delay }))
    }
}

#[async_trait]
impl SinkWriter for Slow {
    async fn write(&mut self, _batch: RecordBatch) -> Result<()> {
        tokio::time::sleep(self.delay).await;
        Ok(())
    }
}

fn job(batches: Option<u64>, delay: Duration) -> JobGraph {
    let flow = Dataflow::new("bp").with_parallelism(2);
    let strategy = WatermarkStrategy::bounded("ts", Duration::ZERO);
    let source = Arc::new(Counting { batches });
    flow.source("src", source, strategy)
        .unwrap()
        .sink("out", Arc::new(Slow { delay }))
        .unwrap();
    flow.build().unwrap()
}

fn config() -> JobConfig {
    JobConfig {
        channel_capacity: 4,
        ..JobConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_fills_its_inputs_and_blocks_its_upstream_on_send() {
    let job = spawn(job(None, Duration::from_millis(20)), config())
        .await
        .unwrap();
    let metrics = job.metrics().clone();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (source, sink) = (&metrics.nodes[0], &metrics.nodes[1]);
    // Two sink subtasks, each fed by its source subtask through a channel of 4. A
    // waiting sender's message counts, so the queue never reads below full.
    assert_eq!(sink.input_capacity(), 2 * 4);
    assert_eq!(source.input_capacity(), 0, "a source has no inputs");
    assert_eq!(sink.input_fill(), 1.0, "{sink:?}");
    assert!(sink.input_queued() >= 2 * 4, "{sink:?}");
    // The sources spent most of the time waiting for room.
    let blocked = Duration::from_micros(source.send_blocked_micros() / 2);
    assert!(blocked > Duration::from_millis(300), "{blocked:?}");
    job.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_counted_into_a_queue_is_counted_out() {
    let job = spawn(job(Some(200), Duration::ZERO), config())
        .await
        .unwrap();
    let metrics = job.metrics().clone();
    job.join().await.unwrap();
    for node in &metrics.nodes {
        for subtask in &node.subtasks {
            assert_eq!(subtask.input_queued.load(Ordering::Relaxed), 0, "{node:?}");
        }
    }
    assert_eq!(metrics.nodes[1].rows_in(), 2 * 200 * 3);
}
