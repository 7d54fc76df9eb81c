//! Phase 2 of the Iceberg sink: one snapshot per epoch, at most once.
//!
//! 1. The ledger records this epoch or a later one: done.
//! 2. A snapshot anywhere in the table's metadata (not only the head) carries this sink's
//!    id with this epoch or a later one: done; the ledger learns it.
//! 3. No subtask staged a file: done, without a snapshot (an idle checkpoint adds no
//!    metadata to the table).
//! 4. Otherwise one `fast_append` of every subtask's files, with the sink id and epoch in
//!    the snapshot summary, committed through [`EpochGuard`] so that steps 1 and 2 are
//!    checked again atomically with the commit; then the ledger records the epoch.
//! 5. When due, the sink's small files are compacted into a `replace` snapshot
//!    ([`compaction`]); with a snapshot retention set, snapshots beyond it are expired
//!    ([`retention`]). Both run only now that the ledger holds the epoch.
//!
//! An error from the commit leaves its outcome unknown (the catalog may have swapped the
//! metadata before the connection failed). It is resolved by reloading the table and
//! looking for the epoch (and in the ledger, for a rival's commit whose snapshot already
//! expired), never by committing again blindly: found means committed; otherwise the
//! error is returned and the runtime retries the whole commit, which starts again at
//! step 1. "A later epoch counts" also fences a stale instance: a zombie that commits an
//! old epoch after its successor committed a newer one changes nothing.
//!
//! [`retention`]: super::retention
//! [`compaction`]: super::compaction

use std::collections::HashMap;
use std::num::NonZeroUsize;

use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use runnel_runtime::{Epoch, Error, Result, Staged};

use super::catalog::IcebergCatalog;
use super::compaction::{self, COMPACTED_EPOCH_PROPERTY, Compaction};
use super::guard::EpochGuard;
use super::iceberg_error;
use super::layer::Layered;
use super::ledger::Ledger;
use super::{retention, staged};

/// Snapshot summary property naming the sink that committed the snapshot.
pub const SINK_ID_PROPERTY: &str = "runnel.sink-id";
/// Snapshot summary property holding the epoch the snapshot commits.
pub const EPOCH_PROPERTY: &str = "runnel.epoch";
/// Snapshot summary property holding the writer generation of the job instance that
/// committed it (each start of a job claims a higher one).
pub const WRITER_GENERATION_PROPERTY: &str = "runnel.writer-generation";

/// The largest value of the numeric summary `property` over the snapshots `sink_id`
/// committed to a table (every snapshot its metadata still holds).
fn max_of_own(metadata: &TableMetadata, sink_id: &str, property: &str) -> Option<u64> {
    metadata
        .snapshots()
        .filter_map(|snapshot| {
            let summary = &snapshot.summary().additional_properties;
            if summary.get(SINK_ID_PROPERTY).map(String::as_str) != Some(sink_id) {
                return None;
            }
            summary.get(property)?.parse::<u64>().ok()
        })
        .max()
}

/// The highest writer generation among the snapshots `sink_id` committed to a table.
pub(crate) fn newest_generation(metadata: &TableMetadata, sink_id: &str) -> Option<u64> {
    max_of_own(metadata, sink_id, WRITER_GENERATION_PROPERTY)
}

/// The newest epoch `sink_id` committed to a table, over every snapshot its metadata
/// still holds: its appends, and its compactions, which record the newest epoch whose
/// rows they hold (so an epoch stays known once the append it was replaced by expired).
pub(crate) fn last_committed_epoch(metadata: &TableMetadata, sink_id: &str) -> Option<Epoch> {
    let appended = max_of_own(metadata, sink_id, EPOCH_PROPERTY);
    let compacted = max_of_own(metadata, sink_id, COMPACTED_EPOCH_PROPERTY);
    appended.max(compacted)
}

/// Commits epochs of one sink into one table.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    pub catalog: IcebergCatalog,
    pub table: String,
    pub sink_id: String,
    pub ledger: Ledger,
    /// How many snapshots the table keeps after each commit; `None` keeps them all.
    pub retention: Option<NonZeroUsize>,
    /// When the sink's small files are merged; `None` never.
    pub compaction: Option<Compaction>,
}

impl Committer {
    fn holds(&self, table: &Table, epoch: Epoch) -> bool {
        last_committed_epoch(table.metadata(), &self.sink_id).is_some_and(|last| last >= epoch)
    }

    /// Commits `epoch` as the instance of writer generation `generation`, if known: an
    /// instance older than one that already committed to the table is fenced.
    pub async fn commit(
        &self,
        epoch: Epoch,
        generation: Option<u64>,
        staged: Vec<Staged>,
    ) -> Result<()> {
        if self.ledger.covers(epoch).await? {
            return Ok(());
        }
        let table = self.catalog.load_table(&self.table).await?;
        if self.holds(&table, epoch) {
            return self.ledger.record(epoch).await;
        }
        if let (Some(mine), Some(newest)) = (
            generation,
            newest_generation(table.metadata(), &self.sink_id),
        ) && newest > mine
        {
            return Err(Error::Fenced(format!(
                "Iceberg table {}: sink {} was committed to by writer generation {newest}; \
                 generation {mine} may not commit epoch {epoch}",
                self.table, self.sink_id
            )));
        }
        let mut files = Vec::new();
        for Staged { pre_commit, .. } in staged {
            files.extend(staged::decode(pre_commit.meta, table.metadata())?);
        }
        if files.is_empty() {
            return Ok(());
        }
        let count = files.len();
        let mut properties = HashMap::from([
            (SINK_ID_PROPERTY.to_string(), self.sink_id.clone()),
            (EPOCH_PROPERTY.to_string(), epoch.to_string()),
        ]);
        if let Some(generation) = generation {
            properties.insert(
                WRITER_GENERATION_PROPERTY.to_string(),
                generation.to_string(),
            );
        }
        let transaction = Transaction::new(&table);
        // Paths are unique by construction; the duplicate check would read every
        // manifest of the table on each commit.
        let append = transaction
            .fast_append()
            .with_check_duplicate(false)
            .add_data_files(files)
            .set_snapshot_properties(properties);
        let context = || format!("committing epoch {epoch} to Iceberg table {}", self.table);
        let transaction = append
            .apply(transaction)
            .map_err(iceberg_error(context()))?;
        let guard = Layered(EpochGuard {
            inner: self.catalog.catalog().as_ref(),
            sink_id: &self.sink_id,
            epoch,
            ledger: &self.ledger,
        });
        if let Err(error) = transaction.commit(&guard).await {
            // The outcome is unknown: learn it from the table, then from the ledger.
            let table = self.catalog.load_table(&self.table).await?;
            if !self.holds(&table, epoch) {
                if self.ledger.covers(epoch).await? {
                    return Ok(());
                }
                return Err(iceberg_error(context())(error));
            }
        } else {
            tracing::debug!(
                table = self.table,
                epoch,
                files = count,
                "Iceberg epoch committed"
            );
        }
        self.ledger.record(epoch).await?;
        if let Some(policy) = &self.compaction {
            compaction::compact_if_due(&self.catalog, &self.table, &self.sink_id, policy).await;
        }
        if let Some(keep) = self.retention {
            retention::expire(&self.catalog, &self.table, keep).await;
        }
        Ok(())
    }
}
