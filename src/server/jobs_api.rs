//! `GET /v1/jobs` and `GET /v1/jobs/{id}`: what runs, how far it got, its last checkpoint.

use axum::Json;
use axum::extract::{Path, State};
use runnel_runtime::WATERMARK_START;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::jobs::JobStatus;

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let jobs: Vec<Value> = state.jobs.list().iter().map(describe).collect();
    Json(json!({ "jobs": jobs }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.jobs.status(&id) {
        Some(status) => Ok(Json(describe(&status))),
        None => Err(ApiError::not_found(format!("no job named {id:?}"))),
    }
}

/// Drops the job: a final checkpoint, then it stops and is never resumed.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let timeout = state.options.shutdown_timeout;
    match state.jobs.drop_job(&id, timeout).await {
        Ok(Some(status)) => Ok(Json(describe(&status))),
        Ok(None) => Err(ApiError::not_found(format!("no job named {id:?}"))),
        Err(e) => Err(ApiError::internal(format!("{e:#}"))),
    }
}

/// The JSON form of a job's status.
pub fn describe(status: &JobStatus) -> Value {
    let metrics = status.metrics.as_deref();
    let operators: Vec<Value> = metrics
        .map(|m| {
            m.nodes
                .iter()
                .map(|n| {
                    json!({
                        "name": n.name,
                        "parallelism": n.subtasks.len(),
                        "rows_in": n.rows_in(),
                        "rows_out": n.rows_out(),
                        "late_rows": n.late_rows(),
                        "watermark": watermark(n.watermark()),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    // The job's watermark: how far its last operator has seen event time.
    let job_watermark = metrics
        .and_then(|m| m.nodes.last())
        .and_then(|n| watermark(n.watermark()));
    let last_checkpoint = metrics.and_then(|m| m.checkpoints.last()).map(
        |(epoch, completed_at, duration_millis, size_bytes)| {
            json!({
                "epoch": epoch,
                "completed_at": completed_at,
                "duration_ms": duration_millis,
                "size_bytes": size_bytes,
            })
        },
    );
    json!({
        "id": status.definition.name,
        "kind": status.definition.kind_name(),
        "state": status.state,
        "error": status.error,
        "parallelism": status.definition.parallelism,
        "restarts": status.restarts,
        "watermark": job_watermark,
        "last_checkpoint": last_checkpoint,
        "checkpoints_completed": metrics.map_or(0, |m| m.checkpoints.completed.load(std::sync::atomic::Ordering::Relaxed)),
        "operators": operators,
        "definition": status.definition,
    })
}

fn watermark(millis: i64) -> Option<i64> {
    (millis != WATERMARK_START).then_some(millis)
}
