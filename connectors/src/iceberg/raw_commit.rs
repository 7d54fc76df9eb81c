//! Commits given as Iceberg's own requirements and updates (the REST catalog protocol's
//! `CommitTableRequest`), applied with the catalog's compare-and-swap.
//!
//! iceberg 0.10 builds `TableCommit`s only inside its transactions; a compaction's
//! `replace` snapshot, and a commit a REST client sends, are requirements and updates
//! that come from elsewhere. They are checked against the current metadata, applied with
//! iceberg's metadata builder (the same code `TableCommit::apply` runs), written as the
//! next metadata file, and made current with [`MetadataSwap`] only if nothing committed
//! since the metadata they were checked against.

use std::str::FromStr;

use iceberg::table::Table;
use iceberg::{MetadataLocation, Runtime, TableIdent, TableRequirement, TableUpdate};
use runnel_runtime::{Error, Result};

use super::catalog::IcebergCatalog;
use super::iceberg_error;
use super::swap::MetadataSwap;

/// What became of a raw commit.
#[derive(Debug)]
pub enum RawCommit {
    /// The table as committed.
    Committed(Table),
    /// A requirement did not hold, or another commit came first; nothing changed.
    Conflict(String),
}

/// Applies `updates` to `table` if every one of `requirements` holds for its current
/// metadata (a REST catalog is sent them and decides). A catalog of another kind refuses
/// with [`Error::Plan`].
pub async fn commit_raw(
    catalog: &IcebergCatalog,
    table: &TableIdent,
    requirements: Vec<TableRequirement>,
    updates: Vec<TableUpdate>,
) -> Result<RawCommit> {
    let Some(swap) = catalog.metadata_swap() else {
        return Err(Error::Plan(format!(
            "table {table}: this catalog takes commits only through iceberg transactions"
        )));
    };
    let error = || iceberg_error(format!("committing to Iceberg table {table}"));
    if let MetadataSwap::Rest(rest) = swap {
        if let Some(reason) = rest.commit(table, &requirements, &updates).await? {
            return Ok(RawCommit::Conflict(reason));
        }
        let committed = catalog.catalog().load_table(table).await.map_err(error())?;
        return Ok(RawCommit::Committed(committed));
    }
    let current = catalog.catalog().load_table(table).await.map_err(error())?;
    let metadata = current.metadata();
    for requirement in &requirements {
        if let Err(e) = requirement.check(Some(metadata)) {
            return Ok(RawCommit::Conflict(e.message().to_string()));
        }
    }
    let base = current
        .metadata_location()
        .ok_or_else(|| Error::Internal(format!("Iceberg table {table} has no metadata file")))?
        .to_string();
    let mut builder = metadata.clone().into_builder(Some(base.clone()));
    for update in updates {
        builder = update.apply(builder).map_err(|e| {
            Error::Plan(format!(
                "table {table}: an update does not apply: {}",
                e.message()
            ))
        })?;
    }
    let new_metadata = builder
        .build()
        .map_err(|e| Error::Plan(format!("table {table}: {}", e.message())))?
        .metadata;
    let location = MetadataLocation::from_str(&base)
        .map_err(error())?
        .with_next_version()
        .with_new_metadata(&new_metadata);
    new_metadata
        .write_to(current.file_io(), &location)
        .await
        .map_err(error())?;
    if !swap.swap(table, &base, &location.to_string()).await? {
        return Ok(RawCommit::Conflict(format!(
            "table {table} changed while the commit was applied"
        )));
    }
    let committed = Table::builder()
        .file_io(current.file_io().clone())
        .metadata_location(location.to_string())
        .metadata(new_metadata)
        .identifier(table.clone())
        .runtime(Runtime::current())
        .build()
        .map_err(error())?;
    Ok(RawCommit::Committed(committed))
}
