//! One partition: appends claimed by object name, reads by segment, producer dedup.
//!
//! **Appends.** Each append is one segment object named by its base offset, written with
//! `PutMode::Create`. The name claims the offset range atomically: two writers, in one
//! process or in two, can never both write base offset `X`. A writer appends at the end
//! it knows; if the object already exists it lost a race, so it lists the new segments,
//! re-checks producer dedup against them (the winner may have been its own earlier,
//! unacknowledged attempt) and retries at the new end. Since every segment is written at
//! an end computed from all earlier segments, the log is a dense chain and the dedup
//! check is linearizable. An append returns only after `put` returned: acknowledged
//! means durable.
//!
//! **Locks.** Appends in this process are serialized by an async mutex that also owns the
//! producer table; the segment index sits behind a plain mutex held only for in-memory
//! updates, so reads never wait for an append's I/O.
//!
//! **Producer state** is rebuilt the first time a writer appends (or asks for a
//! producer's last sequence number) by reading the footers of all segments in parallel,
//! then kept up to date by folding each new segment's footer in offset order.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use runnel_runtime::{Error, Result};

use super::index::{SegmentIndex, SegmentRef};
use super::names::{parse_segment_name, segment_path};
use super::producer::{Appended, ProducerSeq, ProducerTable, SeqDecision};
use super::segment::{self, FOOTER_GUESS, SegmentMeta};
use super::topic::AppendAck;

mod read;

/// Attempts of one append before giving up on a contended (or inconsistently listed)
/// partition.
const MAX_APPEND_ATTEMPTS: u32 = 100;
/// Segments fetched concurrently by a read or a footer scan.
const FETCH_CONCURRENCY: usize = 16;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded state is updated in single assignments, so a panic elsewhere cannot
    // leave it half-written.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Default)]
struct WriterState {
    producers: ProducerTable,
    /// Segments below this offset are folded into `producers`; `None` until loaded.
    folded_end: Option<u64>,
}

/// The state of one partition of a topic, shared by every handle of that topic.
#[derive(Debug)]
pub(crate) struct Partition {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    /// `topic/partition`, for error messages.
    label: String,
    id: u32,
    schema: SchemaRef,
    index: Mutex<SegmentIndex>,
    writer: tokio::sync::Mutex<WriterState>,
}

impl Partition {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        dir: Path,
        label: String,
        id: u32,
        schema: SchemaRef,
    ) -> Self {
        Partition {
            store,
            dir,
            label,
            id,
            schema,
            index: Mutex::default(),
            writer: tokio::sync::Mutex::default(),
        }
    }

    fn external(&self, what: &str, e: object_store::Error) -> Error {
        Error::external(format!("log {what} {}", self.label), e)
    }

    fn corrupt(&self, what: String) -> Error {
        Error::Internal(format!("log {} is inconsistent: {what}", self.label))
    }

    /// Lists segments added since the last refresh. Returns the end offset.
    pub async fn refresh(&self) -> Result<u64> {
        let (known_last, known_end) = {
            let index = lock(&self.index);
            (index.last(), index.end())
        };
        let listing = match known_last {
            Some(last) => self
                .store
                .list_with_offset(Some(&self.dir), &segment_path(&self.dir, last.base)),
            None => self.store.list(Some(&self.dir)),
        };
        let mut listed: Vec<SegmentRef> = listing
            .try_filter_map(|meta| async move {
                let base = meta.location.filename().and_then(parse_segment_name);
                Ok(base.map(|base| SegmentRef {
                    base,
                    size: meta.size,
                }))
            })
            .try_collect()
            .await
            .map_err(|e| self.external("list", e))?;
        listed.sort_unstable_by_key(|s| s.base);
        let last_rows = match listed.last() {
            Some(last) if last.base >= known_end => Some(self.read_meta(*last).await?.rows),
            _ => None,
        };
        let mut index = lock(&self.index);
        index
            .extend(&listed, last_rows)
            .map_err(|e| self.corrupt(e))?;
        Ok(index.end())
    }

    /// Reads a segment's footer with one ranged GET of its tail (two for huge footers).
    async fn read_meta(&self, seg: SegmentRef) -> Result<SegmentMeta> {
        let path = segment_path(&self.dir, seg.base);
        let fetch = |len: u64| {
            let path = &path;
            async move {
                self.store
                    .get_range(path, seg.size - len..seg.size)
                    .await
                    .map_err(|e| self.external("read footer of", e))
            }
        };
        let bad = |e| Error::external(format!("log segment {path}"), e);
        let mut tail = fetch(seg.size.min(FOOTER_GUESS)).await?;
        let span = segment::footer_span(&tail).map_err(bad)? as u64;
        if span > tail.len() as u64 && span <= seg.size {
            tail = fetch(span).await?;
        }
        segment::read_meta(&tail).map_err(bad)
    }

    /// Folds the footers of segments the writer has not seen into the producer table.
    async fn catch_up(&self, writer: &mut WriterState) -> Result<()> {
        let folded_end = match writer.folded_end {
            Some(end) => end,
            None => {
                self.refresh().await?;
                lock(&self.index).start()
            }
        };
        let pending = lock(&self.index).segments_from(folded_end);
        // Futures collected first: a closure in the stream would make this future's
        // `Send` bound higher-ranked, which rustc cannot prove (rust-lang/rust#102211).
        let reads: Vec<_> = pending
            .iter()
            .map(|(seg, _)| self.read_meta(*seg))
            .collect();
        let metas: Vec<SegmentMeta> = futures::stream::iter(reads)
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        writer.folded_end = Some(folded_end);
        for ((seg, rows), meta) in pending.iter().zip(metas) {
            if meta.rows != *rows {
                return Err(self.corrupt(format!(
                    "segment {} holds {} rows but the next segment starts {rows} rows later",
                    seg.base, meta.rows
                )));
            }
            if let Some(p) = meta.producer {
                let next = seg.base + rows;
                let appended = Appended {
                    seq: p.seq,
                    base: seg.base,
                    next,
                };
                writer.producers.record(&p.producer_id, appended);
            }
            writer.folded_end = Some(seg.base + rows);
        }
        Ok(())
    }

    /// Appends one encoded segment of `rows` rows (see the module docs).
    pub async fn append(
        &self,
        payload: Bytes,
        rows: u64,
        producer: Option<&ProducerSeq>,
    ) -> Result<AppendAck> {
        let mut writer = self.writer.lock().await;
        for attempt in 0..MAX_APPEND_ATTEMPTS {
            self.catch_up(&mut writer).await?;
            let base = lock(&self.index).end();
            if let Some(p) = producer {
                match writer.producers.decide(p) {
                    SeqDecision::Append => {}
                    SeqDecision::Duplicate { base, next } => {
                        return Ok(self.ack(base, next, true));
                    }
                    SeqDecision::TooOld { last_seq } => {
                        return Err(Error::Conflict(format!(
                            "producer {} sent sequence number {} to {} but is at {last_seq}; \
                             it is too old to acknowledge again",
                            p.producer_id, p.seq, self.label
                        )));
                    }
                    SeqDecision::Gap { last_seq } => {
                        return Err(Error::Conflict(format!(
                            "producer {} sent sequence number {} to {} after {last_seq}: \
                             sequence gap",
                            p.producer_id, p.seq, self.label
                        )));
                    }
                }
            }
            let path = segment_path(&self.dir, base);
            let size = payload.len() as u64;
            let put = self
                .store
                .put_opts(
                    &path,
                    payload.clone().into(),
                    PutOptions::from(PutMode::Create),
                )
                .await;
            match put {
                Ok(_) => {
                    let next = base + rows;
                    lock(&self.index).push(SegmentRef { base, size }, rows);
                    if let Some(p) = producer {
                        let appended = Appended {
                            seq: p.seq,
                            base,
                            next,
                        };
                        writer.producers.record(&p.producer_id, appended);
                    }
                    writer.folded_end = Some(next);
                    return Ok(self.ack(base, next, false));
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    // Lost the race for `base`: learn the new end (and its producers).
                    if self.refresh().await? <= base {
                        // Listed before the winner became visible: back off a little.
                        let wait = 5 * u64::from(attempt.min(20) + 1);
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                    }
                }
                Err(e) => return Err(self.external("append", e)),
            }
        }
        Err(Error::external(
            format!("log append {}", self.label),
            format!("gave up after {MAX_APPEND_ATTEMPTS} attempts lost to concurrent writers"),
        ))
    }

    fn ack(&self, base_offset: u64, next_offset: u64, duplicate: bool) -> AppendAck {
        AppendAck {
            partition: self.id,
            base_offset,
            next_offset,
            duplicate,
        }
    }

    /// The last sequence number `producer_id` appended here, after a fresh listing.
    pub async fn last_producer_seq(&self, producer_id: &str) -> Result<Option<u64>> {
        let mut writer = self.writer.lock().await;
        if writer.folded_end.is_some() {
            self.refresh().await?;
        }
        self.catch_up(&mut writer).await?;
        Ok(writer.producers.last_seq(producer_id))
    }
}
