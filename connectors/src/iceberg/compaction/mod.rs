//! Table upkeep: the sink's small data files merged into larger ones, committed as one
//! `replace` snapshot.
//!
//! Every checkpoint adds a few small files (one per sink subtask), so a long-running job
//! leaves a table of thousands of files that every reader must open. After every
//! [`Compaction::every_commits`] of its commits, the sink rewrites the files it appended
//! that are smaller than [`Compaction::small_file_bytes`] into as few files as the table's
//! target size allows, as Iceberg's `rewrite_data_files` does (and the files earlier
//! compactions wrote, once there are as many of them: tiers, so rows are rewritten a
//! logarithmic number of times, not at every compaction):
//!
//! * the new snapshot's manifest list carries a manifest that *adds* the new files, the
//!   manifests that held the old files rewritten with those entries *deleted* (their
//!   sequence numbers kept) and the others as *existing*, and every untouched manifest
//!   as it was; its summary says `operation: replace`, so readers know no row changed;
//! * it is committed with the catalog's compare-and-swap on the metadata location the
//!   rewrite was planned on ([`MetadataSwap`]): if anything committed in between (an
//!   epoch of this sink, a foreign writer, another compaction) the swap fails, nothing
//!   changes, and the files written for it stay unreferenced; the next commit tries again.
//!
//! The snapshot carries the sink's id and `runnel.compacted-epoch`, the newest epoch whose
//! rows it holds (for readers and for counting commits since the last compaction), and
//! never claims an epoch of its own (no `runnel.epoch`), which keeps "one snapshot per
//! epoch" true. The sink's idempotence check believes it for that epoch only (see
//! [`super::commit`]); expired appends stay known in the ledger. Files of other writers are kept as they are: their layout is theirs.
//!
//! iceberg 0.10 has no replace action, so the manifests and the snapshot are built here
//! from its public manifest writers; only the commit itself goes below the transaction
//! API (see [`super::swap`]).

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;

use iceberg::spec::{
    DataContentType, DataFile, DataFileFormat, FormatVersion, MAIN_BRANCH, ManifestContentType,
    ManifestEntryRef, ManifestFile, ManifestStatus, Operation, Snapshot, SnapshotReference,
    SnapshotRetention, Summary, TableMetadata,
};
use iceberg::table::Table;
use iceberg::{TableRequirement, TableUpdate};
use runnel_runtime::{Ambient, Result};

use super::catalog::IcebergCatalog;
use super::commit::{EPOCH_PROPERTY, SINK_ID_PROPERTY, last_committed_epoch};
use super::raw_commit::{RawCommit, commit_raw};

mod manifests;
mod rewrite;

pub use manifests::live_data_files;
use manifests::manifests_with_entries;
use rewrite::Rewrite;

/// Snapshot summary property of a compaction: the newest epoch of the sink whose rows
/// the table held when it was planned.
pub const COMPACTED_EPOCH_PROPERTY: &str = "runnel.compacted-epoch";

/// When the sink compacts its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// Compact after this many commits of the sink since its last compaction.
    pub every_commits: NonZeroUsize,
    /// Files smaller than this are rewritten.
    pub small_file_bytes: u64,
    /// At most this many bytes of files are rewritten at once (the rows are held in
    /// memory); the rest waits for the next compaction.
    pub max_input_bytes: u64,
}

impl Default for Compaction {
    /// Every 10 commits, files under 32 MiB, at most 256 MiB at once.
    fn default() -> Self {
        Compaction {
            every_commits: NonZeroUsize::new(10).unwrap_or(NonZeroUsize::MIN),
            small_file_bytes: 32 << 20,
            max_input_bytes: 256 << 20,
        }
    }
}

/// What one compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// The `replace` snapshot.
    pub snapshot_id: i64,
    /// Data files it removed from the table.
    pub files_removed: usize,
    /// Data files it added.
    pub files_added: usize,
    /// Rows it moved (the same rows, in fewer files).
    pub rows: u64,
}

/// Commits of `sink_id` since its last compaction, counted along the current snapshot's
/// ancestry (an expired ancestor ends the count).
pub(crate) fn commits_since_compaction(metadata: &TableMetadata, sink_id: &str) -> usize {
    let mut commits = 0;
    let mut snapshot = metadata.current_snapshot();
    while let Some(current) = snapshot {
        let summary = &current.summary().additional_properties;
        if summary.get(SINK_ID_PROPERTY).map(String::as_str) == Some(sink_id) {
            if summary.contains_key(COMPACTED_EPOCH_PROPERTY) {
                break;
            }
            if summary.contains_key(EPOCH_PROPERTY) {
                commits += 1;
            }
        }
        snapshot = current
            .parent_snapshot_id()
            .and_then(|id| metadata.snapshot_by_id(id));
    }
    commits
}

/// Compacts the table if `policy` says it is due; failures are logged, not returned: a
/// compaction that does not happen loses nothing, and the next commit tries again.
pub(crate) async fn compact_if_due(
    catalog: &IcebergCatalog,
    table: &str,
    sink_id: &str,
    policy: &Compaction,
) {
    let loaded = match catalog.load_table(table).await {
        Ok(loaded) => loaded,
        Err(error) => {
            tracing::warn!(table, %error, "Iceberg compaction skipped");
            return;
        }
    };
    if commits_since_compaction(loaded.metadata(), sink_id) < policy.every_commits.get() {
        return;
    }
    match compact_table(catalog, &loaded, table, sink_id, policy).await {
        Ok(Some(done)) => tracing::debug!(
            table,
            snapshot = done.snapshot_id,
            removed = done.files_removed,
            added = done.files_added,
            rows = done.rows,
            "Iceberg table compacted"
        ),
        Ok(None) => {}
        Err(error) => tracing::warn!(table, %error, "Iceberg compaction failed"),
    }
}

/// Rewrites the small files `sink_id` wrote to table `table_name` (see the module docs).
/// `None` when there was nothing to merge, the catalog cannot swap metadata, or another
/// commit came first.
pub async fn compact(
    catalog: &IcebergCatalog,
    table_name: &str,
    sink_id: &str,
    policy: &Compaction,
) -> Result<Option<Compacted>> {
    let table = catalog.load_table(table_name).await?;
    compact_table(catalog, &table, table_name, sink_id, policy).await
}

/// [`compact`] of `table` as loaded: choose the files, write their rows anew, write the
/// manifests and manifest list of a `replace` snapshot, and swap it in.
async fn compact_table(
    catalog: &IcebergCatalog,
    table: &Table,
    table_name: &str,
    sink_id: &str,
    policy: &Compaction,
) -> Result<Option<Compacted>> {
    if catalog.metadata_swap().is_none() {
        tracing::debug!(table_name, "the catalog cannot commit a compaction");
        return Ok(None);
    }
    let metadata = table.metadata();
    let (Some(current), Some(epoch), FormatVersion::V2) = (
        metadata.current_snapshot(),
        last_committed_epoch(metadata, sink_id),
        metadata.format_version(),
    ) else {
        return Ok(None);
    };
    let loaded = manifests_with_entries(table, current).await?;
    let chosen = choose(&loaded, sink_id, policy);
    if chosen.len() < 2 {
        return Ok(None);
    }
    let snapshot_id = new_snapshot_id(metadata, catalog.ambient());
    let token = catalog.ambient().rng.next_u64();
    let rewrite = Rewrite {
        table,
        table_name,
        snapshot_id,
        sequence: metadata.next_sequence_number(),
        prefix: format!("{sink_id}-compacted-{snapshot_id}-{token:016x}"),
    };
    let (added, rows) = rewrite.data_files(&chosen).await?;
    let files_added = added.len();
    let (manifests, files_removed) = rewrite.manifests(added, loaded, &chosen, rows).await?;
    let manifest_list = rewrite
        .manifest_list(manifests, current.snapshot_id())
        .await?;
    let summary = Summary {
        operation: Operation::Replace,
        additional_properties: HashMap::from([
            (SINK_ID_PROPERTY.to_string(), sink_id.to_string()),
            (COMPACTED_EPOCH_PROPERTY.to_string(), epoch.to_string()),
            ("added-data-files".to_string(), files_added.to_string()),
            ("deleted-data-files".to_string(), files_removed.to_string()),
            ("added-records".to_string(), rows.to_string()),
            ("deleted-records".to_string(), rows.to_string()),
        ]),
    };
    let snapshot = Snapshot::builder()
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(Some(current.snapshot_id()))
        .with_sequence_number(rewrite.sequence)
        .with_timestamp_ms(catalog.ambient().clock.now_millis())
        .with_manifest_list(manifest_list)
        .with_summary(summary)
        .with_schema_id(metadata.current_schema_id())
        .build();
    if !swap_in(catalog, table_name, current.snapshot_id(), snapshot).await? {
        return Ok(None);
    }
    Ok(Some(Compacted {
        snapshot_id,
        files_removed,
        files_added,
        rows,
    }))
}

/// Makes `snapshot` the head of the main branch if it is still `parent`; false if
/// another commit came first (nothing changed then).
async fn swap_in(
    catalog: &IcebergCatalog,
    table_name: &str,
    parent: i64,
    snapshot: Snapshot,
) -> Result<bool> {
    let snapshot_id = snapshot.snapshot_id();
    let requirements = vec![TableRequirement::RefSnapshotIdMatch {
        r#ref: MAIN_BRANCH.to_string(),
        snapshot_id: Some(parent),
    }];
    let updates = vec![
        TableUpdate::AddSnapshot { snapshot },
        TableUpdate::SetSnapshotRef {
            ref_name: MAIN_BRANCH.to_string(),
            reference: SnapshotReference::new(
                snapshot_id,
                SnapshotRetention::branch(None, None, None),
            ),
        },
    ];
    let ident = IcebergCatalog::table_ident(table_name);
    match commit_raw(catalog, &ident, requirements, updates).await? {
        RawCommit::Conflict(reason) => {
            tracing::debug!(
                table_name,
                reason,
                "compaction lost the race to another commit"
            );
            Ok(false)
        }
        _ => Ok(true),
    }
}

/// The newest sequence number of a manifest holding live delete files: deletes (of
/// another engine: the sink writes none) apply to data files of that sequence number or
/// older, and rewriting such a file would drop them, resurrecting the deleted rows.
fn deletes_up_to(manifests: &[(ManifestFile, Vec<ManifestEntryRef>)]) -> Option<i64> {
    manifests
        .iter()
        .map(|(manifest, _)| manifest)
        .filter(|m| m.content == ManifestContentType::Deletes)
        .filter(|m| m.has_added_files() || m.has_existing_files())
        .map(|m| m.sequence_number)
        .max()
}

/// The paths of the live files to rewrite: data files `sink_id` wrote (their names start
/// with it), smaller than the policy's limit, up to its byte budget, that no delete file
/// may apply to (see [`deletes_up_to`]: a file as new as a delete file is kept too). Files a compaction
/// wrote are taken only once [`Compaction::every_commits`] of them are small, so that rows
/// are not rewritten at every compaction (write amplification stays logarithmic, as in
/// size-tiered merging, instead of growing with the table).
fn choose(
    manifests: &[(ManifestFile, Vec<ManifestEntryRef>)],
    sink_id: &str,
    policy: &Compaction,
) -> HashSet<String> {
    let own_prefix = format!("{sink_id}-");
    let compacted_prefix = format!("{sink_id}-compacted-");
    let deleted_up_to = deletes_up_to(manifests);
    let small: Vec<&DataFile> = manifests
        .iter()
        .flat_map(|(_, entries)| entries)
        .filter(|entry| entry.status() != ManifestStatus::Deleted)
        .filter(|entry| match (deleted_up_to, entry.sequence_number) {
            (None, _) => true,
            (Some(up_to), Some(sequence)) => sequence > up_to,
            (Some(_), None) => false,
        })
        .map(|entry| entry.data_file())
        .filter(|file| {
            file.content_type() == DataContentType::Data
                && file.file_format() == DataFileFormat::Parquet
                && file_name(file).starts_with(&own_prefix)
                && file.file_size_in_bytes() < policy.small_file_bytes
        })
        .collect();
    let (compacted, appended): (Vec<&DataFile>, Vec<&DataFile>) = small
        .into_iter()
        .partition(|file| file_name(file).starts_with(&compacted_prefix));
    let mut candidates = appended;
    if compacted.len() >= policy.every_commits.get() {
        candidates.extend(compacted);
    }
    let mut budget = policy.max_input_bytes;
    let mut chosen = HashSet::new();
    for file in candidates {
        if file.file_size_in_bytes() <= budget {
            budget -= file.file_size_in_bytes();
            chosen.insert(file.file_path().to_string());
        }
    }
    chosen
}

fn file_name(file: &DataFile) -> &str {
    file.file_path().rsplit('/').next().unwrap_or_default()
}

/// A positive snapshot id the table does not have yet.
fn new_snapshot_id(metadata: &TableMetadata, ambient: &Ambient) -> i64 {
    loop {
        let id = (ambient.rng.next_u64() >> 1) as i64;
        if id != 0 && metadata.snapshot_by_id(id).is_none() {
            return id;
        }
    }
}
