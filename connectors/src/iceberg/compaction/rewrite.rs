//! The files of one compaction: the chosen files' rows in new data files, the manifests
//! that add those and delete the old ones, and the manifest list of the new snapshot.

use std::collections::HashSet;

use arrow::record_batch::RecordBatch;
use iceberg::io::FileIO;
use iceberg::spec::{DataFile, DataFileFormat, ManifestEntryRef, ManifestFile, ManifestListWriter};
use iceberg::table::Table;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use runnel_runtime::{Error, Result};

use super::super::iceberg_error;
use super::super::schema::Conformer;
use super::super::writer::write_data_files;
use super::manifests::manifest_writer;

/// One compaction's snapshot in the making; every file it writes is named from `prefix`.
pub(super) struct Rewrite<'a> {
    pub(super) table: &'a Table,
    pub(super) table_name: &'a str,
    pub(super) snapshot_id: i64,
    pub(super) sequence: i64,
    pub(super) prefix: String,
}

impl Rewrite<'_> {
    fn error(&self) -> impl Fn(iceberg::Error) -> Error + '_ {
        move |e| Error::external(format!("compacting Iceberg table {}", self.table_name), e)
    }

    /// The rows of the `chosen` files, written as new data files; the files and the
    /// number of rows.
    pub(super) async fn data_files(
        &self,
        chosen: &HashSet<String>,
    ) -> Result<(Vec<DataFile>, u64)> {
        let conformer = Conformer::new(self.table.metadata().current_schema())?;
        let mut batches = Vec::new();
        let mut rows = 0;
        for path in chosen {
            for batch in read_parquet(self.table.file_io(), path).await? {
                rows += batch.num_rows() as u64;
                batches.push(conformer.conform(&batch)?);
            }
        }
        let added =
            write_data_files(self.table, self.table_name, self.prefix.clone(), &batches).await?;
        Ok((added, rows))
    }

    fn manifest_path(&self, n: usize) -> String {
        let location = self.table.metadata().location();
        let prefix = &self.prefix;
        format!("{location}/metadata/{prefix}-m{n}.{}", DataFileFormat::Avro)
    }

    /// The new snapshot's manifests: one adding `added`, each manifest that held a
    /// `chosen` file rewritten with it deleted (sequence numbers kept) and its other
    /// entries existing, the untouched ones as they were. Also the number of files
    /// deleted; fails if the added files do not hold exactly `rows` rows.
    pub(super) async fn manifests(
        &self,
        added: Vec<DataFile>,
        loaded: Vec<(ManifestFile, Vec<ManifestEntryRef>)>,
        chosen: &HashSet<String>,
        rows: u64,
    ) -> Result<(Vec<ManifestFile>, usize)> {
        let error = self.error();
        let mut manifests: Vec<ManifestFile> = Vec::new();
        let mut writer = manifest_writer(self.table, self.manifest_path(0), self.snapshot_id)?;
        let mut added_records = 0;
        for file in added {
            added_records += file.record_count();
            writer.add_file(file, self.sequence).map_err(&error)?;
        }
        manifests.push(writer.write_manifest_file().await.map_err(&error)?);
        if added_records != rows {
            return Err(Error::Internal(format!(
                "Iceberg table {}: compaction read {rows} rows but wrote {added_records}",
                self.table_name
            )));
        }
        let mut removed = 0;
        for (n, (manifest, entries)) in loaded.into_iter().enumerate() {
            if !entries.iter().any(|e| chosen.contains(e.file_path())) {
                manifests.push(manifest);
                continue;
            }
            let path = self.manifest_path(n + 1);
            let mut writer = manifest_writer(self.table, path, self.snapshot_id)?;
            for entry in entries.iter().filter(|e| e.is_alive()) {
                let file = entry.data_file().clone();
                let (Some(data_sequence), Some(added_by)) =
                    (entry.sequence_number, entry.snapshot_id)
                else {
                    return Err(Error::Internal(format!(
                        "Iceberg table {}: a committed manifest entry without its sequence \
                         number or snapshot",
                        self.table_name
                    )));
                };
                let file_sequence = entry.file_sequence_number;
                if chosen.contains(entry.file_path()) {
                    removed += 1;
                    writer.add_delete_file(file, data_sequence, file_sequence)
                } else {
                    writer.add_existing_file(file, added_by, data_sequence, file_sequence)
                }
                .map_err(&error)?;
            }
            manifests.push(writer.write_manifest_file().await.map_err(&error)?);
        }
        Ok((manifests, removed))
    }

    /// Writes the manifest list of the new snapshot, child of `parent`; its path.
    pub(super) async fn manifest_list(
        &self,
        manifests: Vec<ManifestFile>,
        parent: i64,
    ) -> Result<String> {
        let error = self.error();
        let location = self.table.metadata().location();
        let (id, prefix) = (self.snapshot_id, &self.prefix);
        let path = format!(
            "{location}/metadata/snap-{id}-0-{prefix}.{}",
            DataFileFormat::Avro
        );
        let output = self
            .table
            .file_io()
            .new_output(path.clone())
            .map_err(&error)?;
        let output = output.writer().await.map_err(&error)?;
        let mut list = ManifestListWriter::v2(output, id, Some(parent), self.sequence);
        list.add_manifests(manifests.into_iter()).map_err(&error)?;
        list.close().await.map_err(&error)?;
        Ok(path)
    }
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
