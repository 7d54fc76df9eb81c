//! `GET /v1/jobs` and `GET /v1/jobs/{id}`: what runs, how far it got, its last checkpoint.
//!
//! Counters are totals of the current attempt; rates (`*_per_second`) are their change
//! over the last few seconds, sampled by the server ([`crate::jobs::rates`]), and `null`
//! until two samples exist. The job's `rows_in` are the rows its sources read, its
//! `rows_out` the rows that reached its sinks (once, however many sinks take them).

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
        Err(e) => Err(e.into()),
    }
}

/// The JSON form of a job's status.
pub fn describe(status: &JobStatus) -> Value {
    let metrics = status.metrics.as_deref();
    let rates = status.rates.as_ref();
    let operators: Vec<Value> = metrics
        .map(|m| {
            m.nodes
                .iter()
                .map(|n| {
                    let rate = rates.and_then(|r| r.operators.iter().find(|o| o.name == n.name));
                    json!({
                        "name": n.name,
                        "parallelism": n.subtasks.len(),
                        "rows_in": n.rows_in(),
                        "rows_out": n.rows_out(),
                        "rows_in_per_second": rate.map(|r| r.rows_in_per_second),
                        "rows_out_per_second": rate.map(|r| r.rows_out_per_second),
                        "late_rows": n.late_rows(),
                        "rejected_rows": n.rejected_rows(),
                        "watermark": watermark(n.watermark()),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let totals = metrics.zip(status.roles.as_ref()).map(|(m, r)| r.totals(m));
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
        "rows_in": totals.map(|t| t.0),
        "rows_out": totals.map(|t| t.1),
        "rows_in_per_second": rates.map(|r| r.rows_in_per_second),
        "rows_out_per_second": rates.map(|r| r.rows_out_per_second),
        "rate_window_seconds": rates.map(|r| r.window_seconds),
        "last_checkpoint": last_checkpoint,
        "checkpoints_completed": metrics.map_or(0, |m| m.checkpoints.completed.load(std::sync::atomic::Ordering::Relaxed)),
        "operators": operators,
        "definition": status.definition,
    })
}

fn watermark(millis: i64) -> Option<i64> {
    (millis != WATERMARK_START).then_some(millis)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use runnel_runtime::{CheckpointMetrics, JobMetrics, NodeMetrics};

    use super::*;
    use crate::hot_items::HotItems;
    use crate::jobs::rates::RateWindow;
    use crate::jobs::{JobDefinition, JobRoles, JobState, LogInput};

    #[test]
    fn a_job_shows_its_counters_and_rates() {
        let node = |name: &str| NodeMetrics {
            name: name.into(),
            subtasks: vec![Arc::default()],
        };
        let metrics = Arc::new(JobMetrics {
            nodes: vec![node("bids"), node("top"), node("output")],
            checkpoints: CheckpointMetrics::default(),
        });
        let roles = JobRoles {
            sources: vec!["bids".into()],
            outputs: vec!["top".into()],
        };
        let mut window = RateWindow::default();
        window.observe(&metrics, &roles, 1_000);
        let count = |node: usize, rows_in: u64, rows_out: u64| {
            let subtask = &metrics.nodes[node].subtasks[0];
            subtask.rows_in.store(rows_in, Ordering::Relaxed);
            subtask.rows_out.store(rows_out, Ordering::Relaxed);
        };
        count(0, 900, 900);
        count(1, 900, 30);
        count(2, 30, 30);
        window.observe(&metrics, &roles, 4_000);
        let input = LogInput {
            topic: "bids".into(),
            until: None,
        };
        let status = JobStatus {
            definition: JobDefinition::hot_items("hot", input, "out", &HotItems::default()),
            state: JobState::Running,
            error: None,
            restarts: 0,
            metrics: Some(metrics.clone()),
            roles: Some(roles),
            rates: window.rates(),
        };
        let json = describe(&status);
        assert_eq!(
            (json["rows_in"].as_u64(), json["rows_out"].as_u64()),
            (Some(900), Some(30))
        );
        assert_eq!(json["rows_in_per_second"], 300.0);
        assert_eq!(json["rows_out_per_second"], 10.0);
        assert_eq!(json["rate_window_seconds"], 3.0);
        assert_eq!(json["operators"][1]["name"], "top");
        assert_eq!(json["operators"][1]["rows_in_per_second"], 300.0);
        assert_eq!(json["operators"][2]["rows_out_per_second"], 10.0);
        // Before the job's first two samples: counters, and null rates.
        let fresh = JobStatus {
            rates: None,
            ..status
        };
        let json = describe(&fresh);
        assert_eq!(json["rows_in"], 900);
        assert!(json["rows_in_per_second"].is_null());
        assert!(json["operators"][0]["rows_in_per_second"].is_null());
    }
}
