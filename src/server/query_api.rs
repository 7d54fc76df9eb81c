//! `POST /v1/query`: read-only SQL (DataFusion) over the committed Iceberg tables,
//! answered as Arrow IPC. DDL, DML and other statements are refused: the tables change
//! only through jobs' exactly-once commits.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use datafusion::datasource::MemTable;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use runnel_connectors::iceberg::NAMESPACE;

use super::AppState;
use super::error::ApiError;
use super::sql_api::MAX_SQL_BYTES;
use super::tables_api::{ipc_response, load, scan};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/query", post(query))
}

async fn query(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    if body.len() > MAX_SQL_BYTES {
        return Err(ApiError::bad_request(format!(
            "the query is {} bytes; the limit is {MAX_SQL_BYTES}",
            body.len()
        )));
    }
    let sql = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request(format!("the query is not UTF-8: {e}")))?;
    state.options.sql_limits.check_query(sql).await?;
    let ctx = SessionContext::new();
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    // Plan once without tables to learn which ones the query reads, then register
    // those (their current snapshots) and plan for real.
    let statement = ctx
        .state()
        .sql_to_statement(sql, &datafusion::config::Dialect::Generic)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let references = ctx
        .state()
        .resolve_table_references(&statement)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    for reference in references {
        if reference.schema().is_some_and(|s| s != NAMESPACE) {
            return Err(ApiError::not_found(format!("no table {reference}")));
        }
        let name = reference.table();
        let table = load(&state, name).await?;
        let (schema, batches) = scan(&table).await?;
        let provider = MemTable::try_new(schema, vec![batches]).map_err(ApiError::internal)?;
        ctx.register_table(name, std::sync::Arc::new(provider))
            .map_err(ApiError::internal)?;
    }
    let frame = ctx
        .sql_with_options(sql, options)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let schema = frame.schema().inner().clone();
    let batches = frame
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    ipc_response(&schema, &batches)
}
