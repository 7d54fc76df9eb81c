//! The job graph: nodes (sources, operators, sinks) and the edges between them.
//!
//! A graph is a plain description; [`crate::exec`] turns it into running subtasks.
//! Build one with [`crate::Dataflow`].

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::operator::OperatorFactory;
use crate::sink::Sink;
use crate::source::Source;
use crate::watermark::WatermarkStrategy;

/// Index of a node in its graph.
pub type NodeId = usize;

/// An output of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    /// The operator's results.
    Main,
    /// Input rows that arrived too late to be used ([`crate::Output::emit_late`]).
    Late,
}

/// How rows travel from the subtasks of one node to those of the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitioning {
    /// Subtask `i` sends to subtask `i` when both sides have the same parallelism,
    /// otherwise batches are spread round-robin.
    Forward,
    /// Rows go to the subtask owning the key group of the hash of these columns.
    Hash(Vec<usize>),
}

/// What a node does.
#[derive(Clone)]
pub enum NodeKind {
    /// Reads a partitioned input and stamps watermarks.
    Source {
        source: Arc<dyn Source>,
        watermark: WatermarkStrategy,
    },
    /// Runs an operator per subtask.
    Operator { factory: OperatorFactory },
    /// Writes to the outside.
    Sink { sink: Arc<dyn Sink> },
}

impl fmt::Debug for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeKind::Source { source, watermark } => f
                .debug_struct("Source")
                .field("source", source)
                .field("watermark", watermark)
                .finish(),
            NodeKind::Operator { .. } => f.write_str("Operator"),
            NodeKind::Sink { sink } => f.debug_struct("Sink").field("sink", sink).finish(),
        }
    }
}

/// One node of the graph.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub parallelism: usize,
    pub kind: NodeKind,
    /// Schema of each input, in input order.
    pub input_schemas: Vec<SchemaRef>,
    /// Schema of the main output (sinks: their input schema).
    pub schema: SchemaRef,
}

impl Node {
    /// Schema of the rows leaving `port`: late rows have the schema of the first input;
    /// a source's are the records it rejected ([`crate::source::rejected_schema`]).
    pub fn port_schema(&self, port: Port) -> SchemaRef {
        match (port, &self.kind) {
            (Port::Main, _) => self.schema.clone(),
            (Port::Late, NodeKind::Source { .. }) => crate::source::rejected_schema(),
            (Port::Late, _) => self.input_schemas.first().unwrap_or(&self.schema).clone(),
        }
    }
}

/// A connection from a port of one node to an input of another.
#[derive(Debug, Clone)]
pub struct Edge {
    pub from: NodeId,
    pub port: Port,
    pub to: NodeId,
    /// Which input of `to` this edge feeds.
    pub input: usize,
    pub partitioning: Partitioning,
}

/// A complete, validated dataflow.
#[derive(Debug)]
pub struct JobGraph {
    pub name: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Number of key groups; fixed for the life of the job.
    pub max_key_groups: u32,
}

impl JobGraph {
    /// Edges leaving `node`.
    pub fn outputs(&self, node: NodeId) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(move |e| e.from == node)
    }

    /// Edges entering `node`.
    pub fn inputs(&self, node: NodeId) -> impl Iterator<Item = &Edge> {
        self.edges.iter().filter(move |e| e.to == node)
    }

    /// How `edge` spreads rows, as `EXPLAIN` and the jobs API name it: `forward` or
    /// `hash(columns)`.
    pub fn partitioning(&self, edge: &Edge) -> String {
        match &edge.partitioning {
            Partitioning::Forward => "forward".to_string(),
            Partitioning::Hash(cols) => {
                let schema = self.nodes[edge.from].port_schema(edge.port);
                let names: Vec<&str> = cols
                    .iter()
                    .map(|&c| schema.field(c).name().as_str())
                    .collect();
                format!("hash({})", names.join(", "))
            }
        }
    }

    /// The graph as text, one node per line with its inputs: what `EXPLAIN` shows.
    pub fn explain(&self) -> String {
        let mut text = String::new();
        for (id, node) in self.nodes.iter().enumerate() {
            let kind = match node.kind {
                NodeKind::Source { .. } => "source",
                NodeKind::Operator { .. } => "operator",
                NodeKind::Sink { .. } => "sink",
            };
            let inputs: Vec<String> = self
                .inputs(id)
                .map(|e| {
                    let port = if e.port == Port::Late { ".late" } else { "" };
                    let part = self.partitioning(e);
                    format!("{}{port} via {part}", self.nodes[e.from].name)
                })
                .collect();
            text.push_str(&format!(
                "{id}: {kind} {} x{}{}\n",
                node.name,
                node.parallelism,
                if inputs.is_empty() {
                    String::new()
                } else {
                    format!(" <- {}", inputs.join("; "))
                }
            ));
        }
        text
    }
}
