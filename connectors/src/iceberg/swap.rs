//! A table commit below iceberg's transactions: the catalog's own compare-and-swap of a
//! table's metadata location (the embedded SQL catalog's conditional `UPDATE`, or the
//! object-store catalog's create-only pointer).
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

use super::store_catalog::ObjectStoreCatalog;

/// Swaps metadata locations of the tables of one catalog.
#[derive(Debug, Clone)]
pub(crate) enum MetadataSwap {
    /// The SQL catalog on sqlite.
    Sql {
        pool: SqlitePool,
        catalog_name: String,
    },
    /// The object-store catalog.
    Pointers(ObjectStoreCatalog),
}

impl MetadataSwap {
    /// Connects to the SQL catalog database at `uri` (a `sqlite:` URL).
    pub async fn open_sql(uri: &str, catalog_name: &str) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect(uri)
            .await
            .map_err(|e| Error::external("opening the Iceberg catalog database", e))?;
        Ok(MetadataSwap::Sql {
            pool,
            catalog_name: catalog_name.to_string(),
        })
    }

    /// Points `table` at the metadata file `new` if it still points at `expected`;
    /// `false` when another commit moved it first.
    pub async fn swap(&self, table: &TableIdent, expected: &str, new: &str) -> Result<bool> {
        let context = || format!("committing metadata of Iceberg table {table}");
        match self {
            MetadataSwap::Sql { pool, catalog_name } => {
                let updated = sqlx::query(
                    "UPDATE iceberg_tables
                     SET metadata_location = ?, previous_metadata_location = ?
                     WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?
                       AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)
                       AND metadata_location = ?",
                )
                .bind(new)
                .bind(expected)
                .bind(catalog_name)
                .bind(table.namespace().join("."))
                .bind(table.name())
                .bind(expected)
                .execute(pool)
                .await
                .map_err(|e| Error::external(context(), e))?;
                Ok(updated.rows_affected() == 1)
            }
            MetadataSwap::Pointers(catalog) => catalog
                .swap(table, expected, new)
                .await
                .map_err(|e| Error::external(context(), e)),
        }
    }
}
