//! [`IcebergSink`]: the runtime's `Sink` over one Iceberg table.

use std::num::NonZeroUsize;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use iceberg::table::Table;
use runnel_runtime::checkpoint::layout::validate_name;
use runnel_runtime::{Epoch, Result, Sink, SinkWriter, Staged};

use super::catalog::IcebergCatalog;
use super::commit::Committer;
use super::compaction::Compaction;
use super::ledger::Ledger;
use super::schema::{Conformer, check_compatible, table_schema};
use super::writer::IcebergWriter;

/// Appends a dataflow's rows to an Iceberg table, exactly once (see the module docs).
///
/// The runtime drives it; by hand, one epoch looks like this:
///
/// ```
/// # use std::sync::Arc;
/// # use arrow::array::Int64Array;
/// # use arrow::datatypes::{DataType, Field, Schema};
/// # use arrow::record_batch::RecordBatch;
/// # use runnel_connectors::iceberg::{IcebergCatalog, IcebergSink};
/// # use runnel_runtime::{Sink, Staged};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system()).await?;
/// let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
/// let sink = IcebergSink::new(catalog, "out", "job.sink", schema.clone()).await?;
/// let mut writer = sink.open(0, 1).await?;
/// writer.write(RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))])?).await?;
/// let pre_commit = writer.pre_commit(1).await?; // the barrier of epoch 1: Parquet written
/// let staged = vec![Staged { subtask: 0, pre_commit }];
/// sink.commit(1, 0, staged.clone()).await?; // the checkpoint of epoch 1 is durable
/// sink.commit(1, 0, staged).await?; // again after a restart: no effect
/// assert_eq!(sink.table().await?.metadata().snapshots().len(), 1);
/// # Ok::<_, runnel_runtime::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct IcebergSink {
    committer: Committer,
    /// The table as loaded or created, with the schema every writer writes.
    table: Table,
    conformer: Conformer,
}

impl IcebergSink {
    /// A sink into table `table` of namespace `default`, created with the stream's
    /// `schema` if it does not exist (an existing table must have the same columns).
    ///
    /// `sink_id` names this sink in snapshot summaries and in its commit ledger. It must
    /// stay the same across restarts and rescaling of the job (e.g. `"{job}.{sink node}"`),
    /// must not be shared by two sinks of one table, and must not be reused by a job whose
    /// epochs start over: epochs up to the last one it recorded are skipped. Table name
    /// and sink id are limited to `[A-Za-z0-9._-]` (an [`Error::Plan`] otherwise), as are
    /// the column types to those Iceberg holds.
    ///
    /// [`Error::Plan`]: runnel_runtime::Error::Plan
    pub async fn new(
        catalog: IcebergCatalog,
        table: &str,
        sink_id: &str,
        schema: SchemaRef,
    ) -> Result<Self> {
        validate_name("table", table)?;
        validate_name("sink", sink_id)?;
        let wanted = table_schema(&schema, table)?;
        let ledger = Ledger::new(catalog.store().clone(), catalog.root(), sink_id);
        refuse_a_dropped_table(&catalog, table, sink_id, &ledger).await?;
        let (loaded, created) = catalog.load_or_create_table(table, wanted).await?;
        if !created {
            check_compatible(loaded.metadata().current_schema(), &schema, table)?;
        }
        let conformer = Conformer::new(loaded.metadata().current_schema())?;
        Ok(IcebergSink {
            committer: Committer {
                catalog,
                table: table.to_string(),
                sink_id: sink_id.to_string(),
                ledger,
                retention: None,
                compaction: Some(Compaction::default()),
            },
            table: loaded,
            conformer,
        })
    }

    /// Keeps only the `keep` newest snapshots of the table: after each commit the older
    /// ones are expired (see the `retention` module). By default every snapshot is kept.
    ///
    /// Epochs whose snapshots expired stay committed exactly once: the sink's ledger
    /// remembers them. Time travel reaches back `keep` snapshots, counting those of other
    /// writers of the table.
    #[must_use]
    pub fn with_snapshot_retention(mut self, keep: NonZeroUsize) -> Self {
        self.committer.retention = Some(keep);
        self
    }

    /// When to merge the sink's small files ([`Compaction`]; by default every 10 commits,
    /// files under 32 MiB), or `None` to never compact. Compaction needs a catalog that
    /// can commit a `replace` snapshot (the embedded one); with another catalog it does
    /// nothing.
    #[must_use]
    pub fn with_compaction(mut self, policy: Option<Compaction>) -> Self {
        self.committer.compaction = policy;
        self
    }

    /// The table as it is now in the catalog.
    pub async fn table(&self) -> Result<Table> {
        self.committer
            .catalog
            .load_table(&self.committer.table)
            .await
    }

    /// The sink's id, as recorded in the snapshots it commits.
    pub fn sink_id(&self) -> &str {
        &self.committer.sink_id
    }
}

/// A sink whose ledger records commits writes a table that exists: if it is gone, it was
/// dropped while the sink wrote it, and creating it afresh would silently start over
/// with an empty table. An [`Error::NotFound`](runnel_runtime::Error::NotFound) instead,
/// which fails the job with that message rather than restarting it.
async fn refuse_a_dropped_table(
    catalog: &IcebergCatalog,
    table: &str,
    sink_id: &str,
    ledger: &Ledger,
) -> Result<()> {
    let exists = catalog
        .catalog()
        .table_exists(&IcebergCatalog::table_ident(table))
        .await
        .map_err(|e| {
            runnel_runtime::Error::external(format!("checking Iceberg table {table}"), e)
        })?;
    if !exists && ledger.covers(0).await? {
        return Err(runnel_runtime::Error::NotFound(format!(
            "Iceberg table {table} was dropped while sink {sink_id} wrote it (its commit \
             ledger records epochs)"
        )));
    }
    Ok(())
}

#[async_trait]
impl Sink for IcebergSink {
    async fn open(&self, subtask: usize, _parallelism: usize) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(IcebergWriter::new(
            self.table.clone(),
            self.committer.table.clone(),
            self.conformer.clone(),
            self.committer.sink_id.clone(),
            subtask,
            self.committer.catalog.ambient().rng.next_u64(),
        )))
    }

    /// Generation 0 (a job without checkpoints, or a commit by hand) is neither recorded
    /// nor checked against the generations that committed before.
    async fn commit(&self, epoch: Epoch, generation: u64, staged: Vec<Staged>) -> Result<()> {
        let generation = (generation > 0).then_some(generation);
        self.committer.commit(epoch, generation, staged).await
    }
}
