//! The window aggregate: `GROUP BY window_start, window_end, keys` over a window table
//! function, as one projection (keys and aggregate inputs) and one window stage.

use datafusion::common::DFSchema;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, Expr};
use runnel_operators::{WINDOW_END, WINDOW_START};

use super::{Col, Result, Translator, column, column_hint, refuse};
use crate::plan::locate::Hint;
use crate::plan::{AggregateCall, AggregateFn, Stage};

impl Translator<'_> {
    pub(super) fn aggregate(&mut self, aggregate: &Aggregate) -> Result<Vec<Col>> {
        let input = self.visit(&aggregate.input)?;
        let schema = aggregate.input.schema();
        if self.aggregated {
            return refuse(
                "aggregating the result of an aggregate is not supported yet",
                Hint::Word("group".into()),
            );
        }
        let Some(window) = self.window.take() else {
            return refuse(
                "an aggregate without a window is unbounded, which is not supported: \
                 aggregate over TUMBLE, HOP or SESSION and GROUP BY window_start, window_end",
                Hint::FirstOf(vec![
                    "group".into(),
                    "count".into(),
                    "sum".into(),
                    "min".into(),
                    "max".into(),
                    "avg".into(),
                ]),
            );
        };
        // Group keys and aggregate inputs, computed by one projection before the window.
        let mut inputs: Vec<(Expr, String)> = Vec::new();
        let mut group_cols = Vec::new();
        let (mut has_start, mut has_end) = (false, false);
        let mut keys = Vec::new();
        for (i, expr) in aggregate.group_expr.iter().enumerate() {
            if matches!(expr, Expr::GroupingSet(_)) {
                return refuse(
                    "GROUPING SETS, CUBE and ROLLUP are not supported",
                    Hint::Word("group".into()),
                );
            }
            match self.substitute(expr, schema, &input)? {
                Col::WindowStart => {
                    has_start = true;
                    group_cols.push(Col::Expr(column(WINDOW_START)));
                }
                Col::WindowEnd => {
                    has_end = true;
                    group_cols.push(Col::Expr(column(WINDOW_END)));
                }
                Col::Expr(e) => {
                    let name = add_input(&mut inputs, e, format!("__key{i}"));
                    keys.push(name.clone());
                    group_cols.push(Col::Expr(column(&name)));
                }
                Col::RowNumber => {
                    return refuse("cannot group by a ROW_NUMBER() column", column_hint(expr));
                }
            }
        }
        if !(has_start && has_end) {
            return refuse(
                "a window aggregate must GROUP BY both window_start and window_end",
                Hint::Word("group".into()),
            );
        }
        let mut aggregates = Vec::new();
        for (i, expr) in aggregate.aggr_expr.iter().enumerate() {
            let mut expr = expr;
            while let Expr::Alias(alias) = expr {
                expr = &alias.expr;
            }
            let Expr::AggregateFunction(call) = expr else {
                return refuse(format!("`{expr}` is not an aggregate call"), Hint::None);
            };
            let (function, column_expr) = self.aggregate_call(call, schema, &input)?;
            let column = column_expr.map(|e| add_input(&mut inputs, e, format!("__arg{i}")));
            aggregates.push(AggregateCall {
                function,
                column,
                alias: format!("__agg{i}"),
            });
        }
        let time = self.time_column.clone();
        // The window reads event time from the source's column, under its own name.
        add_input(&mut inputs, column(&time), "__time".into());
        self.project(inputs)?;
        let mut out_cols = group_cols;
        let mut current = keys.clone();
        current.extend([WINDOW_START.to_string(), WINDOW_END.to_string()]);
        for call in &aggregates {
            out_cols.push(Col::Expr(column(&call.alias)));
            current.push(call.alias.clone());
        }
        self.stages.push(Stage::Window {
            window,
            keys,
            aggregates,
        });
        self.current = current;
        self.aggregated = true;
        Ok(out_cols)
    }

    pub(super) fn aggregate_call(
        &self,
        call: &AggregateFunction,
        schema: &DFSchema,
        input: &[Col],
    ) -> Result<(AggregateFn, Option<Expr>)> {
        let name = call.func.name().to_lowercase();
        let params = &call.params;
        if params.distinct {
            return refuse(
                format!("{}(DISTINCT ...) is not supported yet", name.to_uppercase()),
                Hint::Word("distinct".into()),
            );
        }
        if params.filter.is_some() {
            return refuse(
                "aggregate FILTER clauses are not supported yet",
                Hint::Word("filter".into()),
            );
        }
        if !params.order_by.is_empty() {
            return refuse("ordered aggregates are not supported", Hint::Call(name));
        }
        let function = match name.as_str() {
            "count" => AggregateFn::Count,
            "sum" => AggregateFn::Sum,
            "min" => AggregateFn::Min,
            "max" => AggregateFn::Max,
            "avg" | "mean" => AggregateFn::Avg,
            _ => {
                return refuse(
                    format!(
                        "aggregate function {} is not supported (supported: COUNT, SUM, MIN, MAX, AVG)",
                        name.to_uppercase()
                    ),
                    Hint::Call(name),
                );
            }
        };
        let [arg] = params.args.as_slice() else {
            return refuse(
                format!("{} takes one argument", name.to_uppercase()),
                Hint::Call(name),
            );
        };
        if function == AggregateFn::Count
            && let Expr::Literal(value, _) = arg
            && !value.is_null()
        {
            return Ok((AggregateFn::Count, None));
        }
        let expr = self.substitute_expr(arg, schema, input)?;
        Ok((function, Some(expr)))
    }
}

/// Adds `expr` to the columns computed before the window (once) and returns its name: a
/// bare column keeps its name, anything else gets `fallback`.
fn add_input(inputs: &mut Vec<(Expr, String)>, expr: Expr, fallback: String) -> String {
    if let Some((_, name)) = inputs.iter().find(|(e, _)| e == &expr) {
        return name.clone();
    }
    let name = match &expr {
        Expr::Column(c) if !inputs.iter().any(|(_, n)| n == &c.name) => c.name.clone(),
        _ => fallback,
    };
    inputs.push((expr, name.clone()));
    name
}
