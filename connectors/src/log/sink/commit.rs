//! Phase 2 of the log sink: appending staged batches exactly once.
//!
//! The staged entries of a commit are grouped into runs, one per (producer, partition),
//! sorted by sequence number; runs are committed concurrently, the entries of a run one
//! after the other. For each entry the committer knows the producer's last sequence
//! number in the log (read fresh before the first entry and after any error, then
//! advanced by its own appends): `last >= seq` means the entry is in the log already and
//! is skipped; `seq == last + 1` appends it with its [`ProducerSeq`]; anything else is a
//! gap and an [`Error::Internal`]. Each append records the epoch being committed in its
//! segment, so readers of the topic know which epoch committed each row. An error leaves
//! the outcome unknown, so it is resolved by re-reading the log, never by guessing:
//! external errors are retried that way a few times with backoff, and an append the log
//! refuses (say, as too old to acknowledge again, because a concurrent committer
//! appended it and moved on) counts as done if the log now holds it.

use std::collections::BTreeMap;

use arrow::record_batch::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use runnel_runtime::{Epoch, Error, Fault, Result, Staged};
use serde::{Deserialize, Serialize};

use super::super::producer::ProducerSeq;
use super::super::topic::Topic;
use super::{MAX_ATTEMPTS, RETRY_BACKOFF};

/// (producer, partition) runs committed concurrently.
const COMMIT_CONCURRENCY: usize = 8;

/// One staged append: `rows` rows for `partition` as `producer_id`'s append `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StagedAppend {
    pub partition: u32,
    pub producer_id: String,
    pub seq: u64,
    pub rows: u64,
}

/// The `meta` of the sink's `PreCommit`: `entries[i]` describes `batches[i]`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StagedMeta {
    pub entries: Vec<StagedAppend>,
}

impl StagedMeta {
    /// Parses a `PreCommit::meta`; `null` (a writer that staged nothing) has no entries.
    pub fn parse(meta: serde_json::Value) -> serde_json::Result<Self> {
        match meta {
            serde_json::Value::Null => Ok(StagedMeta::default()),
            meta => serde_json::from_value(meta),
        }
    }
}

/// Appends what `staged` describes to `topic`, skipping what the log already holds.
pub(super) async fn commit(topic: &Topic, epoch: Epoch, staged: Vec<Staged>) -> Result<()> {
    let commits: Vec<_> = runs(topic, epoch, staged)?
        .into_iter()
        .map(Run::commit)
        .collect();
    futures::stream::iter(commits)
        .buffer_unordered(COMMIT_CONCURRENCY)
        .try_collect::<()>()
        .await
}

/// The staged appends of `staged`, checked, as runs sorted by sequence number.
fn runs(topic: &Topic, epoch: Epoch, staged: Vec<Staged>) -> Result<Vec<Run>> {
    let mut runs: BTreeMap<(String, u32), Vec<(u64, RecordBatch)>> = BTreeMap::new();
    for Staged {
        subtask,
        pre_commit,
    } in staged
    {
        let bad = |what: String| {
            Error::Internal(format!(
                "log sink into {}: what subtask {subtask} staged for epoch {epoch} {what}",
                topic.name()
            ))
        };
        let meta =
            StagedMeta::parse(pre_commit.meta).map_err(|e| bad(format!("is invalid: {e}")))?;
        if meta.entries.len() != pre_commit.batches.len() {
            return Err(bad(format!(
                "lists {} appends for {} batches",
                meta.entries.len(),
                pre_commit.batches.len()
            )));
        }
        for (entry, batch) in meta.entries.into_iter().zip(pre_commit.batches) {
            if entry.rows != batch.num_rows() as u64 || entry.partition >= topic.partitions() {
                return Err(bad(format!(
                    "does not fit: {entry:?} with a batch of {} rows",
                    batch.num_rows()
                )));
            }
            let key = (entry.producer_id, entry.partition);
            runs.entry(key).or_default().push((entry.seq, batch));
        }
    }
    let run = |((producer_id, partition), mut appends): ((String, u32), Vec<_>)| {
        appends.sort_by_key(|(seq, _)| *seq);
        Run {
            topic: topic.clone(),
            epoch,
            producer_id,
            partition,
            appends,
        }
    };
    Ok(runs.into_iter().map(run).collect())
}

/// The staged appends of one producer to one partition, in sequence order.
struct Run {
    topic: Topic,
    epoch: Epoch,
    producer_id: String,
    partition: u32,
    appends: Vec<(u64, RecordBatch)>,
}

impl Run {
    async fn commit(self) -> Result<()> {
        // The producer's last sequence number in the log; `None` when it must be re-read.
        let mut last: Option<Option<u64>> = None;
        for (seq, batch) in &self.appends {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let error = match self.try_commit(*seq, batch, &mut last).await {
                    Ok(()) => break,
                    Err(e) => e,
                };
                // The outcome is unknown: learn it from the log, never from a guess.
                last = None;
                if error.fault() == Fault::External && attempt < MAX_ATTEMPTS {
                    tracing::warn!(
                        topic = self.topic.name(),
                        partition = self.partition,
                        producer = self.producer_id,
                        seq,
                        attempt,
                        "log sink commit failed, retrying: {error}"
                    );
                    tokio::time::sleep(RETRY_BACKOFF * attempt).await;
                    continue;
                }
                // The log refused the append (e.g. as too old to acknowledge again): a
                // concurrent committer may have appended it and moved on.
                if error.fault() == Fault::User && self.committed(*seq).await {
                    break;
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// Appends `batch` as `seq` unless the log already holds it.
    async fn try_commit(
        &self,
        seq: u64,
        batch: &RecordBatch,
        last: &mut Option<Option<u64>>,
    ) -> Result<()> {
        let known = match *last {
            Some(known) => known,
            None => {
                let id = &self.producer_id;
                self.topic.last_producer_seq(self.partition, id).await?
            }
        };
        *last = Some(known);
        if known.is_some_and(|l| l >= seq) {
            return Ok(());
        }
        let expected = known.map_or(0, |l| l + 1);
        if seq != expected {
            return Err(Error::Internal(format!(
                "log sink commit of epoch {} into {}/{}: producer {} is at {known:?} but the \
                 next staged sequence number is {seq}; an earlier epoch was lost",
                self.epoch,
                self.topic.name(),
                self.partition,
                self.producer_id
            )));
        }
        let producer = ProducerSeq::new(self.producer_id.clone(), seq);
        // A duplicate acknowledgement means a concurrent committer won: also success.
        let batches = std::slice::from_ref(batch);
        self.topic
            .append_committed(self.partition, batches, producer, self.epoch)
            .await?;
        *last = Some(Some(seq));
        Ok(())
    }

    /// Whether the log holds `seq` of this run's producer (false if that is unknown).
    async fn committed(&self, seq: u64) -> bool {
        let last = self
            .topic
            .last_producer_seq(self.partition, &self.producer_id)
            .await;
        matches!(last, Ok(Some(last)) if last >= seq)
    }
}
