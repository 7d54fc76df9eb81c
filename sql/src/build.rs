//! A [`PipelinePlan`] as runnel operators: source (with its watermark) -> filter /
//! project -> key_by -> window -> project -> window join -> top-K, all vectorized
//! operators of `runnel-operators`.
//!
//! The same stage walk also runs without a dataflow ([`PipelinePlan::output_schema`]),
//! over schemas only, so a plan is fully checked when it is submitted, before any
//! source is opened.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use datafusion::logical_expr::Expr;
use runnel_operators::filter::FilterSpec;
use runnel_operators::project::ProjectSpec;
use runnel_operators::{
    AggregateExpr, SortKey, StreamExt, TopKSpec, WINDOW_END, WINDOW_START, WindowAggregateSpec,
    WindowJoinSpec, avg, count, count_star, max, min, sum,
};
use runnel_runtime::{Dataflow, Error, Result, Source, Stream};

use crate::plan::{AggregateCall, AggregateFn, PipelinePlan, Stage, expr_from_sql};
use crate::statement::SourceDef;

/// The rank column of a top-N stage.
const RANK: &str = "rn";

/// Adds the pipeline of `plan` to `flow`, reading from `sources[plan.source.name]`, and
/// returns its output stream (the caller connects the sink).
///
/// A join's second pipeline is built the same way. A source read by both sides is one
/// source node, and a prefix of stages both pipelines share (q5 counts bids per auction
/// and window on both sides) is built once and read by both.
///
/// Fails with [`Error::Plan`] when the source is missing or its schema lacks a declared
/// column.
pub fn build(
    plan: &PipelinePlan,
    flow: &Dataflow,
    sources: &HashMap<String, Arc<dyn Source>>,
) -> Result<Stream> {
    let mut builder = Builder {
        name: &plan.name,
        flow,
        sources,
        sources_built: HashMap::new(),
        prefixes_built: HashMap::new(),
    };
    builder.pipeline(&plan.source, &plan.stages)
}

struct Builder<'a> {
    name: &'a str,
    flow: &'a Dataflow,
    sources: &'a HashMap<String, Arc<dyn Source>>,
    /// Source streams built so far, by source name.
    sources_built: HashMap<String, Stream>,
    /// Stage outputs built so far, by their source and the stages that lead to them.
    prefixes_built: HashMap<(String, Vec<Stage>), Stream>,
}

impl Builder<'_> {
    fn pipeline(&mut self, def: &SourceDef, stages: &[Stage]) -> Result<Stream> {
        let mut stream = self.source(def)?;
        for (i, stage) in stages.iter().enumerate() {
            let prefix = (def.name.clone(), stages[..=i].to_vec());
            if let Some(built) = self.prefixes_built.get(&prefix) {
                stream = built.clone();
                continue;
            }
            stream = self.stage(stage, stream)?;
            self.prefixes_built.insert(prefix, stream.clone());
        }
        Ok(stream)
    }

    fn source(&mut self, def: &SourceDef) -> Result<Stream> {
        if let Some(stream) = self.sources_built.get(&def.name) {
            return Ok(stream.clone());
        }
        let source = self.sources.get(&def.name).ok_or_else(|| {
            Error::Plan(format!(
                "no source `{}` was given to build `{}`",
                def.name, self.name
            ))
        })?;
        check_source_schema(def, &source.schema())?;
        let stream = self
            .flow
            .source(&def.name, Arc::clone(source), def.watermark_strategy())?;
        self.sources_built.insert(def.name.clone(), stream.clone());
        Ok(stream)
    }

    fn stage(&mut self, stage: &Stage, stream: Stream) -> Result<Stream> {
        match stage {
            Stage::Filter { predicate } => stream.filter(expr(predicate, stream.schema())?),
            Stage::Project { columns } => {
                let exprs = columns
                    .iter()
                    .map(|c| Ok((expr(&c.expr, stream.schema())?, c.name.clone())))
                    .collect::<Result<Vec<_>>>()?;
                stream.project(exprs)
            }
            Stage::Window {
                window,
                keys,
                aggregates,
                time,
            } => {
                let stream = match time {
                    Some(time) => stream.with_time_column(time)?,
                    None => stream,
                };
                let keyed = if keys.is_empty() {
                    stream
                } else {
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    stream.key_by(&keys)?
                };
                keyed.window(*window, aggregate_exprs(aggregates))
            }
            Stage::Join { right, .. } => {
                let right_stream = self.pipeline(&right.source, &right.stages)?;
                let spec = join_spec(stage, stream.schema(), right_stream.schema())?;
                stream.window_join(&right_stream, spec)
            }
            Stage::TopK { k, order_by } => {
                let order: Vec<(&str, bool)> = order_by
                    .iter()
                    .map(|o| (o.column.as_str(), o.descending))
                    .collect();
                stream.top_k(*k, &order)
            }
        }
    }
}

/// The window join of a [`Stage::Join`], its residual compiled against the joined schema.
fn join_spec(stage: &Stage, left: &SchemaRef, right: &SchemaRef) -> Result<WindowJoinSpec> {
    let Stage::Join {
        left_keys,
        right_keys,
        left_end,
        right_end,
        residual,
        ..
    } = stage
    else {
        return Err(Error::Internal("a join spec of another stage".into()));
    };
    let spec = WindowJoinSpec::new(left_keys, right_keys, left_end.as_str(), right_end.as_str());
    let Some(residual) = residual else {
        return Ok(spec);
    };
    let mut fields: Vec<_> = left.fields().iter().cloned().collect();
    fields.extend(right.fields().iter().cloned());
    let joined = Arc::new(Schema::new(fields));
    Ok(spec.with_residual(expr(residual, &joined)?))
}

impl PipelinePlan {
    /// The schema of the pipeline's output rows; checks every stage against the schema
    /// of its input (columns, types, window sizes), as [`build`] will.
    pub fn output_schema(&self) -> Result<SchemaRef> {
        pipeline_schema(&self.source, &self.stages)
    }
}

fn pipeline_schema(source: &SourceDef, stages: &[Stage]) -> Result<SchemaRef> {
    let mut schema = source.schema();
    let mut time = Some(source.watermark.column.clone());
    for stage in stages {
        let next = stage_schema(stage, &schema, time.as_deref())?;
        time = match stage {
            Stage::Window { .. } | Stage::TopK { .. } => Some(WINDOW_END.to_string()),
            Stage::Join { left_end, .. } => Some(left_end.clone()),
            _ => time.filter(|t| next.field_with_name(t).is_ok()),
        };
        schema = next;
    }
    Ok(schema)
}

fn stage_schema(stage: &Stage, input: &SchemaRef, time: Option<&str>) -> Result<SchemaRef> {
    match stage {
        Stage::Filter { predicate } => FilterSpec {
            predicate: expr(predicate, input)?,
        }
        .output_schema(input),
        Stage::Project { columns } => ProjectSpec {
            exprs: columns
                .iter()
                .map(|c| Ok((expr(&c.expr, input)?, c.name.clone())))
                .collect::<Result<Vec<_>>>()?,
        }
        .output_schema(input),
        Stage::Window {
            window,
            keys,
            aggregates,
            time: window_time,
        } => WindowAggregateSpec {
            kind: *window,
            time_column: window_time
                .as_deref()
                .or(time)
                .ok_or_else(|| Error::Plan("a window needs an event-time column".into()))?
                .to_string(),
            key_columns: keys.clone(),
            aggregates: aggregate_exprs(aggregates),
        }
        .output_schema(input),
        Stage::Join { right, .. } => {
            let right = pipeline_schema(&right.source, &right.stages)?;
            join_spec(stage, input, &right)?.output_schema(input, &right)
        }
        Stage::TopK { k, order_by } => TopKSpec {
            k: *k,
            time_column: WINDOW_END.to_string(),
            partition_by: [WINDOW_START, WINDOW_END]
                .iter()
                .filter(|c| input.field_with_name(c).is_ok())
                .map(|c| c.to_string())
                .collect(),
            order_by: order_by
                .iter()
                .map(|o| SortKey {
                    column: o.column.clone(),
                    descending: o.descending,
                })
                .collect(),
            rank_column: Some(RANK.to_string()),
        }
        .output_schema(input),
    }
}

fn expr(sql: &str, schema: &SchemaRef) -> Result<Expr> {
    expr_from_sql(sql, schema).map_err(|e| Error::Plan(e.strip_backtrace()))
}

fn aggregate_exprs(calls: &[AggregateCall]) -> Vec<AggregateExpr> {
    calls
        .iter()
        .map(|call| {
            let expr = match (&call.function, &call.column) {
                (AggregateFn::Count, None) => count_star(),
                (AggregateFn::Count, Some(c)) => count(c),
                (AggregateFn::Sum, c) => sum(c.clone().unwrap_or_default()),
                (AggregateFn::Min, c) => min(c.clone().unwrap_or_default()),
                (AggregateFn::Max, c) => max(c.clone().unwrap_or_default()),
                (AggregateFn::Avg, c) => avg(c.clone().unwrap_or_default()),
            };
            expr.alias(&call.alias)
        })
        .collect()
}

/// The source handed to [`build`] must have every declared column with its type.
fn check_source_schema(def: &SourceDef, actual: &Schema) -> Result<()> {
    for column in &def.columns {
        let expected = column.data_type.to_arrow();
        match actual.field_with_name(&column.name) {
            Ok(field) if field.data_type() == &expected => {}
            Ok(field) => {
                return Err(Error::Plan(format!(
                    "source `{}`: column `{}` is declared {expected} but the source has {}",
                    def.name,
                    column.name,
                    field.data_type()
                )));
            }
            Err(_) => {
                return Err(Error::Plan(format!(
                    "source `{}` has no column `{}` (it has: {})",
                    def.name,
                    column.name,
                    runnel_runtime::dataflow::column_list(&Arc::new(actual.clone()))
                )));
            }
        }
    }
    Ok(())
}
