//! Rows per second of a job, from its counters sampled by the server.
//!
//! The runtime keeps plain counters (rows in and out per subtask). A rate needs two
//! readings and the time between them, so the job manager samples every job's counters
//! every [`SAMPLE_INTERVAL`] and keeps the readings of the last [`RATE_WINDOW`]: the rate
//! is the change from the oldest kept reading to the newest, divided by the time between
//! them. That follows a change within one window, does not depend on how often anyone
//! asks, and is zero once a job is idle for a window. A restarted attempt starts its
//! counters over, so the readings of the previous attempt are dropped.
//!
//! The job's own rows in are the rows its sources read; its rows out are the rows
//! emitted by the nodes that feed its sinks, each node once, so a job writing one result
//! stream to two sinks (its results topic and a table) does not count it twice.
//!
//! A node's backpressure is read the same way: the change of each subtask's time
//! blocked on send over the window, divided by the window, is the fraction of that time
//! the subtask waited for room downstream; the node shows its most blocked subtask.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use runnel_runtime::{JobMetrics, Millis, NodeMetrics};
use serde::Serialize;

use super::topology::{JobTopology, NodeRole};

/// How often the manager reads the counters.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// How far back the readings a rate is computed over go.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Which nodes' counters are the job's input and output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRoles {
    /// Source nodes: their rows in are rows read.
    pub sources: Vec<String>,
    /// Nodes with an edge into a sink: their rows out are the job's output.
    pub outputs: Vec<String>,
}

impl JobRoles {
    /// The roles of the nodes of `topology`.
    pub fn of(topology: &JobTopology) -> Self {
        let sources = topology.named(NodeRole::Source).map(String::from).collect();
        let mut outputs: Vec<String> = Vec::new();
        for edge in &topology.edges {
            let into_sink = topology.role(&edge.to) == Some(NodeRole::Sink);
            if into_sink && !outputs.contains(&edge.from) {
                outputs.push(edge.from.clone());
            }
        }
        JobRoles { sources, outputs }
    }

    /// `(rows in, rows out)` of the job, from its node counters.
    pub fn totals(&self, metrics: &JobMetrics) -> (u64, u64) {
        let sum = |names: &[String], count: fn(&NodeMetrics) -> u64| {
            names
                .iter()
                .filter_map(|name| metrics.node(name))
                .map(count)
                .sum::<u64>()
        };
        (
            sum(&self.sources, |n| n.rows_in()),
            sum(&self.outputs, |n| n.rows_out()),
        )
    }
}

/// Rows per second of one node, and how much of the time it was backpressured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorRates {
    pub name: String,
    pub rows_in_per_second: f64,
    pub rows_out_per_second: f64,
    /// The fraction of the window its most blocked subtask waited for room downstream,
    /// from 0 to 1.
    pub backpressure: f64,
}

/// Rows per second of a job and of each of its nodes, over the last `window_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRates {
    pub window_seconds: f64,
    pub rows_in_per_second: f64,
    pub rows_out_per_second: f64,
    /// In graph order, as the job's metrics list them.
    pub operators: Vec<OperatorRates>,
}

/// One reading of a job's counters.
#[derive(Debug, Clone)]
struct Reading {
    at: Millis,
    /// Per node, in graph order.
    nodes: Vec<NodeReading>,
    job: (u64, u64),
}

#[derive(Debug, Clone)]
struct NodeReading {
    rows_in: u64,
    rows_out: u64,
    /// Microseconds blocked on send, per subtask.
    blocked: Vec<u64>,
}

impl NodeReading {
    fn of(node: &NodeMetrics) -> Self {
        let blocked = node.subtasks.iter().map(|s| &s.send_blocked_micros);
        NodeReading {
            rows_in: node.rows_in(),
            rows_out: node.rows_out(),
            blocked: blocked.map(|b| b.load(Ordering::Relaxed)).collect(),
        }
    }
}

/// The recent readings of one job's counters.
#[derive(Debug, Default)]
pub struct RateWindow {
    /// The counters being read: a restarted attempt has new ones.
    metrics: Option<Arc<JobMetrics>>,
    readings: VecDeque<Reading>,
}

impl RateWindow {
    /// Reads `metrics` at `now` (Unix milliseconds) and forgets readings older than the
    /// window.
    pub fn observe(&mut self, metrics: &Arc<JobMetrics>, roles: &JobRoles, now: Millis) {
        if !self
            .metrics
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(m, metrics))
        {
            self.metrics = Some(metrics.clone());
            self.readings.clear();
        }
        let nodes = metrics.nodes.iter().map(NodeReading::of).collect();
        self.readings.push_back(Reading {
            at: now,
            nodes,
            job: roles.totals(metrics),
        });
        let oldest = now.saturating_sub(RATE_WINDOW.as_millis() as Millis);
        while self.readings.front().is_some_and(|r| r.at < oldest) {
            self.readings.pop_front();
        }
    }

    /// The rates between the oldest and the newest reading; `None` until two readings
    /// some time apart exist.
    pub fn rates(&self) -> Option<JobRates> {
        let (first, last) = (self.readings.front()?, self.readings.back()?);
        let metrics = self.metrics.as_ref()?;
        let seconds = (last.at - first.at) as f64 / 1000.0;
        if seconds <= 0.0 {
            return None;
        }
        let per_second = |from: u64, to: u64| to.saturating_sub(from) as f64 / seconds;
        let operators = metrics
            .nodes
            .iter()
            .zip(first.nodes.iter().zip(&last.nodes))
            .map(|(node, (a, b))| OperatorRates {
                name: node.name.clone(),
                rows_in_per_second: per_second(a.rows_in, b.rows_in),
                rows_out_per_second: per_second(a.rows_out, b.rows_out),
                backpressure: (a.blocked.iter().zip(&b.blocked))
                    .map(|(from, to)| (per_second(*from, *to) / 1e6).min(1.0))
                    .fold(0.0, f64::max),
            })
            .collect();
        Some(JobRates {
            window_seconds: seconds,
            rows_in_per_second: per_second(first.job.0, last.job.0),
            rows_out_per_second: per_second(first.job.1, last.job.1),
            operators,
        })
    }
}

#[cfg(test)]
mod tests {
    use runnel_runtime::CheckpointMetrics;

    use super::*;

    fn metrics(names: &[&str]) -> Arc<JobMetrics> {
        Arc::new(JobMetrics {
            nodes: names
                .iter()
                .map(|name| NodeMetrics {
                    name: name.to_string(),
                    subtasks: vec![Arc::default(), Arc::default()],
                })
                .collect(),
            checkpoints: CheckpointMetrics::default(),
        })
    }

    fn add(metrics: &JobMetrics, node: usize, rows_in: u64, rows_out: u64) {
        let subtask = &metrics.nodes[node].subtasks[1];
        subtask.rows_in.fetch_add(rows_in, Ordering::Relaxed);
        subtask.rows_out.fetch_add(rows_out, Ordering::Relaxed);
    }

    fn roles() -> JobRoles {
        JobRoles {
            sources: vec!["bids".into()],
            outputs: vec!["window".into()],
        }
    }

    #[test]
    fn rates_are_counter_changes_over_the_window() {
        let job = metrics(&["bids", "window", "output", "table"]);
        let mut window = RateWindow::default();
        window.observe(&job, &roles(), 0);
        assert_eq!(window.rates(), None, "one reading is no rate");
        // 2 s later: the source read 4,000 rows, the window emitted 10 to both sinks.
        add(&job, 0, 4_000, 4_000);
        add(&job, 1, 4_000, 10);
        add(&job, 2, 10, 10);
        add(&job, 3, 10, 10);
        window.observe(&job, &roles(), 2_000);
        let rates = window.rates().unwrap();
        assert_eq!(rates.window_seconds, 2.0);
        assert_eq!(rates.rows_in_per_second, 2_000.0);
        assert_eq!(rates.rows_out_per_second, 5.0, "each output row once");
        assert_eq!(rates.operators[1].name, "window");
        assert_eq!(rates.operators[1].rows_in_per_second, 2_000.0);
        assert_eq!(rates.operators[3].rows_out_per_second, 5.0);
        assert_eq!(roles().totals(&job), (4_000, 10));
    }

    #[test]
    fn backpressure_is_the_most_blocked_subtasks_share_of_the_window() {
        let job = metrics(&["bids", "window"]);
        let mut window = RateWindow::default();
        window.observe(&job, &roles(), 0);
        let blocked = |subtask: usize, micros: u64| {
            let counter = &job.nodes[0].subtasks[subtask].send_blocked_micros;
            counter.fetch_add(micros, Ordering::Relaxed);
        };
        blocked(0, 500_000);
        blocked(1, 1_500_000);
        window.observe(&job, &roles(), 2_000);
        let rates = window.rates().unwrap();
        assert_eq!(rates.operators[0].backpressure, 0.75);
        assert_eq!(rates.operators[1].backpressure, 0.0);
    }

    #[test]
    fn an_idle_job_falls_to_zero_once_the_window_passes() {
        let job = metrics(&["bids", "window"]);
        let mut window = RateWindow::default();
        window.observe(&job, &roles(), 0);
        add(&job, 0, 1_000, 1_000);
        window.observe(&job, &roles(), 1_000);
        assert_eq!(window.rates().unwrap().rows_in_per_second, 1_000.0);
        let window_millis = RATE_WINDOW.as_millis() as Millis;
        let mut now = 1_000;
        while now <= 1_000 + window_millis {
            now += 1_000;
            window.observe(&job, &roles(), now);
        }
        let rates = window.rates().unwrap();
        assert_eq!(rates.rows_in_per_second, 0.0);
        assert_eq!(rates.window_seconds, RATE_WINDOW.as_secs_f64());
    }

    #[test]
    fn a_new_attempt_starts_the_window_over() {
        let first = metrics(&["bids", "window"]);
        add(&first, 0, 50_000, 50_000);
        let mut window = RateWindow::default();
        window.observe(&first, &roles(), 0);
        window.observe(&first, &roles(), 1_000);
        // The restarted attempt counts from zero: no negative rate, no stale one.
        let second = metrics(&["bids", "window"]);
        window.observe(&second, &roles(), 2_000);
        assert_eq!(window.rates(), None);
        add(&second, 0, 300, 300);
        window.observe(&second, &roles(), 3_000);
        assert_eq!(window.rates().unwrap().rows_in_per_second, 300.0);
    }
}
