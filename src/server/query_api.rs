//! `POST /v1/query`: read-only SQL (DataFusion) over the committed Iceberg tables,
//! answered as Arrow IPC. DDL, DML and other statements are refused: the tables change
//! only through jobs' exactly-once commits. Queries run on the [`QueryPool`], within
//! its time, memory and result-size limits.

use std::sync::Arc;

use arrow::ipc::writer::StreamWriter;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use datafusion::datasource::MemTable;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use runnel_connectors::iceberg::NAMESPACE;

use super::AppState;
use super::bounded_functions;
use super::cancellable_plan::{Cancel, cancellable};
use super::error::ApiError;
use super::ingest::ARROW_STREAM;
use super::query_pool::{QueryLimits, QueryPool};
use super::sql_api::MAX_SQL_BYTES;
use super::tables_api::{load, scan};

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
        .map_err(|e| ApiError::bad_request(format!("the query is not UTF-8: {e}")))?
        .to_owned();
    state.options.sql_limits.check_query(&sql).await?;
    let pool: QueryPool = state.queries.clone();
    let _permit = pool.admit()?;
    let limits = pool.limits.clone();
    let ipc = pool
        .run(|cancel| async move { answer(&state, &sql, &limits, &cancel).await })
        .await?;
    Ok(([(header::CONTENT_TYPE, ARROW_STREAM)], ipc).into_response())
}

/// The query's result as an Arrow IPC stream, within `limits`.
async fn answer(
    state: &AppState,
    sql: &str,
    limits: &QueryLimits,
    cancel: &Cancel,
) -> Result<Vec<u8>, ApiError> {
    let ctx = bounded_context(limits)?;
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
    let mut held = 0;
    for reference in references {
        if reference.schema().is_some_and(|s| s != NAMESPACE) {
            return Err(ApiError::not_found(format!("no table {reference}")));
        }
        let name = reference.table();
        let table = load(state, name).await?;
        let (schema, batches) = scan(&table).await?;
        held += batches
            .iter()
            .map(|b| b.get_array_memory_size())
            .sum::<usize>();
        if held > limits.memory_bytes {
            return Err(too_large(format!(
                "the tables the query reads hold more than {} bytes, the query memory limit \
                 (--query-max-memory-bytes)",
                limits.memory_bytes
            )));
        }
        let provider = MemTable::try_new(schema, vec![batches]).map_err(ApiError::internal)?;
        ctx.register_table(name, Arc::new(provider))
            .map_err(ApiError::internal)?;
    }
    let frame = ctx
        .sql_with_options(sql, options)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let schema = frame.schema().inner().clone();
    let plan = frame
        .create_physical_plan()
        .await
        .and_then(|plan| cancellable(plan, cancel))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut batches =
        execute_stream(plan, ctx.task_ctx()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut writer = StreamWriter::try_new(Vec::new(), &schema)?;
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(|e| ApiError::bad_request(e.to_string()))?;
        writer.write(&batch)?;
        if writer.get_ref().len() > limits.result_bytes {
            return Err(too_large(format!(
                "the result is larger than {} bytes, the limit (--query-max-result-bytes)",
                limits.result_bytes
            )));
        }
    }
    Ok(writer.into_inner()?)
}

/// A session whose operators share a memory pool of the query's limit, that cannot
/// spill to disk, and whose amplifying functions are bounded too.
fn bounded_context(limits: &QueryLimits) -> Result<SessionContext, ApiError> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_bytes, 1.0)
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
        .map_err(ApiError::internal)?;
    let config = SessionConfig::new().with_target_partitions(limits.threads.max(1));
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    bounded_functions::register(&ctx, limits.memory_bytes);
    Ok(ctx)
}

fn too_large(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "query_too_large", message)
}
