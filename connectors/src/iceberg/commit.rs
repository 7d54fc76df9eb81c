//! Phase 2 of the Iceberg sink: one snapshot per epoch, at most once.
//!
//! 1. The ledger records this epoch or a later one: done.
//! 2. A snapshot anywhere in the table's metadata (not only the head) carries this sink's
//!    id with this very epoch: done; the ledger learns it (see *What the table is trusted
//!    for* below).
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
//! step 1. "A later epoch counts" (in the ledger) also fences a stale instance: a zombie
//! that commits an old epoch after its successor committed a newer one changes nothing.
//!
//! # What the table is trusted for
//!
//! Anyone who can commit to the table can write `runnel.*` keys into a snapshot summary
//! (another engine on the same catalog, a REST client); only the sinks write the ledger.
//! So the ledger is the record, and the table is believed only for what the ledger
//! cannot know yet: the epoch a sink committed but did not record before it crashed.
//! That epoch is the one the restarted job commits again (its checkpoint is the newest
//! durable one), so a snapshot's epoch counts only when it is *exactly* the epoch being
//! committed. A forged snapshot claiming a huge epoch therefore skips nothing (before,
//! every later epoch was skipped), and one that guesses the next epoch costs at most
//! that epoch. A compaction's `runnel.compacted-epoch` counts the same way: with the
//! ledger lost and the appends expired, the restart's epoch (the newest, which the
//! newest compaction names) is still found.
//!
//! A writer generation in a summary fences this instance only when the ledger's record
//! of that snapshot's epoch names the same newer generation (sinks record their
//! generation with each epoch): a forged huge generation fences nothing.
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

/// The `(epoch, generation)` of every snapshot that claims to be `sink_id`'s and names
/// a writer generation above `mine`, highest generation first (unverified claims).
fn newer_generation_claims(
    metadata: &TableMetadata,
    sink_id: &str,
    mine: u64,
) -> Vec<(Epoch, u64)> {
    let mut claims: Vec<(Epoch, u64)> = metadata
        .snapshots()
        .filter_map(|snapshot| {
            let summary = &snapshot.summary().additional_properties;
            if summary.get(SINK_ID_PROPERTY).map(String::as_str) != Some(sink_id) {
                return None;
            }
            let epoch = summary.get(EPOCH_PROPERTY)?.parse().ok()?;
            let generation: u64 = summary.get(WRITER_GENERATION_PROPERTY)?.parse().ok()?;
            (generation > mine).then_some((epoch, generation))
        })
        .collect();
    claims.sort_by_key(|&(_, generation)| std::cmp::Reverse(generation));
    claims
}

/// Whether a snapshot of `sink_id` claims to hold exactly `epoch`: an append of it, or a
/// compaction whose newest epoch it is (see the module docs for why only that epoch is
/// believed).
pub(crate) fn claims_epoch(metadata: &TableMetadata, sink_id: &str, epoch: Epoch) -> bool {
    metadata.snapshots().any(|snapshot| {
        let summary = &snapshot.summary().additional_properties;
        let claims = |property: &str| {
            summary.get(property).and_then(|e| e.parse::<Epoch>().ok()) == Some(epoch)
        };
        summary.get(SINK_ID_PROPERTY).map(String::as_str) == Some(sink_id)
            && (claims(EPOCH_PROPERTY) || claims(COMPACTED_EPOCH_PROPERTY))
    })
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
        claims_epoch(table.metadata(), &self.sink_id, epoch)
    }

    /// A newer writer generation that committed to the table, as the ledger confirms it.
    async fn newer_generation(&self, table: &Table, mine: u64) -> Result<Option<u64>> {
        let mut checked = std::collections::HashSet::new();
        for (epoch, claimed) in newer_generation_claims(table.metadata(), &self.sink_id, mine) {
            if !checked.insert(epoch) {
                continue;
            }
            if self.ledger.generation(epoch).await? == Some(claimed) {
                return Ok(Some(claimed));
            }
        }
        Ok(None)
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
            return self.ledger.record(epoch, generation).await;
        }
        if let Some(mine) = generation
            && let Some(newest) = self.newer_generation(&table, mine).await?
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
        self.ledger.record(epoch, generation).await?;
        if let Some(policy) = &self.compaction {
            compaction::compact_if_due(&self.catalog, &self.table, &self.sink_id, policy).await;
        }
        if let Some(keep) = self.retention {
            retention::expire(&self.catalog, &self.table, keep).await;
        }
        Ok(())
    }
}
