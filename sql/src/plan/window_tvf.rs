//! The window table functions `TUMBLE(source, column, size)`, `HOP(source, column,
//! slide, size)`, `CUMULATE(source, column, step, max_size)` and `SESSION(source, column,
//! gap)`.
//!
//! A relation planner turns them into a [`WindowTvf`] node: the source's rows with two
//! more columns, `window_start` and `window_end`, exactly what the SQL of Flink and
//! RisingWave promises. The node exists only for DataFusion's name and type resolution;
//! the translation to runnel operators requires it to be grouped by those two columns
//! and runs it as one window aggregate, so no row is ever copied into several windows.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::{
    DFSchema, DFSchemaRef, DataFusionError, Diagnostic, Span, TableReference,
};
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, LogicalPlanBuilder, UserDefinedLogicalNodeCore,
};
use datafusion::sql::sqlparser::ast::{
    self, FunctionArg, FunctionArgExpr, FunctionArguments, Spanned, TableFactor,
};
use datafusion::sql::sqlparser::tokenizer::Span as SqlSpan;

use super::context::Sources;
use super::interval::literal_millis;
use crate::parse::cursor::normalize;
use crate::plan::WindowKind;
use runnel_operators::{WINDOW_END, WINDOW_START};

/// The rows of a source with the columns of their window (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct WindowTvf {
    pub input: LogicalPlan,
    pub window: WindowKind,
    pub time_column: String,
    schema: DFSchemaRef,
}

impl WindowTvf {
    fn new(
        input: LogicalPlan,
        window: WindowKind,
        time_column: String,
    ) -> Result<Self, DataFusionError> {
        let qualifier = input.schema().iter().next().and_then(|(q, _)| q.cloned());
        let timestamp = DataType::Timestamp(TimeUnit::Millisecond, None);
        let window_fields = Schema::new(vec![
            Field::new(WINDOW_START, timestamp.clone(), false),
            Field::new(WINDOW_END, timestamp, false),
        ]);
        let window_schema = match qualifier {
            Some(q) => DFSchema::try_from_qualified_schema(q, &window_fields)?,
            None => DFSchema::try_from(window_fields)?,
        };
        let schema = input.schema().join(&window_schema)?;
        Ok(WindowTvf {
            input,
            window,
            time_column,
            schema: Arc::new(schema),
        })
    }
}

impl PartialOrd for WindowTvf {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.input.partial_cmp(&other.input) {
            Some(Ordering::Equal) => {}
            other => return other,
        }
        match self.window.partial_cmp(&other.window) {
            Some(Ordering::Equal) => {}
            other => return other,
        }
        self.time_column.partial_cmp(&other.time_column)
    }
}

impl UserDefinedLogicalNodeCore for WindowTvf {
    fn name(&self) -> &str {
        "WindowTvf"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} on {}", self.window, self.time_column)
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self, DataFusionError> {
        let input = inputs.pop().ok_or_else(|| {
            DataFusionError::Internal("a window table function has one input".into())
        })?;
        WindowTvf::new(input, self.window, self.time_column.clone())
    }
}

/// Plans `TUMBLE(...)`, `HOP(...)`, `CUMULATE(...)` and `SESSION(...)` in `FROM`.
#[derive(Debug)]
pub(crate) struct WindowTvfPlanner {
    sources: Sources,
}

impl WindowTvfPlanner {
    pub fn new(sources: Sources) -> Self {
        WindowTvfPlanner { sources }
    }
}

/// A plan error located at `span`.
pub(crate) fn located(span: SqlSpan, message: impl Into<String>) -> DataFusionError {
    let message = message.into();
    DataFusionError::Plan(message.clone()).with_diagnostic(Diagnostic::new_error(
        message,
        Span::try_from_sqlparser_span(span),
    ))
}

fn function_name(relation: &TableFactor) -> Option<String> {
    let TableFactor::Table {
        name,
        args: Some(_),
        ..
    } = relation
    else {
        return None;
    };
    let ident = name.0.last()?.as_ident()?;
    let lower = ident.value.to_lowercase();
    ["tumble", "hop", "session", "cumulate"]
        .contains(&lower.as_str())
        .then_some(lower)
}

impl RelationPlanner for WindowTvfPlanner {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning, DataFusionError> {
        let Some(function) = function_name(&relation) else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let TableFactor::Table {
            name,
            alias,
            args: Some(args),
            ..
        } = relation
        else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let upper = function.to_uppercase();
        let name_span = name.span();
        let usage = match function.as_str() {
            "tumble" => "TUMBLE(source, time_column, size)",
            "hop" => "HOP(source, time_column, slide, size)",
            "cumulate" => "CUMULATE(source, time_column, step, max_size)",
            _ => "SESSION(source, time_column, gap)",
        };
        let mut exprs = Vec::new();
        for arg in args.args {
            match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => exprs.push(expr),
                other => {
                    return Err(located(
                        other.span(),
                        format!("{upper} takes positional arguments: {usage}"),
                    ));
                }
            }
        }
        let expected = if matches!(function.as_str(), "hop" | "cumulate") {
            4
        } else {
            3
        };
        if exprs.len() != expected {
            return Err(located(
                name_span,
                format!("{upper} takes {expected} arguments: {usage}"),
            ));
        }
        let source_expr = exprs.remove(0);
        let ast::Expr::Identifier(source_ident) = &source_expr else {
            return Err(located(
                source_expr.span(),
                format!("the first argument of {upper} must be a source name: {usage}"),
            ));
        };
        let source_name = normalize(source_ident);
        let source = self.sources.get(&source_name).ok_or_else(|| {
            let mut known: Vec<&str> = self.sources.keys().map(String::as_str).collect();
            known.sort_unstable();
            located(
                source_ident.span,
                format!(
                    "unknown source `{source_name}` (declared sources: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })?;
        let column_expr = exprs.remove(0);
        let column_ident = match &column_expr {
            ast::Expr::Identifier(ident) => ident.clone(),
            ast::Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("descriptor") => {
                match &f.args {
                    FunctionArguments::List(list) => match list.args.as_slice() {
                        [FunctionArg::Unnamed(FunctionArgExpr::Expr(ast::Expr::Identifier(i)))] => {
                            i.clone()
                        }
                        _ => {
                            return Err(located(column_expr.span(), "DESCRIPTOR takes one column"));
                        }
                    },
                    _ => return Err(located(column_expr.span(), "DESCRIPTOR takes one column")),
                }
            }
            other => {
                return Err(located(
                    other.span(),
                    format!("the second argument of {upper} must be a column name: {usage}"),
                ));
            }
        };
        let column = normalize(&column_ident);
        if !source.columns.iter().any(|c| c.name == column) {
            return Err(located(
                column_ident.span,
                format!("source `{source_name}` has no column `{column}`"),
            ));
        }
        if column != source.watermark.column {
            return Err(located(
                column_ident.span,
                format!(
                    "{upper} runs on the event time of `{source_name}`, its WATERMARK column \
                     `{}`; windows on another column are not supported",
                    source.watermark.column
                ),
            ));
        }
        let mut millis = Vec::new();
        for expr in exprs {
            let span = expr.span();
            let what = format!(
                "the {} of {upper}",
                ["first", "second"][millis.len().min(1)]
            );
            let value = context.sql_to_expr(expr, &DFSchema::empty())?;
            let ms = literal_millis(&value, &what).map_err(|m| located(span, m))?;
            if ms == 0 {
                return Err(located(span, format!("{what} must be positive")));
            }
            millis.push((ms, span));
        }
        let ms = |millis: &u64| Duration::from_millis(*millis);
        let window = match (function.as_str(), millis.as_slice()) {
            ("tumble", [(size, _)]) => WindowKind::Tumbling { size: ms(size) },
            ("hop", [(slide, _), (size, size_span)]) => {
                if slide > size {
                    return Err(located(
                        *size_span,
                        format!(
                            "HOP slide ({slide} ms) is larger than its size ({size} ms): \
                             rows between windows would belong to none"
                        ),
                    ));
                }
                WindowKind::Hopping {
                    size: ms(size),
                    slide: ms(slide),
                }
            }
            ("cumulate", [(step, _), (max_size, max_size_span)]) => {
                if max_size % step != 0 {
                    return Err(located(
                        *max_size_span,
                        format!(
                            "CUMULATE max size ({max_size} ms) is not a multiple of its step \
                             ({step} ms): windows grow by whole steps up to the max size"
                        ),
                    ));
                }
                WindowKind::Cumulative {
                    step: ms(step),
                    max_size: ms(max_size),
                }
            }
            (_, [(gap, _)]) => WindowKind::Session { gap: ms(gap) },
            _ => return Err(located(name_span, format!("{upper}: {usage}"))),
        };
        let table = TableReference::bare(source_name.clone());
        let table_source = context.context_provider().get_table_source(table.clone())?;
        let scan = LogicalPlanBuilder::scan(table, table_source, None)?.build()?;
        let node = WindowTvf::new(scan, window, column)?;
        let plan = LogicalPlan::Extension(Extension {
            node: Arc::new(node),
        });
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan, alias,
        ))))
    }
}
