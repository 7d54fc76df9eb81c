//! A table commit below iceberg's transactions: the catalog's own compare-and-swap of a
//! table's metadata location (the embedded SQL catalog's conditional `UPDATE`, or the
//! object-store catalog's create-only pointer), or a REST catalog's commit endpoint.
//!
//! iceberg 0.10 builds every commit from its own actions (`fast_append`,
//! `expire_snapshots`, ...) and keeps the raw commit private, so a `replace` snapshot (a
//! compaction) cannot go through `Catalog::update_table`. It is committed the way the SQL
//! catalog commits anything: the new metadata file is written next to the old one, then
//! one `UPDATE ... WHERE metadata_location = <the location it was built on>` swaps the
//! pointer, exactly the statement of `SqlCatalog::update_table` (and of PyIceberg's
//! `SqlCatalog`). If anyone committed in between, nothing changes and the caller learns it;
//! so a swap can never lose a concurrent commit.

use std::sync::Arc;

use iceberg::{TableIdent, TableRequirement, TableUpdate};
use runnel_runtime::{Error, Result};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use tokio::sync::OnceCell;

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
    /// A REST catalog: it applies commits itself ([`RestCommits`]); there is no pointer
    /// to swap.
    Rest(RestCommits),
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
            MetadataSwap::Rest(_) => Err(Error::Internal(format!(
                "{}: a REST catalog takes requirements and updates, not metadata files",
                context()
            ))),
        }
    }
}

/// Commits sent to a REST catalog's commit endpoint (`POST .../tables/{table}` with the
/// requirements and updates): the catalog checks and applies them atomically, and answers
/// 409 when a requirement does not hold.
#[derive(Debug, Clone)]
pub(crate) struct RestCommits {
    client: reqwest::Client,
    uri: String,
    /// The catalog's path prefix, read from its configuration once.
    prefix: Arc<OnceCell<String>>,
}

impl RestCommits {
    pub fn new(uri: &str) -> Self {
        RestCommits {
            client: reqwest::Client::new(),
            uri: uri.trim_end_matches('/').to_string(),
            prefix: Arc::default(),
        }
    }

    /// The path prefix the catalog's configuration asks for, if any (read once).
    async fn prefix(&self) -> Result<&str> {
        self.prefix
            .get_or_try_init(|| self.read_prefix())
            .await
            .map(String::as_str)
    }

    async fn read_prefix(&self) -> Result<String> {
        let context = || format!("reading the configuration of {}", self.uri);
        let config: serde_json::Value = self
            .client
            .get(format!("{}/v1/config", self.uri))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| Error::external(context(), e))?
            .json()
            .await
            .map_err(|e| Error::external(context(), e))?;
        Ok(config["overrides"]["prefix"]
            .as_str()
            .map(|p| format!("{p}/"))
            .unwrap_or_default())
    }

    /// Commits `updates` under `requirements`; `Some(reason)` when the catalog refused
    /// them as conflicting (nothing changed).
    pub async fn commit(
        &self,
        table: &TableIdent,
        requirements: &[TableRequirement],
        updates: &[TableUpdate],
    ) -> Result<Option<String>> {
        let context = || format!("committing to Iceberg table {table} at {}", self.uri);
        let namespace = table.namespace().clone().inner();
        let url = format!(
            "{}/v1/{}namespaces/{}/tables/{}",
            self.uri,
            self.prefix().await?,
            namespace.join("%1F"),
            table.name()
        );
        let body = serde_json::json!({
            "identifier": { "namespace": namespace, "name": table.name() },
            "requirements": requirements,
            "updates": updates,
        });
        let reply = self
            .client
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::external(context(), e))?;
        let status = reply.status();
        if status.is_success() {
            return Ok(None);
        }
        let text = reply.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::CONFLICT {
            return Ok(Some(text));
        }
        Err(Error::external(
            context(),
            std::io::Error::other(format!("{status}: {text}")),
        ))
    }
}
