//! Phase 1 of the Iceberg sink: rows of an epoch become Parquet data files.
//!
//! `write` conforms each batch to the table's schema (so a bad record fails where it
//! arrives) and keeps it in memory; the barrier of epoch `e` writes the buffered rows as
//! Parquet data files of the table and describes them in the `PreCommit`. Nothing is
//! visible until the commit adds the files to a snapshot. Rows are buffered rather than
//! streamed into a file because a file's name carries its epoch, which is known only when
//! the barrier arrives.
//!
//! File names are `{sink id}-{epoch:020}-{token}-{subtask:05}-{n:05}.parquet` under the
//! table's data directory. The token is random per opened writer: a restarted job writes
//! the same epoch again under new names, and an object is never overwritten (iceberg
//! refuses a path it already has, but only after the new file replaced the old one).

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use iceberg::spec::{DataFile, DataFileFormat};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter as _, IcebergWriterBuilder as _};
use runnel_runtime::{Epoch, Error, PreCommit, Result, SinkWriter};

use super::iceberg_error;
use super::schema::Conformer;
use super::staged;

/// The writer of one sink subtask.
pub(super) struct IcebergWriter {
    table: Table,
    table_name: String,
    conformer: Conformer,
    /// `{sink id}`, then `{token}-{subtask:05}` around the epoch in file names.
    sink_id: String,
    writer_id: String,
    buffered: Vec<RecordBatch>,
}

impl IcebergWriter {
    /// `token` is drawn per opened writer: a restarted job writes the same epoch again
    /// under new names.
    pub fn new(
        table: Table,
        table_name: String,
        conformer: Conformer,
        sink_id: String,
        subtask: usize,
        token: u64,
    ) -> Self {
        IcebergWriter {
            table,
            table_name,
            conformer,
            sink_id,
            writer_id: format!("{token:016x}-{subtask:05}"),
            buffered: Vec::new(),
        }
    }

    /// Writes the buffered rows as data files of `epoch`, without taking them.
    async fn write_files(&self, epoch: Epoch) -> Result<serde_json::Value> {
        let prefix = format!("{}-{epoch:020}-{}", self.sink_id, self.writer_id);
        let files = write_data_files(&self.table, &self.table_name, prefix, &self.buffered).await?;
        staged::encode(files, self.table.metadata())
    }
}

/// Writes `batches` (already in the table's schema) as Parquet data files of `table`,
/// named `{prefix}-{n:05}.parquet` under its data directory, rolling to a new file at
/// the default target size. The files belong to no snapshot until a commit adds them.
pub(super) async fn write_data_files(
    table: &Table,
    table_name: &str,
    prefix: String,
    batches: &[RecordBatch],
) -> Result<Vec<DataFile>> {
    let error = || iceberg_error(format!("writing Iceberg table {table_name}"));
    let metadata = table.metadata();
    // Files go under the table's location only, whatever its properties say (a catalog
    // client may have set `write.data.path` anywhere).
    super::locations::check_table_properties(metadata.properties(), metadata.location())
        .map_err(|reason| Error::Plan(format!("Iceberg table {table_name}: {reason}")))?;
    let properties = metadata.table_properties().map_err(error())?;
    let parquet =
        ParquetWriterBuilder::from_table_properties(&properties, metadata.current_schema().clone());
    let locations = DefaultLocationGenerator::new(metadata).map_err(error())?;
    let names = DefaultFileNameGenerator::new(prefix, None, DataFileFormat::Parquet);
    let rolling = RollingFileWriterBuilder::new_with_default_file_size(
        parquet,
        table.file_io().clone(),
        locations,
        names,
    );
    let mut writer = DataFileWriterBuilder::new(rolling)
        .build(None)
        .await
        .map_err(error())?;
    for batch in batches {
        writer.write(batch.clone()).await.map_err(error())?;
    }
    writer.close().await.map_err(error())
}

#[async_trait]
impl SinkWriter for IcebergWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() > 0 {
            self.buffered.push(self.conformer.conform(&batch)?);
        }
        Ok(())
    }

    async fn pre_commit(&mut self, epoch: Epoch) -> Result<PreCommit> {
        if self.buffered.is_empty() {
            return Ok(PreCommit::default());
        }
        let meta = self.write_files(epoch).await?;
        self.buffered.clear();
        Ok(PreCommit {
            meta,
            batches: Vec::new(),
        })
    }

    async fn finish(&mut self) -> Result<()> {
        if self.buffered.is_empty() {
            Ok(())
        } else {
            Err(Error::Internal(format!(
                "Iceberg sink into {}: rows written after the final barrier",
                self.table_name
            )))
        }
    }
}
