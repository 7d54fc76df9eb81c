//! The statements [`crate::parse`] returns: plain data that a catalog can store and a
//! server can act on. They are serializable so that a job definition can be written to
//! object storage and read back after a restart.

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{Field, Schema, SchemaRef};
use runnel_connectors::nexmark::{NexmarkOptions, NexmarkSource, NexmarkTable};
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
}

/// `WATERMARK FOR column AS column - INTERVAL ...`: the event-time column and how far
/// behind the largest event time seen a row may still arrive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: String,
    /// Allowed lateness, in milliseconds.
    pub delay_ms: u64,
}

/// Where a source's rows come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "connector", rename_all = "snake_case")]
pub enum SourceConnector {
    /// A topic of the embedded log (`connector = 'log'`, `topic`, `partitions`).
    Log {
        /// Topic name (default: the source name).
        topic: String,
        /// Partitions of the topic when it has to be created (default 1).
        partitions: u32,
    },
    /// The Nexmark generator (`connector = 'nexmark'`, `type`, `rate`, `seed`,
    /// `max_events`, `partitions`).
    Nexmark {
        /// `bid`, `auction` or `person`.
        table: String,
        /// Selects the generated stream.
        seed: u64,
        /// Events of all three tables per second of event time.
        events_per_second: u64,
        /// Rows to generate; unbounded when absent.
        max_events: Option<u64>,
        /// Partitions of the generated stream.
        partitions: u32,
    },
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
    /// Where rows come from.
    pub connector: SourceConnector,
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
        WatermarkStrategy::bounded(
            &self.watermark.column,
            Duration::from_millis(self.watermark.delay_ms),
        )
    }

    /// The generator of a `connector = 'nexmark'` source (`None` for other connectors).
    pub fn nexmark(&self) -> Option<runnel_runtime::Result<NexmarkSource>> {
        let SourceConnector::Nexmark {
            table,
            seed,
            events_per_second,
            max_events,
            partitions,
        } = &self.connector
        else {
            return None;
        };
        let options = NexmarkOptions {
            seed: *seed,
            events_per_second: *events_per_second,
            max_events: *max_events,
            partitions: *partitions as usize,
            ..NexmarkOptions::default()
        };
        Some(
            table
                .parse::<NexmarkTable>()
                .and_then(|t| NexmarkSource::new(t, options)),
        )
    }
}

/// Where a sink's rows go.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "connector", rename_all = "snake_case")]
pub enum SinkConnector {
    /// Only the job's live result stream (no `WITH` clause).
    Results,
    /// A topic of the embedded log (`connector = 'log'`, `topic`, `partitions`).
    Log {
        /// Topic name (default: the sink name).
        topic: String,
        /// Partitions of the topic when it has to be created.
        partitions: Option<u32>,
    },
    /// An Iceberg table (`connector = 'iceberg'`, `table`).
    Iceberg {
        /// Table name (default: the sink name).
        table: String,
    },
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
    /// Where rows go.
    pub connector: SinkConnector,
    /// The query that computes the rows.
    pub query: QueryText,
}
