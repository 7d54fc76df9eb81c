//! Fluent builder methods for the built-in operators, added to [`Stream`].
//!
//! ```no_run
//! # use std::{sync::Arc, time::Duration};
//! # use runnel_runtime::*;
//! use runnel_operators::{StreamExt, WindowKind, count_star};
//! # fn hot_items(flow: &Dataflow, bids: Arc<dyn Source>, sink: Arc<dyn Sink>) -> Result<()> {
//! flow.source("bids", bids, WatermarkStrategy::bounded("date_time", Duration::from_secs(5)))?
//!     .key_by(&["auction"])?
//!     .window(
//!         WindowKind::Hopping { size: Duration::from_secs(10), slide: Duration::from_secs(2) },
//!         vec![count_star().alias("bids")],
//!     )?
//!     .top_k(1, &[("bids", true)])?
//!     .sink("hot_items", sink)
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use datafusion_expr::Expr;
use runnel_runtime::{Error, Operator, OperatorContext, OperatorFactory, Result, Stream};

use crate::filter::FilterSpec;
use crate::join::WindowJoinSpec;
use crate::project::ProjectSpec;
use crate::topk::{SortKey, TopKSpec};
use crate::trending::TrendingSpec;
use crate::window::{AggregateExpr, WINDOW_END, WINDOW_START, WindowAggregateSpec, WindowKind};

/// Builder methods for the built-in operators.
pub trait StreamExt: Sized {
    /// Keeps the rows for which `predicate` is true.
    fn filter(&self, predicate: Expr) -> Result<Stream>;

    /// Computes one output column per `(expression, name)`.
    fn project(&self, exprs: Vec<(Expr, String)>) -> Result<Stream>;

    /// Aggregates rows per window and per key (the keys of [`Stream::key_by`]; without
    /// keys the window runs as a single subtask). Output: keys, `window_start`,
    /// `window_end`, one column per aggregate; its event time is `window_end`.
    fn window(&self, kind: WindowKind, aggregates: Vec<AggregateExpr>) -> Result<Stream>;

    /// The `k` first rows of every window by `order_by` (`(column, descending)`), in two
    /// phases: a partial top-K in each subtask, then a global merge in one subtask that
    /// adds the rank column `rn`.
    fn top_k(&self, k: usize, order_by: &[(&str, bool)]) -> Result<Stream>;

    /// Adds `previous` (the key's `value_column` in the window ending one `period`
    /// earlier) and `trend` (its growth since then) to windowed rows, keyed by the
    /// stream's keys.
    fn trending(&self, value_column: &str, period: Duration) -> Result<Stream>;

    /// Inner-joins the rows of this windowed stream (left, input 0) with those of `right`
    /// (input 1) that belong to the same window, once the watermark closes it (see
    /// [`crate::join`]). Both sides are routed by their join keys, so matching rows meet
    /// in one subtask. Output: the left columns, then the right columns; its event time
    /// is the left window end.
    fn window_join(&self, right: &Stream, spec: WindowJoinSpec) -> Result<Stream>;
}

/// An operator factory from a spec: `create` gets the spec, the input schema and the
/// job's number of key groups (keyed state is tagged with them for rescaling).
fn factory<S>(
    spec: S,
    create: fn(&S, &SchemaRef, u32) -> Result<Box<dyn Operator>>,
) -> OperatorFactory
where
    S: Send + Sync + 'static,
{
    Arc::new(move |ctx: &OperatorContext| {
        let input = ctx
            .input_schemas
            .first()
            .ok_or_else(|| Error::Internal(format!("{} has no input", ctx.node)))?;
        create(&spec, input, ctx.max_key_groups)
    })
}

fn keep_time_column(input: &Stream, output: Stream) -> Result<Stream> {
    match input.time_column() {
        Some(time) if output.schema().field_with_name(time).is_ok() => {
            output.with_time_column(time)
        }
        _ => Ok(output),
    }
}

impl StreamExt for Stream {
    fn filter(&self, predicate: Expr) -> Result<Stream> {
        let spec = FilterSpec { predicate };
        let schema = spec.output_schema(self.schema())?;
        let name = self.dataflow().unique_name("filter");
        let out = self.operator(name, schema, factory(spec, |s, input, _| s.create(input)))?;
        keep_time_column(self, out)
    }

    fn project(&self, exprs: Vec<(Expr, String)>) -> Result<Stream> {
        let spec = ProjectSpec { exprs };
        let schema = spec.output_schema(self.schema())?;
        let name = self.dataflow().unique_name("project");
        let out = self.operator(name, schema, factory(spec, |s, input, _| s.create(input)))?;
        keep_time_column(self, out)
    }

    fn window(&self, kind: WindowKind, aggregates: Vec<AggregateExpr>) -> Result<Stream> {
        let time_column = self.time_column().ok_or_else(|| {
            Error::Plan("a window needs a stream with an event-time column".into())
        })?;
        let key_columns = self.keys().map(<[String]>::to_vec).unwrap_or_default();
        let spec = WindowAggregateSpec {
            kind,
            time_column: time_column.to_string(),
            key_columns: key_columns.clone(),
            aggregates,
        };
        let schema = spec.output_schema(self.schema())?;
        let name = self.dataflow().unique_name("window");
        let mut out = self.operator(
            name,
            schema,
            factory(spec, WindowAggregateSpec::create_with),
        )?;
        if key_columns.is_empty() {
            out = out.with_parallelism(1);
        }
        let out = out.with_time_column(WINDOW_END)?;
        if key_columns.is_empty() {
            Ok(out)
        } else {
            let keys: Vec<&str> = key_columns.iter().map(String::as_str).collect();
            out.key_by(&keys)
        }
    }

    fn top_k(&self, k: usize, order_by: &[(&str, bool)]) -> Result<Stream> {
        if k == 0 {
            return Err(Error::Plan("top-K needs k >= 1".into()));
        }
        let partition_by: Vec<String> = [WINDOW_START, WINDOW_END]
            .iter()
            .filter(|c| self.schema().field_with_name(c).is_ok())
            .map(|c| c.to_string())
            .collect();
        if !partition_by.iter().any(|c| c == WINDOW_END) {
            return Err(Error::Plan(
                "top-K ranks the rows of each window: its input needs a `window_end` column".into(),
            ));
        }
        let order_by: Vec<SortKey> = order_by
            .iter()
            .map(|(column, descending)| SortKey {
                column: column.to_string(),
                descending: *descending,
            })
            .collect();
        let partial = TopKSpec {
            k,
            time_column: WINDOW_END.to_string(),
            partition_by,
            order_by,
            rank_column: None,
        };
        let global = TopKSpec {
            rank_column: Some("rn".to_string()),
            ..partial.clone()
        };
        let partial_schema = partial.output_schema(self.schema())?;
        let partial_name = self.dataflow().unique_name("top_k_partial");
        // The partial phase runs where the rows are; only its top k per window move on.
        let partial_stream = Stream::operator(
            &forward(self),
            partial_name,
            partial_schema.clone(),
            factory(partial, |s, input, _| s.create(input)),
        )?;
        let global_schema = global.output_schema(&partial_schema)?;
        let global_name = self.dataflow().unique_name("top_k");
        partial_stream
            .operator(
                global_name,
                global_schema,
                factory(global, |s, input, _| s.create(input)),
            )?
            .with_parallelism(1)
            .with_time_column(WINDOW_END)
    }

    fn trending(&self, value_column: &str, period: Duration) -> Result<Stream> {
        let keys = self.keys().ok_or_else(|| {
            Error::Plan("trending compares a key's windows: key the stream first (key_by)".into())
        })?;
        let spec = TrendingSpec {
            key_columns: keys.to_vec(),
            window_end_column: WINDOW_END.to_string(),
            value_column: value_column.to_string(),
            period,
            previous_column: "previous".to_string(),
            score_column: "trend".to_string(),
        };
        let schema = spec.output_schema(self.schema())?;
        let name = self.dataflow().unique_name("trending");
        self.operator(name, schema, factory(spec, TrendingSpec::create_with))?
            .with_time_column(WINDOW_END)
    }

    fn window_join(&self, right: &Stream, spec: WindowJoinSpec) -> Result<Stream> {
        let schema = spec.output_schema(self.schema(), right.schema())?;
        let left_keys: Vec<&str> = spec.left_keys.iter().map(String::as_str).collect();
        let right_keys: Vec<&str> = spec.right_keys.iter().map(String::as_str).collect();
        let left = self.clone().key_by(&left_keys)?;
        let right = right.clone().key_by(&right_keys)?;
        let time_column = spec.left_end.clone();
        let name = self.dataflow().unique_name("window_join");
        let factory: OperatorFactory = Arc::new(move |ctx: &OperatorContext| {
            let [left, right] = ctx.input_schemas.as_slice() else {
                return Err(Error::Internal(format!(
                    "{} has {} inputs, a window join two",
                    ctx.node,
                    ctx.input_schemas.len()
                )));
            };
            spec.create_with(left, right, ctx.max_key_groups)
        });
        self.dataflow()
            .operator(name, &[&left, &right], schema, factory)?
            .with_time_column(time_column)
    }
}

/// The same stream without its keys: the next edge forwards instead of hashing.
fn forward(stream: &Stream) -> Stream {
    stream.clone().without_keys()
}
