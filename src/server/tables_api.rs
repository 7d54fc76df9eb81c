//! `GET /v1/tables`: the tables of the data root's catalog, each with its current
//! snapshot and number of snapshots; `GET /v1/tables/{name}`: the table's current
//! snapshot as Arrow IPC; `GET /v1/tables/{name}/metadata`: where its metadata is and its
//! snapshots with their summaries (which carry the sink id and epoch of every runnel
//! commit).

use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use iceberg::NamespaceIdent;
use iceberg::table::Table;
use runnel_connectors::iceberg::{NAMESPACE, read_table};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::ingest::ARROW_STREAM;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tables", get(list))
        .route("/v1/tables/{name}", get(rows))
        .route("/v1/tables/{name}/metadata", get(metadata))
}

/// Loads table `name` of the embedded catalog: 400 for a bad name, 404 if absent.
pub async fn load(state: &AppState, name: &str) -> Result<Table, ApiError> {
    runnel_runtime::checkpoint::layout::validate_name("table", name)?;
    let catalog = state.data.iceberg().await?;
    let ident = runnel_connectors::iceberg::IcebergCatalog::table_ident(name);
    match catalog.catalog().table_exists(&ident).await {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::not_found(format!("no table named {name:?}"))),
        Err(e) => return Err(ApiError::internal(e)),
    }
    Ok(catalog.load_table(name).await?)
}

/// Every row of the table's current snapshot (an empty table: its schema only).
pub async fn scan(
    table: &Table,
) -> Result<(arrow::datatypes::SchemaRef, Vec<RecordBatch>), ApiError> {
    let schema = iceberg::arrow::schema_to_arrow_schema(table.metadata().current_schema())
        .map_err(ApiError::internal)?;
    let schema = std::sync::Arc::new(schema);
    let batches = read_table(table).await?;
    let schema = batches.first().map_or(schema, |b| b.schema());
    Ok((schema, batches))
}

/// `schema` and `batches` as one Arrow IPC stream body.
pub fn ipc_response(
    schema: &arrow::datatypes::SchemaRef,
    batches: &[RecordBatch],
) -> Result<Response, ApiError> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    for batch in batches {
        writer.write(batch)?;
    }
    let body = writer.into_inner()?;
    Ok(([(header::CONTENT_TYPE, ARROW_STREAM)], body).into_response())
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let catalog = state.data.iceberg().await?;
    let namespace = NamespaceIdent::new(NAMESPACE.to_string());
    let iceberg = catalog.catalog();
    // No namespace yet: no table was ever created.
    let idents = match iceberg.namespace_exists(&namespace).await {
        Ok(true) => iceberg
            .list_tables(&namespace)
            .await
            .map_err(ApiError::internal)?,
        Ok(false) => Vec::new(),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let mut tables = Vec::new();
    for ident in idents {
        let table = catalog.load_table(ident.name()).await?;
        let metadata = table.metadata();
        tables.push(json!({
            "name": ident.name(),
            "current_snapshot_id": metadata.current_snapshot_id(),
            "snapshots": metadata.snapshots().count(),
            "last_updated_ms": metadata.last_updated_ms(),
        }));
    }
    Ok(Json(json!({ "tables": tables })))
}

async fn rows(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let table = load(&state, &name).await?;
    let (schema, batches) = scan(&table).await?;
    ipc_response(&schema, &batches)
}

async fn metadata(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let table = load(&state, &name).await?;
    let metadata = table.metadata();
    // Oldest first: the table metadata holds them unordered.
    let mut ordered: Vec<_> = metadata.snapshots().collect();
    ordered.sort_by_key(|s| (s.sequence_number(), s.timestamp_ms()));
    let snapshots: Vec<Value> = ordered
        .into_iter()
        .map(|s| {
            json!({
                "snapshot_id": s.snapshot_id(),
                "parent_snapshot_id": s.parent_snapshot_id(),
                "sequence_number": s.sequence_number(),
                "timestamp_ms": s.timestamp_ms(),
                "summary": s.summary(),
            })
        })
        .collect();
    Ok(Json(json!({
        "name": name,
        "metadata_location": table.metadata_location(),
        "format_version": metadata.format_version() as u8,
        "current_snapshot_id": metadata.current_snapshot_id(),
        "snapshots": snapshots,
    })))
}
