//! `GET /metrics`: every job's counters in the Prometheus text format.
//!
//! Rendered on request from the live counters (plain atomics owned by each job), so
//! there is no registry to keep in sync and a job's series vanish with the job.
//!
//! Phase-2 commit latency is a histogram per job and sink node,
//! `runnel_sink_commit_seconds{job, sink}` (`_bucket{le}`, `_sum`, `_count`): the runtime
//! times every `Sink::commit` call, so an Iceberg table's catalog commit and a log
//! append show side by side.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use runnel_runtime::WATERMARK_START;

use super::AppState;
use crate::jobs::JobStatus;

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = render(&state.jobs.list(), state.data.ambient.clock.now_millis());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// One metric family: its help text, type and samples.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    /// `(labels, value)`.
    samples: Vec<(String, f64)>,
    /// `(name suffix, labels, value)`: the `_bucket`, `_sum` and `_count` of a histogram.
    suffixed: Vec<(&'static str, String, f64)>,
}

/// The Prometheus text for `jobs`, with watermark lag measured against `now` (ms).
pub fn render(jobs: &[JobStatus], now: i64) -> String {
    let family = |name, help, kind| Family {
        name,
        help,
        kind,
        samples: Vec::new(),
        suffixed: Vec::new(),
    };
    let mut rows_in = family(
        "runnel_operator_rows_in_total",
        "Rows received by an operator (sources: rows read).",
        "counter",
    );
    let mut rows_out = family(
        "runnel_operator_rows_out_total",
        "Rows emitted by an operator.",
        "counter",
    );
    let mut late = family(
        "runnel_operator_late_rows_total",
        "Rows that arrived behind the watermark.",
        "counter",
    );
    let mut rejected = family(
        "runnel_operator_rejected_rows_total",
        "Records a source skipped as unusable (bad format, missing event time); 0 elsewhere.",
        "counter",
    );
    let mut lag = family(
        "runnel_operator_watermark_lag_seconds",
        "Wall-clock time minus the operator's watermark.",
        "gauge",
    );
    let mut checkpoints = family(
        "runnel_checkpoints_completed_total",
        "Checkpoints completed by the job since it started here.",
        "counter",
    );
    let mut duration = family(
        "runnel_checkpoint_duration_seconds",
        "From barrier injection to durable manifest, for the newest checkpoint.",
        "gauge",
    );
    let mut size = family(
        "runnel_checkpoint_size_bytes",
        "Bytes of state in the newest checkpoint.",
        "gauge",
    );
    let mut commits = family(
        "runnel_sink_commit_seconds",
        "Phase-2 commit latency of a sink, per checkpoint (this attempt of the job).",
        "histogram",
    );
    let mut up = family(
        "runnel_job_running",
        "1 while the job runs, 0 otherwise.",
        "gauge",
    );
    for job in jobs {
        let name = escape(&job.definition.name);
        let running = matches!(job.state, crate::jobs::JobState::Running);
        up.samples
            .push((format!("job=\"{name}\""), f64::from(u8::from(running))));
        let Some(metrics) = &job.metrics else {
            continue;
        };
        for node in &metrics.nodes {
            let labels = format!("job=\"{name}\",operator=\"{}\"", escape(&node.name));
            rows_in
                .samples
                .push((labels.clone(), node.rows_in() as f64));
            rows_out
                .samples
                .push((labels.clone(), node.rows_out() as f64));
            late.samples.push((labels.clone(), node.late_rows() as f64));
            rejected
                .samples
                .push((labels.clone(), node.rejected_rows() as f64));
            let watermark = node.watermark();
            if watermark != WATERMARK_START {
                let seconds = (now.saturating_sub(watermark)) as f64 / 1000.0;
                lag.samples.push((labels, seconds));
            }
        }
        let labels = format!("job=\"{name}\"");
        let completed = metrics.checkpoints.completed.load(Ordering::Relaxed);
        checkpoints.samples.push((labels.clone(), completed as f64));
        if let Some((_, _, millis, bytes)) = metrics.checkpoints.last() {
            duration
                .samples
                .push((labels.clone(), millis as f64 / 1000.0));
            size.samples.push((labels, bytes as f64));
        }
        for (sink, histogram) in metrics.checkpoints.sink_commits() {
            let labels = format!("job=\"{name}\",sink=\"{}\"", escape(&sink));
            for (bound, count) in &histogram.buckets {
                let le = match bound.is_finite() {
                    true => bound.to_string(),
                    false => "+Inf".to_string(),
                };
                let labels = format!("{labels},le=\"{le}\"");
                commits.suffixed.push(("_bucket", labels, *count as f64));
            }
            let sum = histogram.sum_seconds;
            commits.suffixed.push(("_sum", labels.clone(), sum));
            let count = histogram.count as f64;
            commits.suffixed.push(("_count", labels, count));
        }
    }
    let mut out = String::new();
    for family in [
        rows_in,
        rows_out,
        late,
        rejected,
        lag,
        checkpoints,
        duration,
        size,
        commits,
        up,
    ] {
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        for (labels, value) in family.samples {
            let _ = writeln!(out, "{}{{{labels}}} {value}", family.name);
        }
        for (suffix, labels, value) in family.suffixed {
            let _ = writeln!(out, "{}{suffix}{{{labels}}} {value}", family.name);
        }
    }
    out
}

/// Escapes a label value (`\`, `"` and newlines).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use runnel_runtime::{CheckpointMetrics, JobMetrics, NodeMetrics};

    use super::*;
    use crate::hot_items::HotItems;
    use crate::jobs::{JobDefinition, JobState, LogInput};

    #[test]
    fn counters_and_checkpoints_render_as_prometheus_text() {
        let node = NodeMetrics {
            name: "window".into(),
            subtasks: vec![Arc::default(), Arc::default()],
        };
        node.subtasks[0].rows_in.store(5, Ordering::Relaxed);
        node.subtasks[1].rows_in.store(7, Ordering::Relaxed);
        node.subtasks[0].watermark.store(8_000, Ordering::Relaxed);
        node.subtasks[1].watermark.store(9_000, Ordering::Relaxed);
        let metrics = JobMetrics {
            nodes: vec![node],
            checkpoints: CheckpointMetrics::default(),
        };
        metrics.checkpoints.record(3, 10_000, 250, 4096);
        metrics
            .checkpoints
            .record_sink_commit("table", Duration::from_millis(40));
        metrics
            .checkpoints
            .record_sink_commit("table", Duration::from_millis(2_000));
        let input = LogInput {
            topic: "bids".into(),
            until: None,
        };
        let job = JobStatus {
            definition: JobDefinition::hot_items("hot", input, "out", &HotItems::default()),
            state: JobState::Running,
            error: None,
            restarts: 0,
            metrics: Some(Arc::new(metrics)),
            roles: None,
            rates: None,
        };
        let text = render(&[job], 10_000);
        for line in [
            "# TYPE runnel_operator_rows_in_total counter",
            "runnel_operator_rows_in_total{job=\"hot\",operator=\"window\"} 12",
            "runnel_operator_watermark_lag_seconds{job=\"hot\",operator=\"window\"} 2",
            "runnel_checkpoints_completed_total{job=\"hot\"} 1",
            "runnel_checkpoint_duration_seconds{job=\"hot\"} 0.25",
            "runnel_checkpoint_size_bytes{job=\"hot\"} 4096",
            "# TYPE runnel_sink_commit_seconds histogram",
            "runnel_sink_commit_seconds_bucket{job=\"hot\",sink=\"table\",le=\"0.025\"} 0",
            "runnel_sink_commit_seconds_bucket{job=\"hot\",sink=\"table\",le=\"0.05\"} 1",
            "runnel_sink_commit_seconds_bucket{job=\"hot\",sink=\"table\",le=\"1\"} 1",
            "runnel_sink_commit_seconds_bucket{job=\"hot\",sink=\"table\",le=\"2.5\"} 2",
            "runnel_sink_commit_seconds_bucket{job=\"hot\",sink=\"table\",le=\"+Inf\"} 2",
            "runnel_sink_commit_seconds_sum{job=\"hot\",sink=\"table\"} 2.04",
            "runnel_sink_commit_seconds_count{job=\"hot\",sink=\"table\"} 2",
            "runnel_job_running{job=\"hot\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
