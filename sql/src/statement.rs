//! The statements [`crate::parse`] returns: plain data that a catalog can store and a
//! server can act on. They are serializable so that a job definition can be written to
//! object storage and read back after a restart.

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{Field, Schema, SchemaRef};
use runnel_connectors::nexmark::NexmarkSource;
use runnel_connectors::registry::ConnectorSpec;
use runnel_runtime::WatermarkStrategy;
use serde::{Deserialize, Serialize};

use crate::types::SqlType;

/// One statement of a SQL text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Statement {
    /// `CREATE SOURCE name (columns, WATERMARK ...) WITH (connector = ...)`
    CreateSource(SourceDef),
    /// `CREATE SINK name WITH (connector = ...) AS SELECT ...`
    CreateSink(SinkDef),
    /// `SHOW SOURCES`
    ShowSources,
    /// `SHOW SINKS`
    ShowSinks,
    /// `SHOW JOBS`
    ShowJobs,
    /// `DROP SINK [IF EXISTS] name`
    DropSink {
        /// The sink (and the job that feeds it) to drop.
        name: String,
        /// Whether a missing sink is fine.
        if_exists: bool,
    },
    /// `EXPLAIN CREATE SINK ...`: plan the sink's query, create nothing.
    Explain(SinkDef),
}

/// A declared column of a source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name (lower-cased unless it was quoted).
    pub name: String,
    /// Declared type.
    pub data_type: SqlType,
    /// False when declared `NOT NULL`.
    pub nullable: bool,
    /// `METADATA FROM 'key'`: the column carries what the connector knows of each record
    /// (a Kafka partition, offset, timestamp...), not a field of its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

/// `WATERMARK FOR column AS column - INTERVAL ...`: the event-time column and how far
/// behind the largest event time seen a row may still arrive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: String,
    /// Allowed lateness, in milliseconds.
    pub delay_ms: u64,
    /// `'source.idle-timeout-ms'` in the `WITH` clause: a partition without rows for
    /// this long stops holding the watermark back until it has rows again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
}

/// A declared source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceDef {
    /// Source name, as queries refer to it.
    pub name: String,
    /// Columns, in order.
    pub columns: Vec<ColumnDef>,
    /// Event time.
    pub watermark: WatermarkDef,
    /// Where rows come from: a connector of the registry and its canonical options.
    pub connector: ConnectorSpec,
}

impl SourceDef {
    /// The Arrow schema of the source's rows.
    pub fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.data_type.to_arrow(), c.nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// The watermark strategy of the declared `WATERMARK` clause.
    pub fn watermark_strategy(&self) -> WatermarkStrategy {
        let strategy = WatermarkStrategy::bounded(
            &self.watermark.column,
            Duration::from_millis(self.watermark.delay_ms),
        );
        match self.watermark.idle_timeout_ms {
            Some(ms) => strategy.with_idle_timeout(Duration::from_millis(ms)),
            None => strategy,
        }
    }

    /// `(column, key)` of the `METADATA FROM` columns.
    pub fn metadata(&self) -> Vec<(String, String)> {
        self.columns
            .iter()
            .filter_map(|c| Some((c.name.clone(), c.metadata.clone()?)))
            .collect()
    }

    /// The generator of a `connector = 'nexmark'` source (`None` for other connectors).
    pub fn nexmark(&self) -> Option<runnel_runtime::Result<NexmarkSource>> {
        (self.connector.connector == "nexmark")
            .then(|| runnel_connectors::nexmark::connector::source_of(&self.connector))
    }
}

/// The query of a sink with its position in the submitted text, so that errors found
/// when it is planned (now or after a restart) point into the text the user wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueryText {
    /// The `SELECT ...` text.
    pub sql: String,
    /// Line of its first character in the submitted text, from 1.
    pub line: u64,
    /// Column of its first character, from 1.
    pub column: u64,
}

impl QueryText {
    /// The query padded with blank lines and spaces so that a tokenizer reports the
    /// positions of the original text.
    pub(crate) fn positioned(&self) -> String {
        let lines = self.line.saturating_sub(1) as usize;
        let columns = self.column.saturating_sub(1) as usize;
        format!("{}{}{}", "\n".repeat(lines), " ".repeat(columns), self.sql)
    }
}

/// A declared sink: a continuous query and where its rows go.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SinkDef {
    /// Sink name (also the job's name).
    pub name: String,
    /// Where rows go besides the job's result stream (`None`: only there).
    pub connector: Option<ConnectorSpec>,
    /// The query that computes the rows.
    pub query: QueryText,
}
