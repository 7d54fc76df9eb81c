//! In-process sinks: results that leave the dataflow into the same process.
//!
//! * [`ChannelSink`] sends every batch of every sink subtask into one bounded tokio
//!   `mpsc` channel. The bound is the backpressure: when the consumer (an HTTP result
//!   stream, the CLI printing rows) is slow, `write` waits, the sink's input channel fills
//!   and the whole job slows down to the consumer's pace instead of buffering without end.
//! * [`CollectSink`] appends every batch to a shared vector, for tests and examples.
//!
//! Empty batches are skipped. Neither takes part in two-phase commit: after a recovery, rows produced again from the
//! last checkpoint are delivered again (at-least-once). Use a transactional sink (Iceberg,
//! the log) when results must be exactly-once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use runnel_runtime::{Error, Result, Sink, SinkWriter};
use tokio::sync::mpsc;

/// Locks `mutex`, recovering the data if a panicking thread poisoned it (the sinks'
/// critical sections leave the data consistent at every point).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A sink whose subtasks all send into one bounded channel; see the module docs.
///
/// The receiver yields `None` once every writer has finished (all subtasks
/// `0..parallelism` called `finish`) or the sink and its writers are dropped. If the
/// receiver is dropped first, `write` fails with [`Error::Cancelled`]: nobody wants the
/// results any more, so the job should stop.
///
/// ```
/// use runnel_connectors::channel::ChannelSink;
/// let (sink, mut results) = ChannelSink::new(16);
/// // hand `sink` to the job, then: while let Some(batch) = results.recv().await { ... }
/// ```
#[derive(Debug, Clone)]
pub struct ChannelSink {
    shared: Arc<Mutex<ChannelState>>,
}

#[derive(Debug)]
struct ChannelState {
    /// The sink's own sender, cloned into writers; dropped once every subtask finished.
    sender: Option<mpsc::Sender<RecordBatch>>,
    finished: HashSet<usize>,
}

impl ChannelSink {
    /// A sink and the receiver of its batches; at most `capacity` batches (at least 1)
    /// wait in the channel before writers block.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<RecordBatch>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let state = ChannelState {
            sender: Some(sender),
            finished: HashSet::new(),
        };
        let sink = ChannelSink {
            shared: Arc::new(Mutex::new(state)),
        };
        (sink, receiver)
    }
}

#[async_trait]
impl Sink for ChannelSink {
    async fn open(&self, subtask: usize, parallelism: usize) -> Result<Box<dyn SinkWriter>> {
        if subtask >= parallelism {
            return Err(Error::Plan(format!(
                "channel sink: subtask {subtask} out of range for parallelism {parallelism}"
            )));
        }
        let sender = lock(&self.shared).sender.clone().ok_or_else(|| {
            Error::Plan(
                "channel sink: every subtask already finished; the channel is closed".into(),
            )
        })?;
        Ok(Box::new(ChannelWriter {
            sender: Some(sender),
            shared: self.shared.clone(),
            subtask,
            parallelism,
        }))
    }
}

/// One subtask's end of a [`ChannelSink`].
struct ChannelWriter {
    sender: Option<mpsc::Sender<RecordBatch>>,
    shared: Arc<Mutex<ChannelState>>,
    subtask: usize,
    parallelism: usize,
}

#[async_trait]
impl SinkWriter for ChannelWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let sender = self.sender.as_ref().ok_or_else(|| {
            Error::Internal(format!(
                "channel sink subtask {} written after finish",
                self.subtask
            ))
        })?;
        sender.send(batch).await.map_err(|_| Error::Cancelled)
    }

    async fn finish(&mut self) -> Result<()> {
        self.sender = None;
        let mut state = lock(&self.shared);
        state.finished.insert(self.subtask);
        if (0..self.parallelism).all(|s| state.finished.contains(&s)) {
            state.sender = None;
        }
        Ok(())
    }
}

/// A sink that keeps every batch in memory, shared by all its subtasks and clones.
///
/// ```
/// use runnel_connectors::channel::CollectSink;
/// let sink = CollectSink::new();
/// // run a job writing into `sink.clone()`, then:
/// assert_eq!(sink.num_rows(), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct CollectSink {
    batches: Arc<Mutex<Vec<RecordBatch>>>,
}

impl CollectSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The batches written so far, in arrival order (interleaved across subtasks).
    pub fn batches(&self) -> Vec<RecordBatch> {
        lock(&self.batches).clone()
    }

    /// Total rows written so far.
    pub fn num_rows(&self) -> usize {
        lock(&self.batches).iter().map(RecordBatch::num_rows).sum()
    }

    /// Removes and returns the batches written so far.
    pub fn take(&self) -> Vec<RecordBatch> {
        std::mem::take(&mut *lock(&self.batches))
    }
}

#[async_trait]
impl Sink for CollectSink {
    async fn open(&self, _subtask: usize, _parallelism: usize) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(CollectWriter {
            batches: self.batches.clone(),
        }))
    }
}

struct CollectWriter {
    batches: Arc<Mutex<Vec<RecordBatch>>>,
}

#[async_trait]
impl SinkWriter for CollectWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() > 0 {
            lock(&self.batches).push(batch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    fn batch(values: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let column = Int64Array::from_iter_values(values);
        RecordBatch::try_new(schema, vec![Arc::new(column)]).unwrap()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        let mut out: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        out.sort_unstable();
        out
    }

    #[tokio::test]
    async fn channel_sink_receives_every_batch_of_every_subtask() {
        let (sink, mut receiver) = ChannelSink::new(2);
        let mut tasks = Vec::new();
        for subtask in 0..3 {
            let mut writer = sink.open(subtask, 3).await.unwrap();
            tasks.push(tokio::spawn(async move {
                for i in 0..20 {
                    let start = (subtask as i64 * 20 + i) * 10;
                    writer.write(batch(start..start + 10)).await.unwrap();
                }
                writer.write(batch(0..0)).await.unwrap();
                writer.finish().await.unwrap();
            }));
        }
        drop(sink);
        let mut received = Vec::new();
        // Ends by itself once all three subtasks have finished.
        while let Some(batch) = receiver.recv().await {
            received.push(batch);
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(received.len(), 60);
        assert_eq!(values(&received), (0..600).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn channel_closes_when_all_subtasks_finish_even_if_the_sink_lives() {
        let (sink, mut receiver) = ChannelSink::new(4);
        let mut a = sink.open(0, 2).await.unwrap();
        let mut b = sink.open(1, 2).await.unwrap();
        a.write(batch(0..3)).await.unwrap();
        a.finish().await.unwrap();
        b.finish().await.unwrap();
        drop((a, b));
        assert_eq!(values(&[receiver.recv().await.unwrap()]), vec![0, 1, 2]);
        assert!(receiver.recv().await.is_none());
        assert!(matches!(sink.open(0, 2).await, Err(Error::Plan(_))));
        assert!(matches!(sink.open(2, 2).await, Err(Error::Plan(_))));
    }

    #[tokio::test]
    async fn a_full_channel_backpressures_the_writer() {
        let (sink, mut receiver) = ChannelSink::new(1);
        let mut writer = sink.open(0, 1).await.unwrap();
        writer.write(batch(0..1)).await.unwrap();
        let mut blocked = writer.write(batch(1..2));
        assert!(futures::poll!(&mut blocked).is_pending());
        assert_eq!(values(&[receiver.recv().await.unwrap()]), vec![0]);
        blocked.await.unwrap();
        assert_eq!(values(&[receiver.recv().await.unwrap()]), vec![1]);
    }

    #[tokio::test]
    async fn a_dropped_receiver_cancels_the_writer() {
        let (sink, receiver) = ChannelSink::new(1);
        let mut writer = sink.open(0, 1).await.unwrap();
        drop(receiver);
        assert!(matches!(
            writer.write(batch(0..1)).await,
            Err(Error::Cancelled)
        ));
    }

    #[tokio::test]
    async fn collect_sink_keeps_everything() {
        let sink = CollectSink::new();
        let mut writers = Vec::new();
        for subtask in 0..2 {
            writers.push(sink.clone().open(subtask, 2).await.unwrap());
        }
        for (i, writer) in writers.iter_mut().enumerate() {
            let start = i as i64 * 100;
            writer.write(batch(start..start + 5)).await.unwrap();
            writer.write(batch(start + 5..start + 7)).await.unwrap();
            writer.write(batch(0..0)).await.unwrap();
            writer.finish().await.unwrap();
        }
        assert_eq!(sink.num_rows(), 14);
        let expected: Vec<i64> = (0..7).chain(100..107).collect();
        assert_eq!(values(&sink.batches()), expected);
        assert_eq!(values(&sink.take()), expected);
        assert!(sink.batches().is_empty());
    }
}
