//! [`LogSink`]: writes a dataflow's output to a topic, e.g. the edge between two jobs.
//!
//! Subtask `s` appends to partition `s % partitions`, or, with
//! [`LogSink::partition_by`], each row goes to `hash(keys) % partitions` (the stable
//! [`runnel_runtime::keys::hash_rows`]; rows are split with one `take` per partition).
//!
//! **One append per write.** Each `write` becomes one segment per target partition and
//! returns once it is durable, as [`SinkWriter::write`] promises; nothing is buffered, so
//! a crash loses nothing acknowledged. Segment size therefore follows the upstream
//! batch size; runnel operators emit batches of thousands of rows, which is what the
//! reader wants. (Buffering to 64K rows would need a flush hook at checkpoints, which
//! the sink API does not offer.)
//!
//! **Idempotent retries.** With [`LogSink::producer_prefix`], subtask `s` is producer
//! `"{prefix}-{s}"`; it continues the sequence it left in the log (read when it first
//! writes to a partition) and retries a failed put with the same sequence number, so a
//! put that landed but reported an error is not appended twice. After giving up, the
//! next write re-reads the sequence from the log. Without a prefix appends carry no
//! producer and a retried put may duplicate rows. The prefix must be unique per job and
//! sink: two writers sharing a producer id refuse each other's sequence numbers.
//! Exactly-once across job restarts (epochs aligned with checkpoints) is not provided
//! by this sink yet: replayed input is appended again.

use std::collections::HashMap;
use std::time::Duration;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use runnel_runtime::keys::{hash_rows, is_hashable};
use runnel_runtime::{Error, Fault, Result, Sink, SinkWriter};

use super::producer::ProducerSeq;
use super::topic::Topic;

/// Attempts of one append before the error is returned.
const MAX_ATTEMPTS: u32 = 4;
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// Appends a dataflow's rows to a topic.
#[derive(Debug, Clone)]
pub struct LogSink {
    topic: Topic,
    producer_prefix: Option<String>,
    partition_by: Vec<String>,
}

impl LogSink {
    /// A sink into `topic`: subtask `s` writes partition `s % partitions`, without
    /// producer ids.
    pub fn new(topic: Topic) -> Self {
        LogSink {
            topic,
            producer_prefix: None,
            partition_by: Vec::new(),
        }
    }

    /// Makes appends idempotent: subtask `s` is producer `"{prefix}-{s}"`. Use the job
    /// (or sink) name; it must be unique among writers of the topic.
    pub fn producer_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.producer_prefix = Some(prefix.into());
        self
    }

    /// Routes each row by the hash of these columns instead of by subtask.
    pub fn partition_by(mut self, columns: Vec<String>) -> Self {
        self.partition_by = columns;
        self
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
        Ok(Box::new(LogWriter {
            topic: self.topic.clone(),
            producer_id: self
                .producer_prefix
                .as_ref()
                .map(|p| format!("{p}-{subtask}")),
            partition: (subtask % partitions as usize) as u32,
            keys,
            next_seq: HashMap::new(),
            hashes: Vec::new(),
        }))
    }
}

struct LogWriter {
    topic: Topic,
    producer_id: Option<String>,
    /// Target partition when not partitioning by key.
    partition: u32,
    /// Key column indexes; empty: write to `partition`.
    keys: Vec<usize>,
    /// Next sequence number per partition, once known.
    next_seq: HashMap<u32, u64>,
    hashes: Vec<u64>,
}

impl LogWriter {
    /// Splits a batch into (partition, rows) by key hash, with one `take` per partition.
    fn split(&mut self, batch: &RecordBatch) -> Result<Vec<(u32, RecordBatch)>> {
        if self.keys.is_empty() {
            return Ok(vec![(self.partition, batch.clone())]);
        }
        let columns: Vec<ArrayRef> = self.keys.iter().map(|&i| batch.column(i).clone()).collect();
        hash_rows(&columns, &mut self.hashes)?;
        let partitions = u64::from(self.topic.partitions());
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); partitions as usize];
        for (row, hash) in self.hashes.iter().enumerate() {
            rows[(hash % partitions) as usize].push(row as u32);
        }
        let mut out = Vec::new();
        for (partition, indices) in rows.into_iter().enumerate() {
            if indices.len() == batch.num_rows() {
                return Ok(vec![(partition as u32, batch.clone())]);
            }
            if !indices.is_empty() {
                let taken = take_record_batch(batch, &UInt32Array::from(indices))?;
                out.push((partition as u32, taken));
            }
        }
        Ok(out)
    }

    async fn append(&mut self, partition: u32, batch: RecordBatch) -> Result<()> {
        let batches = [batch];
        let producer = match &self.producer_id {
            None => None,
            Some(id) => {
                let seq = match self.next_seq.get(&partition) {
                    Some(seq) => *seq,
                    None => match self.topic.last_producer_seq(partition, id).await? {
                        Some(last) => last.checked_add(1).ok_or_else(|| {
                            Error::Data(format!("producer {id} ran out of sequence numbers"))
                        })?,
                        None => 0,
                    },
                };
                Some(ProducerSeq::new(id.clone(), seq))
            }
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .topic
                .append(partition, &batches, producer.clone())
                .await
            {
                Ok(_) => break,
                Err(e) if e.fault() == Fault::External && attempt < MAX_ATTEMPTS => {
                    tracing::warn!(
                        topic = self.topic.name(),
                        partition,
                        attempt,
                        "log sink append failed, retrying: {e}"
                    );
                    tokio::time::sleep(RETRY_BACKOFF * attempt).await;
                }
                Err(e) => {
                    // Whether the last attempt landed is unknown: re-read the sequence
                    // from the log before the next write.
                    self.next_seq.remove(&partition);
                    return Err(e);
                }
            }
        }
        match producer.and_then(|p| p.seq.checked_add(1)) {
            Some(next) => self.next_seq.insert(partition, next),
            None => self.next_seq.remove(&partition),
        };
        Ok(())
    }
}

#[async_trait]
impl SinkWriter for LogWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        for (partition, rows) in self.split(&batch)? {
            self.append(partition, rows).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use arrow::array::Int64Array;

    use super::super::EmbeddedLog;
    use super::super::test_util::{FlakyStore, batch, ids, schema, stores};
    use super::*;

    async fn read_ids(topic: &Topic, partition: u32) -> Vec<i64> {
        topic.end_offset(partition).await.unwrap();
        ids(&topic.read(partition, 0, usize::MAX).await.unwrap().batches)
    }

    #[tokio::test]
    async fn subtasks_write_their_partition_and_continue_their_sequence() {
        for s in stores() {
            let topic = s.log().create_topic("out", 2, schema()).await.unwrap();
            let sink = LogSink::new(topic.clone()).producer_prefix("job");
            let mut w0 = sink.open(0, 3).await.unwrap();
            let mut w1 = sink.open(1, 3).await.unwrap();
            let mut w2 = sink.open(2, 3).await.unwrap();
            w0.write(batch(0..5)).await.unwrap();
            w1.write(batch(5..7)).await.unwrap();
            w2.write(batch(7..8)).await.unwrap();
            w0.write(batch(8..9)).await.unwrap();
            w0.write(batch(9..9)).await.unwrap();
            w0.finish().await.unwrap();
            assert_eq!(read_ids(&topic, 0).await, vec![0, 1, 2, 3, 4, 7, 8]);
            assert_eq!(read_ids(&topic, 1).await, vec![5, 6]);
            assert_eq!(topic.last_producer_seq(0, "job-0").await.unwrap(), Some(1));

            // A restarted writer (new process) continues producer job-0's sequence.
            let reopened = s.log().topic("out").await.unwrap();
            let mut again = LogSink::new(reopened.clone())
                .producer_prefix("job")
                .open(0, 3)
                .await
                .unwrap();
            again.write(batch(20..22)).await.unwrap();
            assert_eq!(
                reopened.last_producer_seq(0, "job-0").await.unwrap(),
                Some(2)
            );
            assert_eq!(
                read_ids(&reopened, 0).await,
                vec![0, 1, 2, 3, 4, 7, 8, 20, 21],
                "{}",
                s.kind
            );
        }
    }

    #[tokio::test]
    async fn partition_by_routes_each_row_by_its_key_hash() {
        for s in stores() {
            let topic = s.log().create_topic("keyed", 3, schema()).await.unwrap();
            let sink = LogSink::new(topic.clone()).partition_by(vec!["name".into()]);
            let mut writer = sink.open(0, 1).await.unwrap();
            let mut expected: Vec<Vec<i64>> = vec![Vec::new(); 3];
            for from in (0..200).step_by(50) {
                let rows = batch(from..from + 50);
                // Oracle: hash each row on its own.
                for row in 0..rows.num_rows() {
                    let mut hash = Vec::new();
                    hash_rows(&[rows.column(1).slice(row, 1)], &mut hash).unwrap();
                    let id = rows
                        .column(0)
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .unwrap()
                        .value(row);
                    expected[(hash[0] % 3) as usize].push(id);
                }
                writer.write(rows).await.unwrap();
            }
            for (p, rows) in expected.iter().enumerate() {
                assert_eq!(&read_ids(&topic, p as u32).await, rows, "{}", s.kind);
            }
            let bad = LogSink::new(topic).partition_by(vec!["nope".into()]);
            assert!(matches!(bad.open(0, 1).await, Err(Error::Plan(_))));
        }
    }

    #[tokio::test]
    async fn failed_puts_are_retried_without_duplicates() {
        for s in stores() {
            let flaky = Arc::new(FlakyStore::new(s.store.clone()));
            let log = EmbeddedLog::new(flaky.clone(), object_store::path::Path::from("data"));
            let topic = log.create_topic("t", 1, schema()).await.unwrap();
            let mut writer = LogSink::new(topic.clone())
                .producer_prefix("j")
                .open(0, 1)
                .await
                .unwrap();
            // Written, then reported as a timeout: the retry is acknowledged as a duplicate.
            flaky.applied.store(1, Ordering::SeqCst);
            writer.write(batch(0..3)).await.unwrap();
            // Lost: the retry writes it.
            flaky.lost.store(1, Ordering::SeqCst);
            writer.write(batch(3..5)).await.unwrap();
            // Failing beyond the retries surfaces the error; the last attempt landed.
            flaky
                .lost
                .store(MAX_ATTEMPTS as usize - 1, Ordering::SeqCst);
            flaky.applied.store(1, Ordering::SeqCst);
            let err = writer.write(batch(5..6)).await.unwrap_err();
            assert_eq!(err.fault(), Fault::External, "{err}");
            // The next write re-reads its sequence number and appends after it.
            writer.write(batch(6..8)).await.unwrap();
            assert_eq!(
                read_ids(&topic, 0).await,
                (0..8).collect::<Vec<_>>(),
                "{}",
                s.kind
            );
            assert_eq!(topic.last_producer_seq(0, "j-0").await.unwrap(), Some(3));
        }
    }
}
