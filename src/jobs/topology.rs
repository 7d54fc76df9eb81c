//! The shape of a running job's dataflow, kept apart from the graph itself (which holds
//! the sources, sinks and operator factories of one attempt): what the jobs API and the
//! console draw as the job graph, and which nodes are the job's input and output.

use runnel_runtime::graph::NodeKind;
use runnel_runtime::{JobGraph, Port};
use serde::Serialize;

/// What a node of the graph does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    Source,
    Operator,
    Sink,
}

/// One node: its name, role and number of subtasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopologyNode {
    pub name: String,
    pub role: NodeRole,
    pub parallelism: usize,
}

/// One edge, by node names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopologyEdge {
    pub from: String,
    pub to: String,
    /// `forward` or `hash(columns)`.
    pub partitioning: String,
    /// Carries the late rows of `from` rather than its results.
    pub late: bool,
}

/// Nodes in graph order (every edge goes from an earlier node to a later one) and edges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobTopology {
    pub nodes: Vec<TopologyNode>,
    pub edges: Vec<TopologyEdge>,
}

impl JobTopology {
    /// The shape of `graph`.
    pub fn of(graph: &JobGraph) -> Self {
        let nodes = graph
            .nodes
            .iter()
            .map(|n| TopologyNode {
                name: n.name.clone(),
                role: match n.kind {
                    NodeKind::Source { .. } => NodeRole::Source,
                    NodeKind::Operator { .. } => NodeRole::Operator,
                    NodeKind::Sink { .. } => NodeRole::Sink,
                },
                parallelism: n.parallelism,
            })
            .collect();
        let edges = graph
            .edges
            .iter()
            .map(|e| TopologyEdge {
                from: graph.nodes[e.from].name.clone(),
                to: graph.nodes[e.to].name.clone(),
                partitioning: graph.partitioning(e),
                late: e.port == Port::Late,
            })
            .collect();
        JobTopology { nodes, edges }
    }

    /// Names of the nodes with `role`.
    pub fn named(&self, role: NodeRole) -> impl Iterator<Item = &str> {
        self.nodes
            .iter()
            .filter(move |n| n.role == role)
            .map(|n| n.name.as_str())
    }

    /// The role of node `name`.
    pub fn role(&self, name: &str) -> Option<NodeRole> {
        self.nodes.iter().find(|n| n.name == name).map(|n| n.role)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use runnel_connectors::channel::CollectSink;
    use runnel_connectors::nexmark::{NexmarkOptions, NexmarkSource, NexmarkTable};
    use runnel_runtime::{Dataflow, WatermarkStrategy};

    use super::*;

    #[test]
    fn a_graph_becomes_nodes_with_roles_and_named_edges() {
        let flow = Dataflow::new("t").with_parallelism(2);
        let source = NexmarkSource::new(NexmarkTable::Bid, NexmarkOptions::default()).unwrap();
        let strategy = WatermarkStrategy::bounded("date_time", Duration::from_secs(1));
        flow.source("bids", Arc::new(source), strategy)
            .unwrap()
            .key_by(&["auction"])
            .unwrap()
            .sink("out", Arc::new(CollectSink::new()))
            .unwrap();
        let topology = JobTopology::of(&flow.build().unwrap());
        let roles: Vec<(&str, NodeRole, usize)> = topology
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.role, n.parallelism))
            .collect();
        assert_eq!(
            roles,
            [("bids", NodeRole::Source, 1), ("out", NodeRole::Sink, 2)]
        );
        assert_eq!(
            topology.edges,
            [TopologyEdge {
                from: "bids".into(),
                to: "out".into(),
                partitioning: "hash(auction)".into(),
                late: false,
            }]
        );
        assert_eq!(topology.named(NodeRole::Sink).collect::<Vec<_>>(), ["out"]);
    }
}
