//! DataFusion's logical plan of a sink query, translated into runnel stages.
//!
//! The plan is walked bottom-up. Every node's output columns are tracked as a scope of
//! [`Col`]s, aligned with the node's schema: an expression over the columns of the
//! stream built so far, or one of the markers a streaming query needs (the
//! `window_start`/`window_end` a window table function promises before the aggregate
//! computes them, the `ROW_NUMBER()` a top-N filter turns into a rank). Projections are
//! not materialized one by one: their expressions are substituted into the scope and
//! computed once, where the next stateful operator (window, top-K) or the sink needs
//! them. Filters are applied where they stand.
//!
//! A join translates its second input with a translator of its own; the result is a
//! [`Stage::Join`] holding that pipeline.
//!
//! What cannot run incrementally is refused with the reason: aggregates without a
//! window (unbounded state), `ORDER BY`/`LIMIT` over a whole stream, joins other than
//! window by window, window functions other than a top-N `ROW_NUMBER()`.

use std::collections::HashMap;

use datafusion::common::tree_node::TreeNode;
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan};

mod aggregate;
mod join;
mod rank;
mod substitute;

use crate::plan::exprs::expr_to_sql_text;
use crate::plan::locate::{Hint, TranslateError};
use crate::plan::window_tvf::WindowTvf;
use crate::plan::{ProjectColumn, Stage, WindowKind};
use crate::statement::SourceDef;

type Result<T> = std::result::Result<T, TranslateError>;

/// The rank column of the top-K operator.
const RANK: &str = "rn";

/// A column of a plan node, in terms of the stream built so far.
#[derive(Debug, Clone)]
enum Col {
    /// An expression over the current stream's columns.
    Expr(Expr),
    /// `window_start` of a window table function, before the aggregate.
    WindowStart,
    /// `window_end` of a window table function, before the aggregate.
    WindowEnd,
    /// `ROW_NUMBER()` of a top-N, before its `WHERE rn <= N`.
    RowNumber,
}

/// Translates `plan` into the name of its source and its stages.
pub(crate) fn translate(
    plan: &LogicalPlan,
    sources: &HashMap<String, SourceDef>,
) -> Result<(String, Vec<Stage>)> {
    let mut t = Translator::new(sources);
    let cols = t.visit(plan)?;
    t.finish(cols, plan.schema())?;
    let source = t.source.ok_or_else(|| {
        TranslateError::new("a sink query needs a source in its FROM clause", Hint::None)
    })?;
    Ok((source, t.stages))
}

struct Translator<'a> {
    sources: &'a HashMap<String, SourceDef>,
    source: Option<String>,
    /// The source's event-time column.
    time_column: String,
    /// Column names of the stream built so far.
    current: Vec<String>,
    /// A window table function waiting for its aggregate.
    window: Option<WindowKind>,
    aggregated: bool,
    ranked: bool,
    /// The order of a `ROW_NUMBER()` waiting for its `WHERE rn <= N`.
    pending_rank: Option<Vec<(Expr, bool)>>,
    stages: Vec<Stage>,
}

impl<'a> Translator<'a> {
    fn new(sources: &'a HashMap<String, SourceDef>) -> Self {
        Translator {
            sources,
            source: None,
            time_column: String::new(),
            current: Vec::new(),
            window: None,
            aggregated: false,
            ranked: false,
            pending_rank: None,
            stages: Vec::new(),
        }
    }
}

fn column(name: &str) -> Expr {
    Expr::Column(Column::from_name(name))
}

fn refuse<T>(message: impl Into<String>, hint: Hint) -> Result<T> {
    Err(TranslateError::new(message, hint))
}

fn sql(expr: &Expr) -> Result<String> {
    expr_to_sql_text(expr).map_err(|e| {
        TranslateError::new(
            format!(
                "expression `{expr}` cannot be planned: {}",
                e.strip_backtrace()
            ),
            Hint::None,
        )
    })
}

/// Where a column reference was written.
fn column_hint(expr: &Expr) -> Hint {
    let mut hint = Hint::None;
    let _ = expr.apply(|e| {
        if let Expr::Column(c) = e
            && let Some(span) = c.spans().first()
        {
            hint = Hint::Span(span);
            return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    hint
}

impl Translator<'_> {
    fn visit(&mut self, plan: &LogicalPlan) -> Result<Vec<Col>> {
        match plan {
            LogicalPlan::TableScan(scan) => {
                let name = scan.table_name.table().to_string();
                let source = self.sources.get(&name).ok_or_else(|| {
                    TranslateError::new(
                        format!("unknown source `{name}`"),
                        Hint::Word(name.clone()),
                    )
                })?;
                if self.source.is_some() {
                    return refuse(
                        "a query may read only one source (joins are not supported yet)",
                        Hint::Word(name),
                    );
                }
                self.source = Some(name);
                self.time_column = source.watermark.column.clone();
                self.current = source.columns.iter().map(|c| c.name.clone()).collect();
                Ok(scan
                    .projected_schema
                    .fields()
                    .iter()
                    .map(|f| Col::Expr(column(f.name())))
                    .collect())
            }
            LogicalPlan::Extension(ext) => {
                let Some(tvf) = ext.node.as_any().downcast_ref::<WindowTvf>() else {
                    return refuse(format!("{} is not supported", ext.node.name()), Hint::None);
                };
                let mut cols = self.visit(&tvf.input)?;
                self.window = Some(tvf.window);
                cols.push(Col::WindowStart);
                cols.push(Col::WindowEnd);
                Ok(cols)
            }
            LogicalPlan::SubqueryAlias(alias) => self.visit(&alias.input),
            LogicalPlan::Projection(projection) => {
                let input = self.visit(&projection.input)?;
                let schema = projection.input.schema();
                projection
                    .expr
                    .iter()
                    .map(|e| self.substitute(e, schema, &input))
                    .collect()
            }
            LogicalPlan::Filter(filter) => {
                let input = self.visit(&filter.input)?;
                self.filter(&filter.predicate, filter.input.schema(), input)
            }
            LogicalPlan::Aggregate(aggregate) => self.aggregate(aggregate),
            LogicalPlan::Window(window) => self.window_function(window),
            LogicalPlan::Sort(_) => refuse(
                "ORDER BY over a stream is not supported: a stream has no last row to sort \
                 by; rank rows per window with ROW_NUMBER() OVER (PARTITION BY window_start, \
                 window_end ORDER BY ...) and WHERE rn <= N",
                Hint::Word("order".into()),
            ),
            LogicalPlan::Limit(_) => refuse(
                "LIMIT over a stream is not supported; keep the first rows of every window \
                 with ROW_NUMBER() ... WHERE rn <= N",
                Hint::Word("limit".into()),
            ),
            LogicalPlan::Join(join) => self.join(join),
            LogicalPlan::Union(_) => {
                refuse("UNION is not supported yet", Hint::Word("union".into()))
            }
            LogicalPlan::Distinct(_) => refuse(
                "SELECT DISTINCT over a stream is an unbounded aggregate, which is not \
                 supported: group by window_start, window_end instead",
                Hint::Word("distinct".into()),
            ),
            LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => {
                refuse("a sink query needs a source in its FROM clause", Hint::None)
            }
            other => refuse(
                format!(
                    "{} is not supported in a streaming query",
                    other
                        .display()
                        .to_string()
                        .split(':')
                        .next()
                        .unwrap_or("this")
                ),
                Hint::None,
            ),
        }
    }

    fn filter(
        &mut self,
        predicate: &Expr,
        schema: &DFSchema,
        mut cols: Vec<Col>,
    ) -> Result<Vec<Col>> {
        let conjuncts = split_conjunction(predicate);
        if self.pending_rank.is_some() {
            let mut k = None;
            let mut rest = Vec::new();
            for conjunct in conjuncts {
                match self.rank_limit(conjunct, schema, &cols)? {
                    Some(limit) => k = Some(k.map_or(limit, |k: usize| k.min(limit))),
                    None => rest.push(conjunct),
                }
            }
            let Some(k) = k else {
                return refuse(
                    "ROW_NUMBER() needs a limit in the WHERE clause of the query around it \
                     (WHERE rn <= N): an unbounded ranking is not supported",
                    Hint::Word("where".into()),
                );
            };
            self.emit_top_k(k)?;
            for col in &mut cols {
                if matches!(col, Col::RowNumber) {
                    *col = Col::Expr(column(RANK));
                }
            }
            for conjunct in rest {
                let predicate = self.substitute_expr(conjunct, schema, &cols)?;
                self.stages.push(Stage::Filter {
                    predicate: sql(&predicate)?,
                });
            }
            return Ok(cols);
        }
        let predicate = self.substitute_expr(predicate, schema, &cols)?;
        self.stages.push(Stage::Filter {
            predicate: sql(&predicate)?,
        });
        Ok(cols)
    }

    fn project(&mut self, columns: Vec<(Expr, String)>) -> Result<()> {
        let identity = columns.len() == self.current.len()
            && columns
                .iter()
                .zip(&self.current)
                .all(|((e, name), current)| {
                    name == current && matches!(e, Expr::Column(c) if &c.name == current)
                });
        if identity {
            return Ok(());
        }
        let mut out = Vec::with_capacity(columns.len());
        for (expr, name) in &columns {
            out.push(ProjectColumn {
                expr: sql(expr)?,
                name: name.clone(),
            });
        }
        self.current = columns.into_iter().map(|(_, n)| n).collect();
        self.stages.push(Stage::Project { columns: out });
        Ok(())
    }

    fn finish(&mut self, cols: Vec<Col>, schema: &DFSchema) -> Result<()> {
        if let Some(window) = self.window {
            // The function's name is the Display text up to its parenthesis.
            let text = window.to_string();
            let name = text.split('(').next().unwrap_or_default().to_lowercase();
            return refuse(
                format!(
                    "{} without an aggregate is not supported yet: GROUP BY window_start, \
                     window_end",
                    name.to_uppercase()
                ),
                Hint::Call(name),
            );
        }
        if self.pending_rank.is_some() {
            return refuse(
                "ROW_NUMBER() needs a limit in the WHERE clause of the query around it \
                 (WHERE rn <= N): an unbounded ranking is not supported",
                Hint::Call("row_number".into()),
            );
        }
        let mut columns = Vec::with_capacity(cols.len());
        for (col, field) in cols.into_iter().zip(schema.fields()) {
            let Col::Expr(expr) = col else {
                return refuse("internal: a marker column reached the output", Hint::None);
            };
            columns.push((expr, field.name().clone()));
        }
        self.project(columns)
    }
}
