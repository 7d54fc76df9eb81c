//! runnel-sql: SQL text to runnel dataflows.
//!
//! Three steps, each pure (nothing is created here; acting on statements is the
//! caller's job, so a refused statement leaves nothing half-made):
//! 1. [`parse`] splits a text into [`Statement`]s: `CREATE SOURCE`, `CREATE SINK ... AS
//!    SELECT`, `SHOW SOURCES | SINKS | JOBS`, `DROP SINK`, `EXPLAIN CREATE SINK`;
//! 2. [`plan_sink`] plans a sink's query against the declared sources with DataFusion's
//!    SQL planner and translates it into a serializable [`PipelinePlan`] (window table
//!    functions `TUMBLE`, `HOP`, `SESSION`; `GROUP BY window_start, window_end, keys`
//!    with `COUNT`, `SUM`, `MIN`, `MAX`, `AVG`; `WHERE` and projections; top-N per
//!    window with `ROW_NUMBER()`);
//! 3. [`build`] adds the plan's operators to a [`runnel_runtime::Dataflow`].
//!
//! Every refusal is a [`SqlError`] naming the line and column of the offending token.
//! This crate is the only one that knows SQL; it knows runtime, operators and
//! connectors, and nothing depends on it but the `runnel` binary.

// Tests may read the machine's clock; the library takes it injected (clippy.toml).
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_types))]
// Library code returns errors; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

mod build;
mod depth;
mod error;
mod parse;
mod plan;
mod statement;
mod types;

#[cfg(test)]
mod error_tests;

pub use build::build;
pub use depth::{DEFAULT_MAX_EXPR_DEPTH, Limits, check_query_depth};
pub use error::{Result, SqlError};
pub use parse::{parse, parse_limited, parse_with};
pub use plan::{
    AggregateCall, AggregateFn, JoinInput, OrderKey, PipelinePlan, ProjectColumn, Stage,
    WindowKind, plan_sink, plan_sink_limited,
};
pub use statement::{ColumnDef, QueryText, SinkDef, SourceDef, Statement, WatermarkDef};
pub use types::SqlType;
