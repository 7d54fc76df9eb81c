//! Phase 1 of the log sink: buffering rows per partition and staging them at a barrier.
//!
//! `write` checks a batch against the topic schema (so a bad record fails where it
//! arrives), splits it by target partition and keeps the parts in memory. `pre_commit`
//! turns each partition's parts into one batch with the next sequence number of the
//! writer's producer for that partition and hands batches and entries to the runtime;
//! it does no I/O except, once per partition, reading where the producer's sequence
//! continues. Sequence numbers are computed before the buffers are taken, so a failed
//! read leaves the writer as it was.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use runnel_runtime::keys::hash_rows;
use runnel_runtime::{Epoch, Error, Fault, PreCommit, Result, SinkWriter};

use super::super::topic::{Topic, conform};
use super::commit::{StagedAppend, StagedMeta};
use super::{MAX_ATTEMPTS, RETRY_BACKOFF};

/// The writer of one sink subtask, appending as one producer.
pub(super) struct LogWriter {
    topic: Topic,
    producer_id: String,
    /// Target partition when not partitioning by key.
    partition: u32,
    /// Key column indexes; empty: write to `partition`.
    keys: Vec<usize>,
    /// Rows written since the last barrier, per partition, with the topic schema.
    buffered: BTreeMap<u32, Vec<RecordBatch>>,
    /// Next sequence number per partition, once known.
    next_seq: HashMap<u32, u64>,
    hashes: Vec<u64>,
}

impl LogWriter {
    /// A writer appending as `producer_id` to `partition`, or by the hash of `keys`.
    pub fn new(topic: Topic, producer_id: String, partition: u32, keys: Vec<usize>) -> Self {
        LogWriter {
            topic,
            producer_id,
            partition,
            keys,
            buffered: BTreeMap::new(),
            next_seq: HashMap::new(),
            hashes: Vec::new(),
        }
    }

    /// Splits a batch into (partition, rows) by key hash, with one `take` per partition.
    fn split(&mut self, batch: RecordBatch) -> Result<Vec<(u32, RecordBatch)>> {
        if self.keys.is_empty() {
            return Ok(vec![(self.partition, batch)]);
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
                return Ok(vec![(partition as u32, batch)]);
            }
            if !indices.is_empty() {
                let taken = take_record_batch(&batch, &UInt32Array::from(indices))?;
                out.push((partition as u32, taken));
            }
        }
        Ok(out)
    }

    fn exhausted(&self) -> Error {
        Error::Internal(format!(
            "producer {} ran out of sequence numbers",
            self.producer_id
        ))
    }

    /// The next sequence number for `partition`, read from the log the first time.
    async fn next_seq(&self, partition: u32) -> Result<u64> {
        if let Some(next) = self.next_seq.get(&partition) {
            return Ok(*next);
        }
        let mut attempt = 0;
        let last = loop {
            attempt += 1;
            match self
                .topic
                .last_producer_seq(partition, &self.producer_id)
                .await
            {
                Ok(last) => break last,
                Err(e) if e.fault() == Fault::External && attempt < MAX_ATTEMPTS => {
                    tracing::warn!(topic = self.topic.name(), partition, "retrying: {e}");
                    tokio::time::sleep(RETRY_BACKOFF * attempt).await;
                }
                Err(e) => return Err(e),
            }
        };
        match last {
            None => Ok(0),
            Some(last) => last.checked_add(1).ok_or_else(|| self.exhausted()),
        }
    }
}

#[async_trait]
impl SinkWriter for LogWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = conform(&self.topic.schema(), &batch, self.topic.name())?;
        for (partition, rows) in self.split(batch)? {
            self.buffered.entry(partition).or_default().push(rows);
        }
        Ok(())
    }

    async fn pre_commit(&mut self, _epoch: Epoch) -> Result<PreCommit> {
        if self.buffered.is_empty() {
            return Ok(PreCommit::default());
        }
        // Sequence numbers first: a failed read leaves the buffers as they were.
        let mut seqs = Vec::with_capacity(self.buffered.len());
        for &partition in self.buffered.keys() {
            let seq = self.next_seq(partition).await?;
            let next = seq.checked_add(1).ok_or_else(|| self.exhausted())?;
            seqs.push((seq, next));
        }
        let schema = self.topic.schema();
        let mut meta = StagedMeta::default();
        let mut batches = Vec::with_capacity(seqs.len());
        let buffered = std::mem::take(&mut self.buffered);
        for ((partition, mut parts), (seq, next)) in buffered.into_iter().zip(seqs) {
            let batch = match parts.len() {
                1 => parts.swap_remove(0),
                _ => concat_batches(&schema, &parts)?,
            };
            meta.entries.push(StagedAppend {
                partition,
                producer_id: self.producer_id.clone(),
                seq,
                rows: batch.num_rows() as u64,
            });
            batches.push(batch);
            self.next_seq.insert(partition, next);
        }
        let meta = serde_json::to_value(meta)
            .map_err(|e| Error::Internal(format!("log sink staged entries: {e}")))?;
        Ok(PreCommit { meta, batches })
    }

    async fn finish(&mut self) -> Result<()> {
        if self.buffered.is_empty() {
            Ok(())
        } else {
            Err(Error::Internal(format!(
                "log sink into {}: rows written after the final barrier",
                self.topic.name()
            )))
        }
    }
}
