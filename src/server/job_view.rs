//! The JSON form of a job's status, shared by `GET /v1/jobs`, `SHOW JOBS` and the
//! console: state, counters and rates, the dataflow graph with each operator's rates,
//! watermark and backpressure, and checkpoints.
//!
//! Counters are totals of the current attempt; rates (`*_per_second`) and
//! `backpressure` are their change over the last few seconds, sampled by the server
//! ([`crate::jobs::rates`]), and `null` until two samples exist. The job's `rows_in` are
//! the rows its sources read, its `rows_out` the rows that reached its sinks (once,
//! however many sinks take them). Lags and ages are measured against the server's
//! clock (`now`), so a browser with a wrong clock still shows them right.

use std::sync::atomic::Ordering;

use runnel_runtime::{CheckpointOutcome, CheckpointRecord, Millis, NodeMetrics, WATERMARK_START};
use serde_json::{Value, json};

use crate::jobs::{JobStatus, OperatorRates};

/// The JSON form of a job's status at `now` (Unix milliseconds).
pub fn describe(status: &JobStatus, now: Millis) -> Value {
    let metrics = status.metrics.as_deref();
    let rates = status.rates.as_ref();
    let operators: Vec<Value> = metrics
        .map(|m| {
            m.nodes
                .iter()
                .map(|n| {
                    let rate = rates.and_then(|r| r.operators.iter().find(|o| o.name == n.name));
                    let role = status.topology.as_ref().and_then(|t| t.role(&n.name));
                    let mut json = operator(n, rate, now);
                    json["role"] = json!(role);
                    json
                })
                .collect()
        })
        .unwrap_or_default();
    let totals = metrics.zip(status.roles.as_ref()).map(|(m, r)| r.totals(m));
    // The job's watermark: how far its last operator has seen event time.
    let job_watermark = metrics
        .and_then(|m| m.nodes.last())
        .and_then(|n| watermark(n.watermark()));
    let last_checkpoint = metrics
        .and_then(|m| m.checkpoints.last())
        .map(|c| checkpoint(&c, now));
    let counter = |read: fn(&runnel_runtime::CheckpointMetrics) -> u64| {
        metrics.map_or(0, |m| read(&m.checkpoints))
    };
    json!({
        "id": status.definition.name,
        "kind": status.definition.kind_name(),
        "state": status.state,
        "error": status.error,
        "parallelism": status.definition.parallelism,
        "restarts": status.restarts,
        "now": now,
        "watermark": job_watermark,
        "watermark_lag_ms": job_watermark.map(|w| now.saturating_sub(w)),
        "rows_in": totals.map(|t| t.0),
        "rows_out": totals.map(|t| t.1),
        "rows_in_per_second": rates.map(|r| r.rows_in_per_second),
        "rows_out_per_second": rates.map(|r| r.rows_out_per_second),
        "rate_window_seconds": rates.map(|r| r.window_seconds),
        "last_checkpoint": last_checkpoint,
        "checkpoints_completed": counter(|c| c.completed.load(Ordering::Relaxed)),
        "checkpoints_failed": counter(|c| c.failed.load(Ordering::Relaxed)),
        "operators": operators,
        "edges": status.topology.as_ref().map(|t| &t.edges),
        "definition": status.definition,
    })
}

/// One node of the graph: counters, rates, watermark and backpressure.
fn operator(node: &NodeMetrics, rate: Option<&OperatorRates>, now: Millis) -> Value {
    let watermark = watermark(node.watermark());
    json!({
        "name": node.name,
        "parallelism": node.subtasks.len(),
        "rows_in": node.rows_in(),
        "rows_out": node.rows_out(),
        "rows_in_per_second": rate.map(|r| r.rows_in_per_second),
        "rows_out_per_second": rate.map(|r| r.rows_out_per_second),
        "late_rows": node.late_rows(),
        "rejected_rows": node.rejected_rows(),
        "watermark": watermark,
        "watermark_lag_ms": watermark.map(|w| now.saturating_sub(w)),
        "backpressure": rate.map(|r| r.backpressure),
        "send_blocked_seconds": node.send_blocked_micros() as f64 / 1e6,
        "input_fill": node.input_fill(),
        "input_queued": node.input_queued(),
        "input_capacity": node.input_capacity(),
    })
}

/// One checkpoint of the history, its age measured at `now`.
pub fn checkpoint(record: &CheckpointRecord, now: Millis) -> Value {
    let (status, error) = match &record.outcome {
        CheckpointOutcome::Completed => ("completed", None),
        CheckpointOutcome::Failed(message) => ("failed", Some(message)),
    };
    json!({
        "epoch": record.epoch,
        "status": status,
        "error": error,
        "completed_at": record.finished_at,
        "age_ms": now.saturating_sub(record.finished_at),
        "duration_ms": record.duration_millis,
        "size_bytes": record.size_bytes,
        "sink_commit_ms": record.sink_commit_millis,
    })
}

fn watermark(millis: i64) -> Option<i64> {
    (millis != WATERMARK_START).then_some(millis)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use runnel_runtime::{CheckpointMetrics, JobMetrics, NodeMetrics};

    use super::*;
    use crate::jobs::rates::RateWindow;
    use crate::jobs::{JobRoles, JobStatus};

    #[test]
    fn a_job_shows_its_counters_rates_and_backpressure() {
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
        let top = &metrics.nodes[1].subtasks[0];
        top.send_blocked_micros.store(1_500_000, Ordering::Relaxed);
        top.watermark.store(3_000, Ordering::Relaxed);
        let output = &metrics.nodes[2].subtasks[0];
        output.input_capacity.store(16, Ordering::Relaxed);
        output.input_queued.store(12, Ordering::Relaxed);
        window.observe(&metrics, &roles, 4_000);
        let status = JobStatus {
            roles: Some(roles),
            rates: window.rates(),
            ..JobStatus::running_for_tests(metrics.clone())
        };
        let json = describe(&status, 5_000);
        assert_eq!(
            (json["rows_in"].as_u64(), json["rows_out"].as_u64()),
            (Some(900), Some(30))
        );
        assert_eq!(json["rows_in_per_second"], 300.0);
        assert_eq!(json["rows_out_per_second"], 10.0);
        assert_eq!(json["rate_window_seconds"], 3.0);
        let top = &json["operators"][1];
        assert_eq!(top["name"], "top");
        assert_eq!(top["rows_in_per_second"], 300.0);
        assert_eq!(top["backpressure"], 0.5);
        assert_eq!(top["send_blocked_seconds"], 1.5);
        assert_eq!(top["watermark_lag_ms"], 2_000);
        let output = &json["operators"][2];
        assert_eq!(output["rows_out_per_second"], 10.0);
        assert_eq!(output["input_fill"], 0.75);
        assert_eq!(
            (
                output["input_queued"].as_u64(),
                output["input_capacity"].as_u64()
            ),
            (Some(12), Some(16))
        );
        // Before the job's first two samples: counters, and null rates.
        let fresh = JobStatus {
            rates: None,
            ..status
        };
        let json = describe(&fresh, 5_000);
        assert_eq!(json["rows_in"], 900);
        assert!(json["rows_in_per_second"].is_null());
        assert!(json["operators"][0]["rows_in_per_second"].is_null());
        assert!(json["operators"][1]["backpressure"].is_null());
    }

    #[test]
    fn checkpoints_show_their_age_and_failures_their_message() {
        let failed = CheckpointRecord {
            epoch: 4,
            finished_at: 9_000,
            duration_millis: 120,
            size_bytes: 0,
            sink_commit_millis: None,
            outcome: CheckpointOutcome::Failed("output[0]: storage unavailable".into()),
        };
        let json = checkpoint(&failed, 10_000);
        assert_eq!(json["status"], "failed");
        assert_eq!(json["error"], "output[0]: storage unavailable");
        assert_eq!(json["age_ms"], 1_000);
        assert!(json["sink_commit_ms"].is_null());
    }
}
