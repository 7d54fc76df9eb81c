//! `GET /metrics`: every job's counters in the Prometheus text format.
//!
//! Rendered on request from the live counters (plain atomics owned by each job), so
//! there is no registry to keep in sync and a job's series vanish with the job.
//!
//! Phase-2 commit latency is a histogram per job and sink node,
//! `runnel_sink_commit_seconds{job, sink}` (`_bucket{le}`, `_sum`, `_count`): the runtime
//! times every `Sink::commit` call, so an Iceberg table's catalog commit and a log
//! append show side by side.
//!
//! Backpressure has three views per operator: `runnel_operator_input_fill_ratio` (how
//! full its fullest subtask's input channels are now; near 1 means it is the
//! bottleneck), `runnel_operator_send_blocked_seconds_total` (time its subtasks waited
//! for room downstream; `rate()` of it over the parallelism is the share of time
//! blocked) and `runnel_operator_backpressure_ratio` (that share for the most blocked
//! subtask over the server's rate window).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use runnel_runtime::{JobMetrics, NodeMetrics, WATERMARK_START};

use super::AppState;
use crate::jobs::{JobState, JobStatus, OperatorRates};

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

/// Every family: name, help text and type, in the order they are written.
const FAMILIES: [(&str, &str, &str); 17] = [
    (
        ROWS_IN,
        "Rows received by an operator (sources: rows read).",
        "counter",
    ),
    (ROWS_OUT, "Rows emitted by an operator.", "counter"),
    (LATE, "Rows that arrived behind the watermark.", "counter"),
    (
        REJECTED,
        "Records a source skipped as unusable (bad format, missing event time); 0 elsewhere.",
        "counter",
    ),
    (
        LAG,
        "Wall-clock time minus the operator's watermark.",
        "gauge",
    ),
    (
        BLOCKED,
        "Time the operator's subtasks waited for room in a full output channel.",
        "counter",
    ),
    (
        BACKPRESSURE,
        "Share of the last rate window its most blocked subtask waited for room downstream.",
        "gauge",
    ),
    (
        FILL,
        "How full the input channels of its fullest subtask are (0 empty, 1 full).",
        "gauge",
    ),
    (
        QUEUED,
        "Messages waiting in the operator's input channels.",
        "gauge",
    ),
    (
        CAPACITY,
        "Messages the operator's input channels hold.",
        "gauge",
    ),
    (
        COMPLETED,
        "Checkpoints completed by the job since it started here.",
        "counter",
    ),
    (
        FAILED,
        "Checkpoints of the job that failed since it started here.",
        "counter",
    ),
    (
        DURATION,
        "From barrier injection to durable manifest, for the newest checkpoint.",
        "gauge",
    ),
    (SIZE, "Bytes of state in the newest checkpoint.", "gauge"),
    (
        COMMITS,
        "Phase-2 commit latency of a sink, per checkpoint (this attempt of the job).",
        "histogram",
    ),
    (RUNNING, "1 while the job runs, 0 otherwise.", "gauge"),
    (
        RESTARTS,
        "Restarts of the job after failures since it started here.",
        "counter",
    ),
];

const ROWS_IN: &str = "runnel_operator_rows_in_total";
const ROWS_OUT: &str = "runnel_operator_rows_out_total";
const LATE: &str = "runnel_operator_late_rows_total";
const REJECTED: &str = "runnel_operator_rejected_rows_total";
const LAG: &str = "runnel_operator_watermark_lag_seconds";
const BLOCKED: &str = "runnel_operator_send_blocked_seconds_total";
const BACKPRESSURE: &str = "runnel_operator_backpressure_ratio";
const FILL: &str = "runnel_operator_input_fill_ratio";
const QUEUED: &str = "runnel_operator_input_queued_messages";
const CAPACITY: &str = "runnel_operator_input_capacity_messages";
const COMPLETED: &str = "runnel_checkpoints_completed_total";
const FAILED: &str = "runnel_checkpoints_failed_total";
const DURATION: &str = "runnel_checkpoint_duration_seconds";
const SIZE: &str = "runnel_checkpoint_size_bytes";
const COMMITS: &str = "runnel_sink_commit_seconds";
const RUNNING: &str = "runnel_job_running";
const RESTARTS: &str = "runnel_job_restarts_total";

/// Samples gathered per family, written out family by family.
#[derive(Default)]
struct Exposition {
    /// `(family, name suffix, labels, value)`; the suffix is empty but for histograms.
    samples: Vec<(&'static str, &'static str, String, f64)>,
}

impl Exposition {
    fn add(&mut self, family: &'static str, labels: &str, value: f64) {
        self.samples.push((family, "", labels.to_owned(), value));
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for (name, help, kind) in FAMILIES {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (_, suffix, labels, value) in self.samples.iter().filter(|s| s.0 == name) {
                let _ = writeln!(out, "{name}{suffix}{{{labels}}} {value}");
            }
        }
        out
    }
}

/// The Prometheus text for `jobs`, with watermark lag measured against `now` (ms).
pub fn render(jobs: &[JobStatus], now: i64) -> String {
    let mut out = Exposition::default();
    for job in jobs {
        let name = escape(&job.definition.name);
        let labels = format!("job=\"{name}\"");
        let running = matches!(job.state, JobState::Running);
        out.add(RUNNING, &labels, f64::from(u8::from(running)));
        out.add(RESTARTS, &labels, f64::from(job.restarts));
        let Some(metrics) = &job.metrics else {
            continue;
        };
        for node in &metrics.nodes {
            let rates = job.rates.as_ref();
            let rate = rates.and_then(|r| r.operators.iter().find(|o| o.name == node.name));
            let labels = format!("{labels},operator=\"{}\"", escape(&node.name));
            operator(&mut out, &labels, node, rate, now);
        }
        checkpoints(&mut out, &labels, metrics);
    }
    out.text()
}

fn operator(
    out: &mut Exposition,
    labels: &str,
    node: &NodeMetrics,
    rate: Option<&OperatorRates>,
    now: i64,
) {
    out.add(ROWS_IN, labels, node.rows_in() as f64);
    out.add(ROWS_OUT, labels, node.rows_out() as f64);
    out.add(LATE, labels, node.late_rows() as f64);
    out.add(REJECTED, labels, node.rejected_rows() as f64);
    let watermark = node.watermark();
    if watermark != WATERMARK_START {
        out.add(LAG, labels, now.saturating_sub(watermark) as f64 / 1000.0);
    }
    out.add(BLOCKED, labels, node.send_blocked_micros() as f64 / 1e6);
    if let Some(rate) = rate {
        out.add(BACKPRESSURE, labels, rate.backpressure);
    }
    out.add(FILL, labels, node.input_fill());
    out.add(QUEUED, labels, node.input_queued() as f64);
    out.add(CAPACITY, labels, node.input_capacity() as f64);
}

fn checkpoints(out: &mut Exposition, labels: &str, metrics: &JobMetrics) {
    let counters = &metrics.checkpoints;
    out.add(
        COMPLETED,
        labels,
        counters.completed.load(Ordering::Relaxed) as f64,
    );
    out.add(
        FAILED,
        labels,
        counters.failed.load(Ordering::Relaxed) as f64,
    );
    if let Some(last) = counters.last() {
        out.add(DURATION, labels, last.duration_millis as f64 / 1000.0);
        out.add(SIZE, labels, last.size_bytes as f64);
    }
    for (sink, histogram) in counters.sink_commits() {
        let labels = format!("{labels},sink=\"{}\"", escape(&sink));
        for (bound, count) in &histogram.buckets {
            let le = match bound.is_finite() {
                true => bound.to_string(),
                false => "+Inf".to_string(),
            };
            let bucket = format!("{labels},le=\"{le}\"");
            out.samples
                .push((COMMITS, "_bucket", bucket, *count as f64));
        }
        let sum = histogram.sum_seconds;
        out.samples.push((COMMITS, "_sum", labels.clone(), sum));
        let count = histogram.count as f64;
        out.samples.push((COMMITS, "_count", labels, count));
    }
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

    use runnel_runtime::{CheckpointMetrics, CheckpointOutcome, CheckpointRecord};

    use super::*;

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
        node.subtasks[1]
            .send_blocked_micros
            .store(250_000, Ordering::Relaxed);
        for subtask in &node.subtasks {
            subtask.input_capacity.store(16, Ordering::Relaxed);
        }
        node.subtasks[0].input_queued.store(17, Ordering::Relaxed);
        let metrics = JobMetrics {
            nodes: vec![node],
            checkpoints: CheckpointMetrics::default(),
        };
        metrics.checkpoints.record(CheckpointRecord {
            epoch: 3,
            finished_at: 10_000,
            duration_millis: 250,
            size_bytes: 4096,
            sink_commit_millis: Some(40),
            outcome: CheckpointOutcome::Completed,
        });
        metrics
            .checkpoints
            .record_sink_commit("table", Duration::from_millis(40));
        metrics
            .checkpoints
            .record_sink_commit("table", Duration::from_millis(2_000));
        let job = JobStatus::running_for_tests(Arc::new(metrics));
        let text = render(&[job], 10_000);
        for line in [
            "# TYPE runnel_operator_rows_in_total counter",
            "runnel_operator_rows_in_total{job=\"hot\",operator=\"window\"} 12",
            "runnel_operator_watermark_lag_seconds{job=\"hot\",operator=\"window\"} 2",
            "runnel_operator_send_blocked_seconds_total{job=\"hot\",operator=\"window\"} 0.25",
            "runnel_operator_input_fill_ratio{job=\"hot\",operator=\"window\"} 1",
            "runnel_operator_input_queued_messages{job=\"hot\",operator=\"window\"} 17",
            "runnel_operator_input_capacity_messages{job=\"hot\",operator=\"window\"} 32",
            "runnel_checkpoints_completed_total{job=\"hot\"} 1",
            "runnel_checkpoints_failed_total{job=\"hot\"} 0",
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
            "runnel_job_restarts_total{job=\"hot\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        // No rates sampled yet: no backpressure ratio, but its family is declared.
        assert!(text.contains("# TYPE runnel_operator_backpressure_ratio gauge"));
        assert!(!text.contains("runnel_operator_backpressure_ratio{"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
