//! The ledger of a sink's committed epochs, on the object store.
//!
//! `{root}/sinks/{sink id}/committed/{epoch:020}`: an object holding the writer
//! generation that committed the epoch (decimal; empty when unknown), written create-only
//! after the Iceberg snapshot of that epoch is committed. The table's snapshot log says
//! the same, but snapshots expire and a table can be rewritten; the ledger outlives both,
//! so an epoch is never appended twice however old it is. Zero-padded names list in
//! numeric order, so "is this epoch or a later one recorded" is one listing from an offset.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use runnel_runtime::{Epoch, Error, Result};

const EPOCH_DIGITS: usize = 20;

/// The committed epochs of one sink.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    sink_id: String,
}

impl Ledger {
    /// The ledger of `sink_id` (a validated name) under `{root}/sinks/`.
    pub fn new(store: Arc<dyn ObjectStore>, root: &Path, sink_id: &str) -> Self {
        let dir = root.clone().join("sinks").join(sink_id).join("committed");
        Ledger {
            store,
            dir,
            sink_id: sink_id.to_string(),
        }
    }

    fn path(&self, epoch: Epoch) -> Path {
        self.dir
            .clone()
            .join(format!("{epoch:0EPOCH_DIGITS$}").as_str())
    }

    fn error(&self, e: object_store::Error) -> Error {
        Error::external(format!("commit ledger of Iceberg sink {}", self.sink_id), e)
    }

    /// Whether `epoch` or a later one is recorded.
    pub async fn covers(&self, epoch: Epoch) -> Result<bool> {
        let listing = match epoch.checked_sub(1) {
            None => self.store.list(Some(&self.dir)),
            Some(before) => self
                .store
                .list_with_offset(Some(&self.dir), &self.path(before)),
        };
        let names: Vec<_> = listing.try_collect().await.map_err(|e| self.error(e))?;
        Ok(names
            .iter()
            .filter_map(|meta| parse_epoch(meta.location.filename()?))
            .any(|recorded| recorded >= epoch))
    }

    /// Records `epoch` as committed by writer `generation` (if known); recording it again
    /// is not an error (the first record stays).
    pub async fn record(&self, epoch: Epoch, generation: Option<u64>) -> Result<()> {
        let body = generation.map(|g| g.to_string()).unwrap_or_default();
        let created = self
            .store
            .put_opts(
                &self.path(epoch),
                body.into_bytes().into(),
                PutOptions::from(PutMode::Create),
            )
            .await;
        match created {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }
}

impl Ledger {
    /// The writer generation recorded with `epoch`: `None` when the epoch is not recorded
    /// or its record names none. Only the sinks write the ledger, so this is what a
    /// generation claimed in a table's snapshot summaries is checked against.
    pub async fn generation(&self, epoch: Epoch) -> Result<Option<u64>> {
        let bytes = match self.store.get(&self.path(epoch)).await {
            Ok(got) => got.bytes().await.map_err(|e| self.error(e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        Ok(std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.parse().ok()))
    }
}

fn parse_epoch(name: &str) -> Option<Epoch> {
    if name.len() != EPOCH_DIGITS || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    #[tokio::test]
    async fn covers_recorded_and_earlier_epochs_only() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let ledger = Ledger::new(store.clone(), &Path::from("r"), "s1");
        let other = Ledger::new(store.clone(), &Path::from("r"), "s10");
        assert!(!ledger.covers(0).await.unwrap());
        ledger.record(3, Some(7)).await.unwrap();
        ledger.record(3, Some(8)).await.unwrap();
        ledger.record(5, None).await.unwrap();
        other.record(9, Some(1)).await.unwrap();
        assert_eq!(ledger.generation(3).await.unwrap(), Some(7));
        assert_eq!(ledger.generation(5).await.unwrap(), None);
        assert_eq!(ledger.generation(9).await.unwrap(), None);
        for (epoch, covered) in [(0, true), (2, true), (3, true), (5, true), (6, false)] {
            assert_eq!(
                ledger.covers(epoch).await.unwrap(),
                covered,
                "epoch {epoch}"
            );
        }
        let listed: Vec<_> = store
            .list(None)
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .unwrap();
        assert!(listed.contains(&Path::from("r/sinks/s1/committed/00000000000000000003")));
    }
}
