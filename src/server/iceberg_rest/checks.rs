//! What the REST catalog refuses before it touches the catalog.
//!
//! * **Places.** A namespace's or table's `location`, and the table properties that move
//!   its files, must lie under the warehouse (table properties: under the table's own
//!   location), at create time and in every commit (`set-location`, `set-properties`);
//!   a snapshot's manifest list must lie under the table too. See
//!   [`runnel_connectors::iceberg::locations`]. A 400 names the offending field.
//! * **Sink bookkeeping.** The `runnel.*` snapshot summary keys say which epochs a sink
//!   committed and as which writer generation; a forged one could make a sink skip its
//!   epochs or fence it. The sinks of this data root commit through the catalog
//!   directly, never through this endpoint, so a snapshot carrying `runnel.*` keys for a
//!   table one of its jobs writes is refused (403). (A runnel server that keeps its
//!   tables in this catalog, `--iceberg-rest`, commits its own sinks' snapshots here,
//!   with those keys, to tables no job of this data root writes.)
//! * **Dropping a table a job writes** is refused (409): the job would fail at its next
//!   commit. Drop the job first.

use std::collections::HashMap;

use axum::http::StatusCode;
use iceberg::table::Table;
use iceberg::{NamespaceIdent, TableIdent, TableUpdate};
use runnel_connectors::iceberg::locations::{
    check_table_properties, check_under, is_path_property,
};
use runnel_connectors::iceberg::{IcebergCatalog, NAMESPACE};

use super::RestError;
use crate::server::AppState;

/// Prefix of the snapshot summary keys reserved to runnel's sinks.
const RESERVED_PREFIX: &str = "runnel.";

fn refuse(reason: String) -> RestError {
    RestError::bad_request(reason)
}

/// Checks the path-like properties of a namespace about to be created.
pub(super) fn namespace_properties(
    catalog: &IcebergCatalog,
    properties: &HashMap<String, String>,
) -> Result<(), RestError> {
    let Some(warehouse) = catalog.warehouse() else {
        return Ok(());
    };
    for (key, value) in properties {
        if is_path_property(key) {
            check_under(&format!("namespace property {key}"), value, warehouse).map_err(refuse)?;
        }
    }
    Ok(())
}

/// The location a new table gets (the one asked for, checked, or the catalog's default
/// for it), so that its properties are checked against where it really goes; `None`
/// leaves the choice to a catalog that has no warehouse of ours.
pub(super) async fn creation_location(
    catalog: &IcebergCatalog,
    table: &TableIdent,
    requested: Option<String>,
    properties: &HashMap<String, String>,
) -> Result<Option<String>, RestError> {
    let Some(warehouse) = catalog.warehouse() else {
        return Ok(requested);
    };
    let location = match requested {
        Some(location) => {
            check_under("location", &location, warehouse).map_err(refuse)?;
            location
        }
        None => {
            let namespace = catalog.catalog().get_namespace(table.namespace()).await?;
            let base = match namespace.properties().get("location") {
                Some(location) => location.trim_end_matches('/').to_string(),
                None => format!("{warehouse}/{}", table.namespace().join("/")),
            };
            format!("{base}/{}", table.name())
        }
    };
    check_table_properties(properties, &location).map_err(refuse)?;
    Ok(Some(location))
}

/// Checks a commit's `updates` to `table`: places (see the module docs), and the
/// reserved summary keys when `owners` (jobs writing the table) is not empty.
pub(super) fn updates(
    catalog: &IcebergCatalog,
    table: &Table,
    updates: &[TableUpdate],
    owners: &[String],
) -> Result<(), RestError> {
    let mut location = table.metadata().location().to_string();
    for update in updates {
        match update {
            TableUpdate::SetLocation { location: new } => {
                if let Some(warehouse) = catalog.warehouse() {
                    check_under("location", new, warehouse).map_err(refuse)?;
                }
                location = new.clone();
            }
            TableUpdate::SetProperties { updates } if catalog.warehouse().is_some() => {
                check_table_properties(updates, &location).map_err(refuse)?;
            }
            TableUpdate::AddSnapshot { snapshot } => {
                if catalog.warehouse().is_some() {
                    check_under("manifest-list", snapshot.manifest_list(), &location)
                        .map_err(refuse)?;
                }
                let summary = &snapshot.summary().additional_properties;
                if let (Some(key), Some(job)) = (
                    summary.keys().find(|k| k.starts_with(RESERVED_PREFIX)),
                    owners.first(),
                ) {
                    return Err(RestError::new(
                        StatusCode::FORBIDDEN,
                        "ForbiddenException",
                        format!(
                            "snapshot summary key {key:?} is reserved to runnel's sinks, \
                             and job {job} writes this table"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The jobs of the data root that write `table` through their sink and may still run
/// (neither dropped nor finished).
pub(super) async fn owners(state: &AppState, table: &TableIdent) -> Result<Vec<String>, RestError> {
    if table.namespace() != &NamespaceIdent::new(NAMESPACE.to_string()) {
        return Ok(Vec::new());
    }
    let failed = |e: anyhow::Error| {
        RestError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            format!("reading the jobs of the data root: {e:#}"),
        )
    };
    let catalog = state.jobs.catalog();
    let mut owners = Vec::new();
    for definition in catalog.list().await.map_err(failed)? {
        let Some((target, _)) = definition.table_sink() else {
            continue;
        };
        if target != table.name() {
            continue;
        }
        let name = &definition.name;
        if catalog.dropped(name).await.map_err(failed)?
            || catalog.finished(name).await.map_err(failed)?.is_some()
        {
            continue;
        }
        owners.push(name.clone());
    }
    Ok(owners)
}
