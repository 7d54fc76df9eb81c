//! The embedded partitioned log: runnel's default replayable source and a sink.
//!
//! Topics live under one object-store root (a local directory by default, see
//! [`EmbeddedLog::local`]; S3 in production) and need no server: any process holding the
//! store can append and read.
//!
//! ```text
//! {root}/log/{topic}/topic.json                          {"partitions": N, "version": 1}
//! {root}/log/{topic}/schema.arrow                        schema as an empty Arrow IPC stream
//! {root}/log/{topic}/{partition:05}/{base:020}.arrow     one append, Arrow IPC file format
//! ```
//!
//! - **Dense offsets.** Every row of a partition has an offset; segment `base` holds
//!   rows `[base, base + rows)` and the next segment starts at `base + rows`.
//! - **Durable acknowledgement.** An append is one object written with
//!   `PutMode::Create`; the call returns after the put did. The object name claims the
//!   offset range, so concurrent writers (threads or processes) cannot both take it: the
//!   loser re-lists and retries at the new end ([`partition`] has the protocol).
//! - **Idempotent producers.** An append may carry `(producer_id, seq)`; a retry of one of
//!   the last 5 appends of a producer returns the original offsets instead of appending
//!   twice; gaps are refused ([`producer`]). The pair is stored in the segment's schema
//!   metadata, so the dedup state is rebuilt after a restart from segment footers alone.
//! - **Reads from any offset**: whole segments are fetched with one GET each and
//!   decoded zero-copy ([`segment`]), then sliced.
//! - **Committing epochs.** An exactly-once sink's append ([`Topic::append_committed`])
//!   also records the checkpoint epoch that committed it, next to the producer; a read
//!   returns it per batch and [`Topic::first_offset_from_epoch`] finds where an epoch
//!   starts, so a reader can resume right after the last epoch it saw.
//!
//! Deviations from the first design, on purpose:
//! - Segments also record `runnel.row_count` in their schema metadata, so a partition's
//!   end offset needs only the last segment's footer, not its data.
//! - Refreshes list only objects after the last known segment (names are zero-padded, so
//!   name order is offset order), keeping a refresh cheap on long partitions.
//! - Producer state is rebuilt on a partition's first append (or
//!   [`Topic::last_producer_seq`]), not when a reader opens it: readers never pay for it.
//! - Appends of zero rows are refused: with a producer they would consume a sequence
//!   number without a segment to prove it.
//!
//! Handles are cheap to clone; an [`EmbeddedLog`] caches its topics so that every handle
//! of a topic shares one segment index and one append lock per partition. There is no
//! process-global state: two `EmbeddedLog`s over one store behave like two processes.

pub mod connector;
mod index;
mod local;
mod metadata;
mod names;
mod partition;
mod producer;
mod segment;
mod sink;
mod source;
mod topic;

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;
use runnel_runtime::{Error, Result};

pub use local::{SyncedLocal, SyncedLocalFileSystem};
pub use metadata::MAX_PARTITIONS;
pub use names::{MAX_TOPIC_NAME_LEN, validate_topic_name};
pub use producer::{DEDUP_WINDOW, ProducerSeq};
pub use segment::held_bytes;
pub use sink::LogSink;
pub use source::LogSource;
pub use topic::{AppendAck, ReadResult, Topic};

/// A log of topics under `{root}/log/` of an object store.
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<LogInner>,
}

struct LogInner {
    store: Arc<dyn ObjectStore>,
    root: Path,
    topics: Mutex<HashMap<String, Topic>>,
}

impl std::fmt::Debug for EmbeddedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLog")
            .field("store", &self.inner.store.to_string())
            .field("root", &self.inner.root)
            .finish()
    }
}

impl EmbeddedLog {
    /// The log under `{root}/log/` of `store` (`Path::from("")` for the store's root).
    pub fn new(store: Arc<dyn ObjectStore>, root: Path) -> Self {
        EmbeddedLog {
            inner: Arc::new(LogInner {
                store,
                root,
                topics: Mutex::default(),
            }),
        }
    }

    /// The log in a local directory (created if missing), through a
    /// [`SyncedLocalFileSystem`] so acknowledged appends are fsynced.
    pub fn local(dir: impl Into<std::path::PathBuf>) -> Result<Self> {
        let store =
            SyncedLocal::open(dir).map_err(|e| Error::external("log open local directory", e))?;
        Ok(EmbeddedLog::new(Arc::new(store), Path::from("")))
    }

    /// The object store holding the log.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    fn cached(&self, name: &str) -> Option<Topic> {
        let topics = self.inner.topics.lock().unwrap_or_else(|p| p.into_inner());
        topics.get(name).cloned()
    }

    fn cache(&self, topic: Topic) -> Topic {
        let mut topics = self.inner.topics.lock().unwrap_or_else(|p| p.into_inner());
        topics
            .entry(topic.name().to_owned())
            .or_insert(topic)
            .clone()
    }

    fn handle(&self, name: &str, schema: SchemaRef, partitions: u32) -> Topic {
        let dir = names::topic_dir(&self.inner.root, name);
        let topic = Topic::new(self.inner.store.clone(), &dir, name, schema, partitions);
        self.cache(topic)
    }

    /// Creates topic `name`, or returns it if it exists with the same partitions and
    /// fields. A different definition is an [`Error::Plan`].
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        schema: SchemaRef,
    ) -> Result<Topic> {
        validate_topic_name(name)?;
        if let Some(topic) = self.cached(name) {
            if topic.partitions() != partitions || topic.schema().fields() != schema.fields() {
                return Err(Error::Conflict(format!(
                    "topic {name} already exists with {} partitions and schema {}",
                    topic.partitions(),
                    topic.schema()
                )));
            }
            return Ok(topic);
        }
        let dir = names::topic_dir(&self.inner.root, name);
        let stored =
            metadata::create(self.inner.store.as_ref(), &dir, name, partitions, &schema).await?;
        Ok(self.handle(name, stored, partitions))
    }

    /// The existing topic `name`; an [`Error::Plan`] if there is none.
    pub async fn topic(&self, name: &str) -> Result<Topic> {
        validate_topic_name(name)?;
        if let Some(topic) = self.cached(name) {
            return Ok(topic);
        }
        let dir = names::topic_dir(&self.inner.root, name);
        match metadata::load(self.inner.store.as_ref(), &dir, name).await? {
            Some((partitions, schema)) => Ok(self.handle(name, schema, partitions)),
            None => Err(Error::NotFound(format!("topic {name} does not exist"))),
        }
    }

    /// Names of all complete topics, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        let dir = names::log_dir(&self.inner.root);
        let store = self.inner.store.as_ref();
        let listing = store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|e| Error::external("log list topics", e))?;
        let candidates = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .filter(|name| validate_topic_name(name).is_ok());
        let root = &self.inner.root;
        let checks: Vec<_> = candidates
            .map(|name| async move {
                let dir = names::topic_dir(root, &name);
                Ok::<_, Error>(metadata::exists(store, &dir, &name).await?.then_some(name))
            })
            .collect();
        let mut names: Vec<String> = futures::stream::iter(checks)
            .buffer_unordered(16)
            .try_filter_map(|name| async move { Ok(name) })
            .try_collect()
            .await?;
        names.sort_unstable();
        Ok(names)
    }
}
