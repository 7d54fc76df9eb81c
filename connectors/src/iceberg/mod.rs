//! The Iceberg sink: a dataflow's rows appended to an Iceberg v2 table exactly once.
//!
//! One sink writes one table (Parquet data files, unpartitioned, schema from the stream);
//! the embedded default catalog is Iceberg's SQL catalog on sqlite in the data directory
//! ([`IcebergCatalog::embedded`]), so PyIceberg, Spark, Trino or DuckDB read the tables.
//!
//! **Phase 1** (`SinkWriter::pre_commit`, in every subtask at the barrier of epoch `e`):
//! the rows written since the previous barrier become Parquet files under the table's data
//! directory, at names no other writer, epoch or restart uses; the `PreCommit` describes
//! the files. Nothing is visible yet.
//!
//! **Phase 2** (`Sink::commit`, once the checkpoint of `e` is durable, and again after a
//! restart): one snapshot with every subtask's files, its summary carrying the sink id
//! (`runnel.sink-id`) and the epoch (`runnel.epoch`). It is safe to repeat: an epoch the
//! table's snapshots or the sink's ledger (`{root}/sinks/{sink id}/committed/{epoch:020}`)
//! already hold, or any earlier one, is skipped, and the check and the commit are one
//! atomic step against the catalog. So a crash between the phases, a repeated commit after
//! a restart, or a stale instance committing late neither loses nor duplicates rows.
//! Files staged for an epoch that never got a checkpoint stay unreferenced (orphans that a
//! table maintenance job may delete).
//!
//! Phase 1 lives in [`writer`], phase 2 in [`commit`] and [`guard`]; table upkeep, options
//! of the sink, in [`compaction`] (small files merged into a `replace` snapshot, every 10
//! commits by default) and [`retention`] (snapshot expiry).

mod catalog;
mod commit;
mod compaction;
pub mod connector;
mod guard;
mod layer;
mod ledger;
pub mod locations;
mod object_io;
mod raw_commit;
mod read;
mod retention;
mod schema;
mod sink;
mod staged;
mod store_catalog;
mod swap;
mod writer;

pub use catalog::{CATALOG_DB, CATALOG_NAME, IcebergCatalog, NAMESPACE, WAREHOUSE_DIR};
pub use commit::{EPOCH_PROPERTY, SINK_ID_PROPERTY, WRITER_GENERATION_PROPERTY};
pub use compaction::{COMPACTED_EPOCH_PROPERTY, Compacted, Compaction, compact, live_data_files};
pub use object_io::{ObjectStoreStorage, ObjectStoreStorageFactory};
pub use raw_commit::{RawCommit, commit_raw};
pub use read::read_table;
pub use sink::IcebergSink;
pub use store_catalog::ObjectStoreCatalog;

use runnel_runtime::Error;

/// Wraps an error of the iceberg crate with what the sink was doing. The catalog and the
/// files are outside runnel, so it is external (the runtime's restart retries it).
fn iceberg_error(context: impl Into<String>) -> impl FnOnce(iceberg::Error) -> Error {
    let context = context.into();
    move |e| Error::external(context, e)
}

#[cfg(test)]
mod tests;
