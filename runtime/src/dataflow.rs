//! The fluent dataflow builder: code that reads like the flow.
//!
//! ```
//! # use std::sync::Arc;
//! # use runnel_runtime::*;
//! # fn demo(source: Arc<dyn Source>, sink: Arc<dyn Sink>) -> Result<JobGraph> {
//! let flow = Dataflow::new("pass_through").with_parallelism(2);
//! flow.source("events", source, WatermarkStrategy::bounded("ts", std::time::Duration::from_secs(1)))?
//!     .key_by(&["user"])?
//!     .sink("out", sink)?;
//! flow.build()
//! # }
//! ```
//!
//! Concrete operators (windows, top-K, ...) add methods to [`Stream`] through extension
//! traits in their own crates, on top of [`Stream::operator`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};
use crate::graph::{Edge, JobGraph, Node, NodeId, NodeKind, Partitioning, Port};
use crate::keys::{DEFAULT_MAX_KEY_GROUPS, is_hashable};
use crate::operator::OperatorFactory;
use crate::sink::Sink;
use crate::source::Source;
use crate::time::is_event_time_type;
use crate::watermark::WatermarkStrategy;

#[derive(Debug)]
struct Builder {
    name: String,
    default_parallelism: usize,
    max_key_groups: u32,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

/// A dataflow under construction. Cloning gives another handle to the same dataflow.
#[derive(Debug, Clone)]
pub struct Dataflow {
    inner: Rc<RefCell<Builder>>,
}

/// The output of a node, to be connected to further nodes.
#[derive(Debug, Clone)]
pub struct Stream {
    flow: Dataflow,
    node: NodeId,
    port: Port,
    schema: SchemaRef,
    /// Key columns set by [`Stream::key_by`]: the next edge hashes on them.
    keys: Option<Vec<String>>,
    /// The column that carries event time, when the stream has one.
    time_column: Option<String>,
}

impl Dataflow {
    /// An empty dataflow named `name`, with parallelism 1 and 128 key groups.
    pub fn new(name: impl Into<String>) -> Self {
        Dataflow {
            inner: Rc::new(RefCell::new(Builder {
                name: name.into(),
                default_parallelism: 1,
                max_key_groups: DEFAULT_MAX_KEY_GROUPS,
                nodes: Vec::new(),
                edges: Vec::new(),
            })),
        }
    }

    /// Parallelism of the nodes added from now on (sources: at most their partition count).
    pub fn with_parallelism(self, parallelism: usize) -> Self {
        self.inner.borrow_mut().default_parallelism = parallelism.max(1);
        self
    }

    /// Number of key groups, the upper bound of any node's parallelism.
    pub fn with_max_key_groups(self, max_key_groups: u32) -> Self {
        self.inner.borrow_mut().max_key_groups = max_key_groups.max(1);
        self
    }

    /// The parallelism new nodes get.
    pub fn default_parallelism(&self) -> usize {
        self.inner.borrow().default_parallelism
    }

    /// Adds a source whose watermarks follow `watermark`.
    pub fn source(
        &self,
        name: impl Into<String>,
        source: Arc<dyn Source>,
        watermark: WatermarkStrategy,
    ) -> Result<Stream> {
        let name = name.into();
        let schema = source.schema();
        let time = schema
            .field_with_name(&watermark.time_column)
            .map_err(|_| {
                Error::Plan(format!(
                    "source `{name}` has no event-time column `{}`",
                    watermark.time_column
                ))
            })?;
        if !is_event_time_type(time.data_type()) {
            return Err(Error::Plan(format!(
                "event-time column `{}` of source `{name}` is {}, not a timestamp",
                watermark.time_column,
                time.data_type()
            )));
        }
        let time_column = Some(watermark.time_column.clone());
        let partitions = source.partitions().max(1);
        let parallelism = self.default_parallelism().min(partitions);
        let node = self.add_node(Node {
            name,
            parallelism,
            kind: NodeKind::Source { source, watermark },
            input_schemas: Vec::new(),
            schema: schema.clone(),
        })?;
        Ok(Stream {
            flow: self.clone(),
            node,
            port: Port::Main,
            schema,
            keys: None,
            time_column,
        })
    }

    /// Adds an operator with several inputs; input `i` of the operator is `inputs[i]`.
    pub fn operator(
        &self,
        name: impl Into<String>,
        inputs: &[&Stream],
        schema: SchemaRef,
        factory: OperatorFactory,
    ) -> Result<Stream> {
        let node = self.add_node(Node {
            name: name.into(),
            parallelism: self.default_parallelism(),
            kind: NodeKind::Operator { factory },
            input_schemas: inputs.iter().map(|s| s.schema.clone()).collect(),
            schema: schema.clone(),
        })?;
        for (input, stream) in inputs.iter().enumerate() {
            self.connect(stream, node, input)?;
        }
        Ok(Stream {
            flow: self.clone(),
            node,
            port: Port::Main,
            schema,
            keys: None,
            time_column: None,
        })
    }

    /// A node name starting with `prefix` that no node has yet (`window`, `window_2`, ...).
    pub fn unique_name(&self, prefix: &str) -> String {
        let b = self.inner.borrow();
        let taken = |name: &str| b.nodes.iter().any(|n| n.name == name);
        if !taken(prefix) {
            return prefix.to_string();
        }
        (2..)
            .map(|i| format!("{prefix}_{i}"))
            .find(|name| !taken(name))
            .unwrap_or_default()
    }

    /// Validates the dataflow and returns the graph to run.
    pub fn build(&self) -> Result<JobGraph> {
        let b = self.inner.borrow();
        if !b
            .nodes
            .iter()
            .any(|n| matches!(n.kind, NodeKind::Sink { .. }))
        {
            return Err(Error::Plan(format!("dataflow `{}` has no sink", b.name)));
        }
        for (id, node) in b.nodes.iter().enumerate() {
            let feeds_something = b.edges.iter().any(|e| e.from == id && e.port == Port::Main);
            if !feeds_something && !matches!(node.kind, NodeKind::Sink { .. }) {
                return Err(Error::Plan(format!(
                    "the output of `{}` goes nowhere: connect it to a sink",
                    node.name
                )));
            }
            if node.parallelism > b.max_key_groups as usize {
                return Err(Error::Plan(format!(
                    "`{}` has parallelism {} above the {} key groups of the job",
                    node.name, node.parallelism, b.max_key_groups
                )));
            }
        }
        // Nodes are only ever connected to earlier nodes, so the graph is acyclic.
        let nodes = b.nodes.clone();
        Ok(JobGraph {
            name: b.name.clone(),
            nodes,
            edges: b.edges.clone(),
            max_key_groups: b.max_key_groups,
        })
    }

    fn add_node(&self, node: Node) -> Result<NodeId> {
        // Node names become path segments of checkpoint state.
        crate::checkpoint::layout::validate_name("node", &node.name)?;
        let mut b = self.inner.borrow_mut();
        if b.nodes.iter().any(|n| n.name == node.name) {
            return Err(Error::Plan(format!(
                "two nodes are named `{}`: node names must be unique",
                node.name
            )));
        }
        b.nodes.push(node);
        Ok(b.nodes.len() - 1)
    }

    fn connect(&self, from: &Stream, to: NodeId, input: usize) -> Result<()> {
        if !Rc::ptr_eq(&from.flow.inner, &self.inner) {
            return Err(Error::Plan(
                "streams of two dataflows cannot be connected".into(),
            ));
        }
        let partitioning = match &from.keys {
            None => Partitioning::Forward,
            Some(keys) => Partitioning::Hash(
                keys.iter()
                    .map(|k| from.schema.index_of(k))
                    .collect::<std::result::Result<_, _>>()?,
            ),
        };
        self.inner.borrow_mut().edges.push(Edge {
            from: from.node,
            port: from.port,
            to,
            input,
            partitioning,
        });
        Ok(())
    }
}

impl Stream {
    /// Schema of the rows on this stream.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The dataflow this stream belongs to.
    pub fn dataflow(&self) -> &Dataflow {
        &self.flow
    }

    /// Key columns set by [`Stream::key_by`], if any.
    pub fn keys(&self) -> Option<&[String]> {
        self.keys.as_deref()
    }

    /// The event-time column of this stream, if it has one.
    pub fn time_column(&self) -> Option<&str> {
        self.time_column.as_deref()
    }

    /// Declares which column carries event time (operators set this on their output).
    pub fn with_time_column(mut self, column: impl Into<String>) -> Result<Stream> {
        let column = column.into();
        let field = self
            .schema
            .field_with_name(&column)
            .map_err(|_| Error::Plan(format!("no event-time column `{column}` in the stream")))?;
        if !is_event_time_type(field.data_type()) {
            return Err(Error::Plan(format!(
                "`{column}` is {}, not a timestamp",
                field.data_type()
            )));
        }
        self.time_column = Some(column);
        Ok(self)
    }

    /// Routes rows by the hash of `columns`, so that rows with equal keys meet in the same
    /// subtask of the next node.
    pub fn key_by(mut self, columns: &[&str]) -> Result<Stream> {
        for column in columns {
            let field = self.schema.field_with_name(column).map_err(|_| {
                Error::Plan(format!(
                    "cannot key by `{column}`: no such column (columns: {})",
                    column_list(&self.schema)
                ))
            })?;
            if !is_hashable(field.data_type()) {
                return Err(Error::Plan(format!(
                    "cannot key by `{column}` of type {}",
                    field.data_type()
                )));
            }
        }
        if columns.is_empty() {
            return Err(Error::Plan("key_by needs at least one column".into()));
        }
        self.keys = Some(columns.iter().map(|c| c.to_string()).collect());
        Ok(self)
    }

    /// The same stream with its keys dropped: the next edge forwards rows instead of
    /// hashing them (for operators that work where the rows already are).
    pub fn without_keys(mut self) -> Stream {
        self.keys = None;
        self
    }

    /// Sets the parallelism of the node that produces this stream.
    pub fn with_parallelism(self, parallelism: usize) -> Stream {
        let mut b = self.flow.inner.borrow_mut();
        let node = &mut b.nodes[self.node];
        node.parallelism = match &node.kind {
            NodeKind::Source { source, .. } => parallelism.clamp(1, source.partitions().max(1)),
            _ => parallelism.max(1),
        };
        drop(b);
        self
    }

    /// The rows this stream's node could not use because they arrived behind the
    /// watermark, with the schema of its input.
    pub fn late_rows(&self) -> Stream {
        let b = self.flow.inner.borrow();
        let schema = b.nodes[self.node].port_schema(Port::Late).clone();
        Stream {
            flow: self.flow.clone(),
            node: self.node,
            port: Port::Late,
            schema,
            keys: None,
            time_column: self.time_column.clone(),
        }
    }

    /// Adds a single-input operator fed by this stream.
    pub fn operator(
        &self,
        name: impl Into<String>,
        schema: SchemaRef,
        factory: OperatorFactory,
    ) -> Result<Stream> {
        self.flow.operator(name, &[self], schema, factory)
    }

    /// Ends the stream in a sink.
    pub fn sink(&self, name: impl Into<String>, sink: Arc<dyn Sink>) -> Result<()> {
        let node = self.flow.add_node(Node {
            name: name.into(),
            parallelism: self.flow.default_parallelism(),
            kind: NodeKind::Sink { sink },
            input_schemas: vec![self.schema.clone()],
            schema: self.schema.clone(),
        })?;
        self.flow.connect(self, node, 0)
    }
}

/// The column names of a schema, for error messages.
pub fn column_list(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
