//! A table commit below iceberg's transactions: the embedded SQL catalog's own
//! compare-and-swap of a table's metadata location.
//!
//! iceberg 0.10 builds every commit from its own actions (`fast_append`,
//! `expire_snapshots`, ...) and keeps the raw commit private, so a `replace` snapshot (a
//! compaction) cannot go through `Catalog::update_table`. It is committed the way the SQL
//! catalog commits anything: the new metadata file is written next to the old one, then
//! one `UPDATE ... WHERE metadata_location = <the location it was built on>` swaps the
//! pointer, exactly the statement of `SqlCatalog::update_table` (and of PyIceberg's
//! `SqlCatalog`). If anyone committed in between, nothing changes and the caller learns it;
//! so a swap can never lose a concurrent commit.

use iceberg::TableIdent;
use runnel_runtime::{Error, Result};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};

/// Swaps metadata locations of tables of one SQL catalog on sqlite.
#[derive(Debug, Clone)]
pub(crate) struct MetadataSwap {
    pool: SqlitePool,
    catalog_name: String,
}

impl MetadataSwap {
    /// Connects to the catalog database at `uri` (a `sqlite:` URL).
    pub async fn open(uri: &str, catalog_name: &str) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect(uri)
            .await
            .map_err(|e| Error::external("opening the Iceberg catalog database", e))?;
        Ok(MetadataSwap {
            pool,
            catalog_name: catalog_name.to_string(),
        })
    }

    /// Points `table` at the metadata file `new` if it still points at `expected`;
    /// `false` when another commit moved it first.
    pub async fn swap(&self, table: &TableIdent, expected: &str, new: &str) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE iceberg_tables
             SET metadata_location = ?, previous_metadata_location = ?
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?
               AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)
               AND metadata_location = ?",
        )
        .bind(new)
        .bind(expected)
        .bind(&self.catalog_name)
        .bind(table.namespace().join("."))
        .bind(table.name())
        .bind(expected)
        .execute(&self.pool)
        .await
        .map_err(|e| Error::external(format!("committing metadata of Iceberg table {table}"), e))?;
        Ok(updated.rows_affected() == 1)
    }
}
