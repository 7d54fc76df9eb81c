//! Reading a snapshot's manifests with their entries, and writing new ones.

use iceberg::spec::{
    DataFile, ManifestContentType, ManifestEntryRef, ManifestFile, ManifestWriter,
    ManifestWriterBuilder, SnapshotRef,
};
use iceberg::table::Table;
use runnel_runtime::Result;

use super::super::iceberg_error;

/// A manifest writer for data files of `table`, at `path`, added by snapshot
/// `snapshot_id`.
pub(super) fn manifest_writer(
    table: &Table,
    path: String,
    snapshot_id: i64,
) -> Result<ManifestWriter> {
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

/// The manifests of `snapshot`, each with its entries (none for delete manifests, which
/// the sink never writes and compaction keeps as they are).
pub(super) async fn manifests_with_entries(
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
