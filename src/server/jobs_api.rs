//! `GET /v1/jobs`, `GET /v1/jobs/{id}`: what runs, how far it got, its graph and last
//! checkpoint ([`super::job_view`] has the fields); `GET /v1/jobs/{id}/checkpoints`: its
//! recent checkpoints, failures with their message; `DELETE /v1/jobs/{id}`: stop it.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use runnel_runtime::CHECKPOINT_HISTORY;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::job_view::{checkpoint, describe};
use crate::jobs::JobStatus;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", get(list))
        .route("/v1/jobs/{id}", get(get_one).delete(delete))
        .route("/v1/jobs/{id}/checkpoints", get(checkpoints))
}

async fn list(State(state): State<AppState>) -> Json<Value> {
    let now = state.data.ambient.clock.now_millis();
    let jobs: Vec<Value> = state.jobs.list().iter().map(|j| describe(j, now)).collect();
    Json(json!({ "jobs": jobs }))
}

fn status(state: &AppState, id: &str) -> Result<JobStatus, ApiError> {
    state
        .jobs
        .status(id)
        .ok_or_else(|| ApiError::not_found(format!("no job named {id:?}")))
}

async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let status = status(&state, &id)?;
    Ok(Json(describe(
        &status,
        state.data.ambient.clock.now_millis(),
    )))
}

/// The job's recent checkpoints, newest first (at most [`CHECKPOINT_HISTORY`], kept
/// across restarts of the job in this process).
async fn checkpoints(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let status = status(&state, &id)?;
    let now = state.data.ambient.clock.now_millis();
    let history = status
        .metrics
        .map(|m| m.checkpoints.history())
        .unwrap_or_default();
    let checkpoints: Vec<Value> = history.iter().rev().map(|c| checkpoint(c, now)).collect();
    Ok(Json(json!({
        "id": id,
        "limit": CHECKPOINT_HISTORY,
        "checkpoints": checkpoints,
    })))
}

/// Drops the job: a final checkpoint, then it stops and is never resumed.
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let timeout = state.options.shutdown_timeout;
    let now = || state.data.ambient.clock.now_millis();
    match state.jobs.drop_job(&id, timeout).await {
        Ok(Some(status)) => Ok(Json(describe(&status, now()))),
        Ok(None) => Err(ApiError::not_found(format!("no job named {id:?}"))),
        Err(e) => Err(e.into()),
    }
}
