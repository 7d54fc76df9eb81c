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
//! The idempotence check of the sink reads it: the snapshot carries the sink's id and
//! `runnel.compacted-epoch`, the newest epoch whose rows it holds, so an epoch stays
//! "committed" after compaction even once the appends it replaced have expired, and it
//! never claims an epoch of its own (no `runnel.epoch`), which keeps "one snapshot per
//! epoch" true. Files of other writers are kept as they are: their layout is theirs.
//!
//! iceberg 0.10 has no replace action, so the manifests and the snapshot are built here
//! from its public manifest writers; only the commit itself goes below the transaction
//! API (see [`super::swap`]).

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;

use arrow::record_batch::RecordBatch;
use iceberg::io::FileIO;
use iceberg::spec::{
    DataContentType, DataFile, DataFileFormat, FormatVersion, MAIN_BRANCH, ManifestContentType,
    ManifestEntryRef, ManifestFile, ManifestListWriter, ManifestStatus, ManifestWriter,
    ManifestWriterBuilder, Operation, Snapshot, SnapshotRef, SnapshotReference, SnapshotRetention,
    Summary, TableMetadata,
};
use iceberg::table::Table;
use iceberg::{TableRequirement, TableUpdate};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use runnel_runtime::{Ambient, Error, Result};

use super::catalog::IcebergCatalog;
use super::commit::{EPOCH_PROPERTY, SINK_ID_PROPERTY, last_committed_epoch};
use super::iceberg_error;
use super::raw_commit::{RawCommit, commit_raw};
use super::schema::Conformer;
use super::writer::write_data_files;

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

/// [`compact`] of `table` as loaded.
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
    let error = || iceberg_error(format!("compacting Iceberg table {table_name}"));
    let file_io = table.file_io();
    let loaded = manifests_with_entries(table, current).await?;
    let chosen = choose(&loaded, sink_id, policy);
    if chosen.len() < 2 {
        return Ok(None);
    }

    let conformer = Conformer::new(metadata.current_schema())?;
    let mut batches = Vec::new();
    let mut rows = 0;
    for path in &chosen {
        for batch in read_parquet(file_io, path).await? {
            rows += batch.num_rows() as u64;
            batches.push(conformer.conform(&batch)?);
        }
    }
    let snapshot_id = new_snapshot_id(metadata, catalog.ambient());
    let sequence = metadata.next_sequence_number();
    let token = catalog.ambient().rng.next_u64();
    let prefix = format!("{sink_id}-compacted-{snapshot_id}-{token:016x}");
    let added = write_data_files(table, table_name, prefix.clone(), &batches).await?;
    let files_added = added.len();

    let manifest_path = |n: usize| {
        format!(
            "{}/metadata/{prefix}-m{n}.{}",
            metadata.location(),
            DataFileFormat::Avro
        )
    };
    let mut new_manifests: Vec<ManifestFile> = Vec::new();
    let mut writer = manifest_writer(table, manifest_path(0), snapshot_id)?;
    let mut added_records = 0;
    for file in added {
        added_records += file.record_count();
        writer.add_file(file, sequence).map_err(error())?;
    }
    new_manifests.push(writer.write_manifest_file().await.map_err(error())?);
    let mut removed = 0;
    for (n, (manifest, entries)) in loaded.into_iter().enumerate() {
        if !entries.iter().any(|e| chosen.contains(e.file_path())) {
            new_manifests.push(manifest);
            continue;
        }
        let mut writer = manifest_writer(table, manifest_path(n + 1), snapshot_id)?;
        for entry in entries.iter().filter(|e| e.is_alive()) {
            let file = entry.data_file().clone();
            let (Some(data_sequence), Some(added_by)) = (entry.sequence_number, entry.snapshot_id)
            else {
                return Err(Error::Internal(format!(
                    "Iceberg table {table_name}: a committed manifest entry without its \
                     sequence number or snapshot"
                )));
            };
            if chosen.contains(entry.file_path()) {
                removed += 1;
                writer
                    .add_delete_file(file, data_sequence, entry.file_sequence_number)
                    .map_err(error())?;
            } else {
                writer
                    .add_existing_file(file, added_by, data_sequence, entry.file_sequence_number)
                    .map_err(error())?;
            }
        }
        new_manifests.push(writer.write_manifest_file().await.map_err(error())?);
    }
    if added_records != rows {
        return Err(Error::Internal(format!(
            "Iceberg table {table_name}: compaction read {rows} rows but wrote {added_records}"
        )));
    }

    let list_path = format!(
        "{}/metadata/snap-{snapshot_id}-0-{prefix}.{}",
        metadata.location(),
        DataFileFormat::Avro
    );
    let list_output = file_io
        .new_output(list_path.clone())
        .map_err(error())?
        .writer()
        .await
        .map_err(error())?;
    let mut list = ManifestListWriter::v2(
        list_output,
        snapshot_id,
        Some(current.snapshot_id()),
        sequence,
    );
    list.add_manifests(new_manifests.into_iter())
        .map_err(error())?;
    list.close().await.map_err(error())?;

    let summary = Summary {
        operation: Operation::Replace,
        additional_properties: HashMap::from([
            (SINK_ID_PROPERTY.to_string(), sink_id.to_string()),
            (COMPACTED_EPOCH_PROPERTY.to_string(), epoch.to_string()),
            ("added-data-files".to_string(), files_added.to_string()),
            ("deleted-data-files".to_string(), removed.to_string()),
            ("added-records".to_string(), rows.to_string()),
            ("deleted-records".to_string(), rows.to_string()),
        ]),
    };
    let snapshot = Snapshot::builder()
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(Some(current.snapshot_id()))
        .with_sequence_number(sequence)
        .with_timestamp_ms(catalog.ambient().clock.now_millis())
        .with_manifest_list(list_path)
        .with_summary(summary)
        .with_schema_id(metadata.current_schema_id())
        .build();
    let requirements = vec![TableRequirement::RefSnapshotIdMatch {
        r#ref: MAIN_BRANCH.to_string(),
        snapshot_id: Some(current.snapshot_id()),
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
    if let RawCommit::Conflict(reason) = commit_raw(catalog, &ident, requirements, updates).await? {
        tracing::debug!(
            table_name,
            reason,
            "compaction lost the race to another commit"
        );
        return Ok(None);
    }
    Ok(Some(Compacted {
        snapshot_id,
        files_removed: removed,
        files_added,
        rows,
    }))
}

/// The paths of the live files to rewrite: data files `sink_id` wrote (their names start
/// with it), smaller than the policy's limit, up to its byte budget. Files a compaction
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
    let small: Vec<&DataFile> = manifests
        .iter()
        .flat_map(|(_, entries)| entries)
        .filter(|entry| entry.status() != ManifestStatus::Deleted)
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

fn manifest_writer(table: &Table, path: String, snapshot_id: i64) -> Result<ManifestWriter> {
    let metadata = table.metadata();
    let output = table
        .file_io()
        .new_output(path)
        .map_err(iceberg_error("writing an Iceberg manifest"))?;
    Ok(ManifestWriterBuilder::new(
        output,
        Some(snapshot_id),
        metadata.current_schema().clone(),
        metadata.default_partition_spec().as_ref().clone(),
    )
    .build_v2_data())
}

/// Every row of a Parquet data file.
async fn read_parquet(file_io: &FileIO, path: &str) -> Result<Vec<RecordBatch>> {
    let bytes = file_io
        .new_input(path)
        .map_err(iceberg_error(format!("opening {path}")))?
        .read()
        .await
        .map_err(iceberg_error(format!("reading {path}")))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| Error::external(format!("reading {path}"), e))?;
    reader
        .map(|batch| batch.map_err(|e| Error::external(format!("reading {path}"), e)))
        .collect()
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

/// The manifests of `snapshot`, each with its entries (none for delete manifests, which
/// the sink never writes and compaction keeps as they are).
async fn manifests_with_entries(
    table: &Table,
    snapshot: &SnapshotRef,
) -> Result<Vec<(ManifestFile, Vec<ManifestEntryRef>)>> {
    let error = || iceberg_error("reading Iceberg manifests");
    let list = table
        .manifest_list_reader(snapshot)
        .load()
        .await
        .map_err(error())?;
    let manifests: Vec<ManifestFile> = list.entries().to_vec();
    let mut loaded = Vec::with_capacity(manifests.len());
    for manifest in manifests {
        let entries = match manifest.content {
            ManifestContentType::Data => manifest
                .load_manifest(table.file_io())
                .await
                .map_err(error())?
                .entries()
                .to_vec(),
            ManifestContentType::Deletes => Vec::new(),
        };
        loaded.push((manifest, entries));
    }
    Ok(loaded)
}

/// Data files of `table`'s current snapshot, for tests and figures.
pub async fn live_data_files(table: &Table) -> Result<Vec<DataFile>> {
    let Some(current) = table.metadata().current_snapshot() else {
        return Ok(Vec::new());
    };
    let manifests = manifests_with_entries(table, current).await?;
    Ok(manifests
        .iter()
        .flat_map(|(_, entries)| entries)
        .filter(|e| e.is_alive())
        .map(|e| e.data_file().clone())
        .collect())
}
