//! [`LogSink`]: writes a dataflow's output to a topic exactly once, in two phases.
//!
//! **Routing.** Subtask `s` writes partition `s % partitions`, or, with
//! [`LogSink::partition_by`], each row goes to `hash(keys) % partitions` (the stable
//! [`runnel_runtime::keys::hash_rows`]; rows are split with one `take` per partition).
//!
//! **Phase 1, [`SinkWriter::pre_commit`].** `write` only buffers rows in memory, per target
//! partition; nothing is visible before a commit. When the barrier of an epoch arrives,
//! each partition with buffered rows, in partition order, becomes one batch tagged with
//! the next sequence number of producer `"{prefix}-{subtask}"` for that partition. The
//! [`PreCommit`] lists `{"entries": [{partition, producer_id, seq, rows}, ...]}` with the
//! batch of entry `i` at `batches[i]`; the runtime persists those batches with the
//! checkpoint (unique paths, never overwritten) and hands them back to `commit`, so the
//! sink needs no staging storage of its own. A writer learns where its sequence of a
//! partition starts with [`Topic::last_producer_seq`] (`last + 1`, or 0) the first time
//! it needs one and counts locally after that; an epoch without rows for a partition
//! consumes no sequence number.
//!
//! **Phase 2, [`Sink::commit`].** For each staged entry (entries of one producer and
//! partition in sequence order, different ones concurrently) the committer reads the
//! producer's last sequence number from the log: `last >= seq` means the entry is already
//! in the log and is skipped; `seq == last + 1` appends the batch with that
//! [`ProducerSeq`]; anything else is a gap, which would mean an earlier epoch was lost,
//! and fails with [`Error::Internal`]. So a commit is safe to repeat: after a restart, by
//! a zombie and a new instance at the same time (the log's producer dedup acknowledges
//! the second append of a pair as a duplicate, which counts as success), or for an old
//! epoch after newer ones. An object-store error leaves the outcome unknown; it is
//! resolved by re-reading the last sequence number (with a few retries and backoff),
//! never by appending again under a new sequence number.
//!
//! **Why sequences stay consecutive across crashes.** Sequence numbers are handed out in
//! phase 1, before the epoch is durable, so the rows of a lost epoch must get the same
//! numbers when they are replayed. They do because of the order the runtime follows:
//! after a restart it re-commits the staged entries of the checkpoint it restores from
//! *before* it opens the writers again, so a reopened writer reads the last committed
//! number; pre-commits of epochs that never got a checkpoint manifest are never
//! committed, and the replayed rows reuse their numbers. This relies on a contract with
//! the checkpoint coordinator: it commits epochs in order and a commit completes before
//! the next manifest is written (otherwise a restart must re-commit every manifest
//! whose commit may not have finished); a checkpoint that fails without a manifest
//! restarts the writers, so the next epoch does not skip its numbers.
//!
//! Rows wait in memory for one checkpoint interval; a job without checkpoints gets one
//! final epoch at the end of its input, so it buffers its whole output until then.
//! The producer prefix must be unique among the writers of the topic (e.g.
//! `"{job}.{sink node}"`): two sinks sharing it would refuse each other's numbers.
//!
//! Phase 1 lives in [`writer`], phase 2 in [`commit`].

mod commit;
mod writer;

use std::time::Duration;

use async_trait::async_trait;
use runnel_runtime::keys::is_hashable;
use runnel_runtime::{Epoch, Error, Result, Sink, SinkWriter, Staged};

use super::topic::Topic;
use writer::LogWriter;

#[cfg(doc)]
use super::producer::ProducerSeq;
#[cfg(doc)]
use runnel_runtime::PreCommit;

/// Attempts of one step (a read or an append) before an external error is returned.
const MAX_ATTEMPTS: u32 = 4;
const RETRY_BACKOFF: Duration = Duration::from_millis(50);
/// Longest accepted producer prefix.
const MAX_PRODUCER_PREFIX_LEN: usize = 200;

/// Appends a dataflow's rows to a topic, exactly once (see the module docs).
///
/// The runtime drives it; by hand, one epoch looks like this:
///
/// ```
/// # use std::sync::Arc;
/// # use arrow::array::Int64Array;
/// # use arrow::datatypes::{DataType, Field, Schema};
/// # use arrow::record_batch::RecordBatch;
/// # use object_store::{memory::InMemory, path::Path};
/// # use runnel_connectors::log::{EmbeddedLog, LogSink};
/// # use runnel_runtime::{Sink, Staged};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let log = EmbeddedLog::new(Arc::new(InMemory::new()), Path::from(""));
/// let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
/// let topic = log.create_topic("out", 1, schema.clone()).await?;
/// let sink = LogSink::new(topic.clone(), "job.sink")?;
/// let mut writer = sink.open(0, 1).await?;
/// writer.write(RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))])?).await?;
/// let pre_commit = writer.pre_commit(1).await?; // the barrier of epoch 1
/// assert_eq!(topic.end_offset(0).await?, 0); // staged, not visible
/// let staged = vec![Staged { subtask: 0, pre_commit }];
/// sink.commit(1, 0, staged.clone()).await?; // the checkpoint of epoch 1 is durable
/// sink.commit(1, 0, staged).await?; // again after a restart: no effect
/// assert_eq!(topic.end_offset(0).await?, 2);
/// # Ok::<_, runnel_runtime::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct LogSink {
    topic: Topic,
    producer_prefix: String,
    partition_by: Vec<String>,
}

impl LogSink {
    /// A sink into `topic` whose subtask `s` appends as producer `"{producer_prefix}-{s}"`.
    /// The prefix names the job and sink (e.g. `"{job}.{sink node}"`) and must be unique
    /// among the writers of the topic; it must be 1 to 200 printable ASCII characters
    /// without spaces, otherwise this is an [`Error::Plan`].
    pub fn new(topic: Topic, producer_prefix: impl Into<String>) -> Result<Self> {
        let producer_prefix = producer_prefix.into();
        let len = producer_prefix.len();
        if len == 0 || len > MAX_PRODUCER_PREFIX_LEN {
            return Err(Error::Plan(format!(
                "producer prefix of the sink into {} must have 1 to \
                 {MAX_PRODUCER_PREFIX_LEN} characters, not {len}",
                topic.name()
            )));
        }
        if let Some(bad) = producer_prefix.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(Error::Plan(format!(
                "producer prefix {producer_prefix:?} contains {bad:?}; \
                 only printable ASCII without spaces is allowed"
            )));
        }
        Ok(LogSink {
            topic,
            producer_prefix,
            partition_by: Vec::new(),
        })
    }

    /// Routes each row by the hash of these columns instead of by subtask.
    pub fn partition_by(mut self, columns: Vec<String>) -> Self {
        self.partition_by = columns;
        self
    }

    /// The producer id of `subtask`.
    fn producer_id(&self, subtask: usize) -> String {
        format!("{}-{subtask}", self.producer_prefix)
    }
}

#[async_trait]
impl Sink for LogSink {
    async fn open(&self, subtask: usize, _parallelism: usize) -> Result<Box<dyn SinkWriter>> {
        let schema = self.topic.schema();
        let mut keys = Vec::with_capacity(self.partition_by.len());
        for column in &self.partition_by {
            let index = schema.index_of(column).map_err(|_| {
                Error::Plan(format!(
                    "topic {} has no column {column:?} to partition by",
                    self.topic.name()
                ))
            })?;
            if !is_hashable(schema.field(index).data_type()) {
                return Err(Error::Plan(format!(
                    "cannot partition topic {} by {column:?} of type {}",
                    self.topic.name(),
                    schema.field(index).data_type()
                )));
            }
            keys.push(index);
        }
        let partitions = self.topic.partitions();
        Ok(Box::new(LogWriter::new(
            self.topic.clone(),
            self.producer_id(subtask),
            (subtask % partitions as usize) as u32,
            keys,
        )))
    }

    /// Writers of older generations need no fencing here: the log's producer sequence
    /// numbers make a zombie's repeated append a no-op.
    async fn commit(&self, epoch: Epoch, _generation: u64, staged: Vec<Staged>) -> Result<()> {
        commit::commit(&self.topic, epoch, staged).await
    }
}

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod tests;
