//! The ledger of a sink's committed epochs, on the object store.
//!
//! `{root}/sinks/{sink id}/committed/{epoch:020}`: an empty object, written create-only
//! after the Iceberg snapshot of that epoch is committed. The table's snapshot log says
//! the same, but snapshots expire and a table can be rewritten; the ledger outlives both,
//! so an epoch is never appended twice however old it is. Zero-padded names list in
//! numeric order, so "is this epoch or a later one recorded" is one listing from an offset.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions};
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

    /// Records `epoch` as committed; recording it again is not an error.
    pub async fn record(&self, epoch: Epoch) -> Result<()> {
        let created = self
            .store
            .put_opts(
                &self.path(epoch),
                Vec::<u8>::new().into(),
                PutOptions::from(PutMode::Create),
            )
            .await;
        match created {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
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
        ledger.record(3).await.unwrap();
        ledger.record(3).await.unwrap();
        other.record(9).await.unwrap();
        for (epoch, covered) in [(0, true), (2, true), (3, true), (4, false), (9, false)] {
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
