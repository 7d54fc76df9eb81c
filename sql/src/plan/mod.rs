//! `CREATE SINK ... AS SELECT` planned into a [`PipelinePlan`]: a pipeline of runnel
//! operators over a source (a join adds a second pipeline as its other input), validated
//! when the sink is submitted.
//!
//! Planning runs DataFusion's SQL planner over the declared sources (names, types and
//! coercions resolve exactly as in DataFusion), then translates the logical plan into
//! stages ([`translate`]). The plan is plain serializable data: scalar expressions are
//! stored as SQL text (DataFusion's unparser) and compiled again when the plan is built,
//! so a job definition written today can be rebuilt after a restart.

mod context;
mod explain;
mod exprs;
mod interval;
mod locate;
mod translate;
pub(crate) mod window_tvf;

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::logical_expr::planner::ContextProvider;
use datafusion::optimizer::Analyzer;
use datafusion::sql::planner::SqlToRel;
use datafusion::sql::sqlparser::ast;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Location, Tokenizer};
pub use runnel_operators::WindowKind;
use serde::{Deserialize, Serialize};

pub(crate) use context::SqlContext;
pub(crate) use exprs::expr_from_sql;
pub(crate) use interval::literal_millis;

use crate::depth::Limits;
use crate::error::{Result, SqlError};
use crate::parse::cursor::{DIALECT, parser_error};
use crate::statement::{SinkDef, SourceDef};
use locate::Locator;

/// An aggregate function of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateFn {
    /// `COUNT(*)` (no column) or `COUNT(column)`.
    Count,
    /// `SUM(column)`
    Sum,
    /// `MIN(column)`
    Min,
    /// `MAX(column)`
    Max,
    /// `AVG(column)`
    Avg,
}

/// One aggregate of a window stage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AggregateCall {
    /// The function.
    pub function: AggregateFn,
    /// The input column (`None` for `COUNT(*)`).
    pub column: Option<String>,
    /// The output column.
    pub alias: String,
}

/// An output column of a projection: a SQL expression over the stage's input columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProjectColumn {
    /// The expression, as SQL.
    pub expr: String,
    /// The output column's name.
    pub name: String,
}

/// One `ORDER BY` key of a top-N.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderKey {
    /// Column to order by.
    pub column: String,
    /// Largest first.
    pub descending: bool,
}

/// One operator of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Keeps the rows for which `predicate` (SQL) is true.
    Filter {
        /// A boolean SQL expression over the input columns.
        predicate: String,
    },
    /// Computes the output columns.
    Project {
        /// Output columns, in order.
        columns: Vec<ProjectColumn>,
    },
    /// Keys the stream and aggregates it per window: output is the keys,
    /// `window_start`, `window_end`, then the aggregates; event time is `window_end`.
    Window {
        /// The windows.
        window: WindowKind,
        /// Grouping keys (input columns).
        keys: Vec<String>,
        /// Aggregates, one output column each.
        aggregates: Vec<AggregateCall>,
        /// The event-time column the windows are cut by; `None`: the stream's own (the
        /// source's event time, or `window_end` after an earlier window).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<String>,
    },
    /// Inner join with a second pipeline, window by window: rows of both sides carry the
    /// bounds of the window they were aggregated in, and a window's rows are joined once
    /// the watermark passes its end. Output: this stream's columns, then `right`'s.
    Join {
        /// The other side.
        right: JoinInput,
        /// Equi-join columns of this side (including `window_start` and `window_end`).
        left_keys: Vec<String>,
        /// The matching columns of the other side, pairwise.
        right_keys: Vec<String>,
        /// This side's window-end column (one of `left_keys`): the join's clock.
        left_end: String,
        /// The other side's window-end column, paired with `left_end`.
        right_end: String,
        /// A further condition every joined pair must meet (SQL over the output columns).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        residual: Option<String>,
    },
    /// The first `k` rows of every window by `order_by`, with their rank in `rn`.
    TopK {
        /// Rows kept per window.
        k: usize,
        /// Ranking order.
        order_by: Vec<OrderKey>,
    },
}

/// The second input of a [`Stage::Join`]: a pipeline of its own, over a source that may
/// be the same as the first side's (built once and read by both).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JoinInput {
    /// The source this side reads, as declared when the sink was planned.
    pub source: SourceDef,
    /// Its operators, in order.
    pub stages: Vec<Stage>,
}

/// A sink's query as runnel operators: `source -> stages`. Serializable, so that it can
/// be stored as a durable job definition and rebuilt with [`crate::build`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PipelinePlan {
    /// The sink's name.
    pub name: String,
    /// The source the pipeline reads, as declared when the sink was planned.
    pub source: SourceDef,
    /// The operators, in order.
    pub stages: Vec<Stage>,
}

/// Plans the query of `sink` against the declared `sources`: every name, type and
/// query shape is checked here, so a plan that comes back can be built.
///
/// ```
/// let text = "CREATE SOURCE bids (auction BIGINT, price BIGINT, date_time TIMESTAMP(3), \
///             WATERMARK FOR date_time AS date_time - INTERVAL '5' SECOND) \
///             WITH (connector = 'log', topic = 'bids');
///             CREATE SINK counts AS SELECT auction, window_start, window_end, COUNT(*) AS bids \
///             FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) \
///             GROUP BY auction, window_start, window_end";
/// let statements = runnel_sql::parse(text).unwrap();
/// let (runnel_sql::Statement::CreateSource(bids), runnel_sql::Statement::CreateSink(sink)) =
///     (&statements[0], &statements[1]) else { unreachable!() };
/// let plan = runnel_sql::plan_sink(sink, std::slice::from_ref(bids)).unwrap();
/// let names: Vec<_> = plan.output_schema().unwrap().fields().iter().map(|f| f.name().clone()).collect();
/// assert_eq!(names, ["auction", "window_start", "window_end", "bids"]);
/// ```
pub fn plan_sink(sink: &SinkDef, sources: &[SourceDef]) -> Result<PipelinePlan> {
    plan_sink_limited(sink, sources, Limits::default())
}

/// [`plan_sink`], refusing expressions nested deeper than `limits` allow before
/// DataFusion walks them.
pub fn plan_sink_limited(
    sink: &SinkDef,
    sources: &[SourceDef],
    limits: Limits,
) -> Result<PipelinePlan> {
    let text = sink.query.positioned();
    let start = Location::new(sink.query.line, sink.query.column);
    let tokens = Tokenizer::new(&DIALECT, &text)
        .tokenize_with_location()
        .map_err(|e| SqlError::at(e.location, e.message))?;
    let locator = Locator::new(tokens.clone(), start);
    let mut parser = Parser::new(&DIALECT)
        .with_recursion_limit(limits.max_expr_depth)
        .with_tokens_with_locations(tokens);
    let query = parser.parse_query().map_err(|e| parser_error(e, start))?;
    if !limits.fits(&query) {
        return Err(SqlError::at(start, limits.too_deep()));
    }
    let by_name: HashMap<String, SourceDef> = sources
        .iter()
        .map(|s| (s.name.clone(), s.clone()))
        .collect();
    let context = SqlContext::new(Arc::new(by_name.clone()));
    let logical = SqlToRel::new(&context)
        .sql_statement_to_plan(ast::Statement::Query(query))
        .map_err(|e| locator.datafusion_error(e))?;
    let logical = Analyzer::new()
        .execute_and_check(logical, context.options(), |_, _| {})
        .map_err(|e| locator.datafusion_error(e))?;
    let (source, stages) =
        translate::translate(&logical, &by_name).map_err(|e| locator.translate_error(e))?;
    let source = by_name
        .get(&source)
        .cloned()
        .ok_or_else(|| SqlError::at(start, format!("unknown source `{source}`")))?;
    let plan = PipelinePlan {
        name: sink.name.clone(),
        source,
        stages,
    };
    plan.output_schema()
        .map_err(|e| SqlError::at(start, e.to_string()))?;
    Ok(plan)
}
