//! The channels of a job, planned before any subtask starts: for every edge and every
//! pair of subtasks it connects, one bounded channel, its sending end on the upstream
//! subtask's out-edge and its receiving end among the downstream subtask's inputs.
//!
//! Each subtask is addressed by `(node, subtask)` and takes its own ends with
//! [`Wiring::take`], so the order in which subtasks are started does not matter.
//!
//! Every sending end carries the counters of the subtask it feeds, so senders can count
//! the messages they queue there, and every channel adds its capacity to that subtask's
//! [`SubtaskMetrics::input_capacity`]: together they say how full its inputs are.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::InputChannel;
use super::router::{OutEdge, Outlet, Route};
use crate::graph::{Edge, JobGraph, NodeId, Partitioning};
use crate::metrics::{JobMetrics, SubtaskMetrics};

/// A subtask of a job: a node and the index of one of its subtasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SubtaskId {
    pub(crate) node: NodeId,
    pub(crate) subtask: usize,
}

/// The ends of the channels one subtask owns.
#[derive(Debug, Default)]
pub(crate) struct Ends {
    /// One per out-edge, with a sender per downstream subtask it reaches.
    pub(crate) outputs: Vec<OutEdge>,
    /// One per upstream subtask of every in-edge, tagged with the edge's input index.
    pub(crate) inputs: Vec<InputChannel>,
}

/// Every channel of a job, by the subtask that owns each end.
#[derive(Debug, Default)]
pub(crate) struct Wiring {
    ends: HashMap<SubtaskId, Ends>,
}

impl Wiring {
    /// Creates the channels of `graph`, each holding up to `capacity` messages; the
    /// queues are counted in `metrics` (the job's, laid out as `graph`).
    pub(crate) fn plan(graph: &JobGraph, capacity: usize, metrics: &JobMetrics) -> Self {
        let capacity = capacity.max(1);
        let mut wiring = Wiring::default();
        for edge in &graph.edges {
            let up = graph.nodes[edge.from].parallelism;
            let down = graph.nodes[edge.to].parallelism;
            for u in 0..up {
                let (route, targets) = route(edge, u, up, down, graph.max_key_groups);
                let mut senders = Vec::with_capacity(targets.len());
                for d in targets {
                    let (tx, rx) = mpsc::channel(capacity);
                    let queue: &Arc<SubtaskMetrics> = &metrics.nodes[edge.to].subtasks[d];
                    queue
                        .input_capacity
                        .fetch_add(capacity as u64, Ordering::Relaxed);
                    senders.push(Outlet {
                        tx,
                        queue: queue.clone(),
                    });
                    let to = SubtaskId {
                        node: edge.to,
                        subtask: d,
                    };
                    wiring.ends_of(to).inputs.push((edge.input, rx));
                }
                let from = SubtaskId {
                    node: edge.from,
                    subtask: u,
                };
                wiring.ends_of(from).outputs.push(OutEdge {
                    port: edge.port,
                    route,
                    senders,
                });
            }
        }
        wiring
    }

    fn ends_of(&mut self, id: SubtaskId) -> &mut Ends {
        self.ends.entry(id).or_default()
    }

    /// The ends `id` owns (none for a subtask without edges on that side).
    pub(crate) fn take(&mut self, id: SubtaskId) -> Ends {
        self.ends.remove(&id).unwrap_or_default()
    }
}

/// How upstream subtask `u` of `edge` picks among the downstream subtasks it reaches.
fn route(
    edge: &Edge,
    u: usize,
    up: usize,
    down: usize,
    max_key_groups: u32,
) -> (Route, Vec<usize>) {
    match &edge.partitioning {
        Partitioning::Forward if up == down => (Route::Direct, vec![u]),
        Partitioning::Forward if down == 1 => (Route::Direct, vec![0]),
        Partitioning::Forward => (Route::RoundRobin { next: u }, (0..down).collect()),
        Partitioning::Hash(columns) => (
            Route::Hash {
                columns: columns.clone(),
                max_key_groups,
            },
            (0..down).collect(),
        ),
    }
}
