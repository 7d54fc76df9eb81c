//! Aggregates: `GROUP BY window_start, window_end, keys` over a window table function, as
//! one projection (keys and aggregate inputs) and one window stage; the same over the
//! result of an earlier aggregate (a *regroup*: Nexmark q5's maximum per window); and
//! `DISTINCT` aggregates, split in two levels as Flink and Calcite do: the window groups
//! by the keys plus the distinct value, and a regroup per window counts the values.

use arrow::datatypes::IntervalMonthDayNano;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, Expr};
use runnel_operators::{WINDOW_END, WINDOW_START};

use super::{Col, Result, Translator, column, column_hint, refuse};

mod distinct;

use crate::plan::locate::Hint;
use crate::plan::{AggregateCall, AggregateFn, Stage, WindowKind};
use distinct::{DISTINCT, distinct_argument, partial_calls};

/// One aggregate call of a query, resolved against the stream built so far.
pub(super) struct Call {
    function: AggregateFn,
    /// The argument (`None` for `COUNT(*)`).
    arg: Option<Expr>,
    distinct: bool,
}

/// The group keys of an aggregate, resolved.
struct Grouping {
    /// Key columns, computed by the projection before the window.
    keys: Vec<String>,
    /// The output columns of the group expressions, in order.
    cols: Vec<Col>,
}

/// Columns of a regroup that stand for the upstream window's bounds.
const REGROUP_START: &str = "__ws";
const REGROUP_END: &str = "__we";
/// A regroup's event time: one millisecond before the upstream window's end, so that its
/// one-millisecond window closes exactly when the upstream window does.
const REGROUP_TIME: &str = "__fire";

impl Translator<'_> {
    pub(super) fn aggregate(&mut self, aggregate: &Aggregate) -> Result<Vec<Col>> {
        let input = self.visit(&aggregate.input)?;
        let schema = aggregate.input.schema();
        if self.pending_rank.is_some() {
            return refuse(
                "ROW_NUMBER() needs its WHERE rn <= N before the result is aggregated",
                Hint::Word("group".into()),
            );
        }
        let window = self.window.take();
        if window.is_none() && !self.aggregated {
            return refuse(
                "an aggregate without a window is unbounded, which is not supported: \
                 aggregate over TUMBLE, HOP, SESSION or CUMULATE and GROUP BY window_start, \
                 window_end",
                Hint::FirstOf(vec![
                    "group".into(),
                    "count".into(),
                    "sum".into(),
                    "min".into(),
                    "max".into(),
                    "avg".into(),
                ]),
            );
        }
        // Group keys and aggregate inputs, computed by one projection before the window.
        let mut inputs: Vec<(Expr, String)> = Vec::new();
        let regroup = window.is_none();
        let grouping = self.grouping(aggregate, schema, &input, regroup, &mut inputs)?;
        let mut calls = Vec::new();
        for expr in &aggregate.aggr_expr {
            let mut expr = expr;
            while let Expr::Alias(alias) = expr {
                expr = &alias.expr;
            }
            let Expr::AggregateFunction(call) = expr else {
                return refuse(format!("`{expr}` is not an aggregate call"), Hint::None);
            };
            calls.push(self.aggregate_call(call, schema, &input)?);
        }
        let distinct_arg = distinct_argument(&calls)?;
        let mut out_cols = grouping.cols;
        match window {
            Some(window) if distinct_arg.is_some() => {
                if matches!(window, WindowKind::Session { .. }) {
                    return refuse(
                        "DISTINCT aggregates over SESSION windows are not supported: sessions \
                         of the distinct values would not be the sessions of the keys",
                        Hint::Word("distinct".into()),
                    );
                }
                // Its own column even when the value is also a key or another input.
                inputs.extend(distinct_arg.map(|arg| (arg, DISTINCT.to_string())));
                self.window_stage(window, &grouping.keys, &calls, inputs, true)?;
                out_cols.extend(self.distinct_second_level(&grouping.keys, &calls)?);
            }
            Some(window) => {
                out_cols.extend(self.window_stage(
                    window,
                    &grouping.keys,
                    &calls,
                    inputs,
                    false,
                )?);
            }
            None if distinct_arg.is_some() => {
                return refuse(
                    "DISTINCT aggregates over the result of an aggregate are not supported",
                    Hint::Word("distinct".into()),
                );
            }
            None => {
                let aggregates = self.plain_calls(&calls, &mut inputs);
                out_cols.extend(self.regroup(&grouping.keys, aggregates, inputs)?);
            }
        }
        self.aggregated = true;
        Ok(out_cols)
    }

    /// Resolves the `GROUP BY` expressions: the window bounds (of the window table
    /// function, or of the earlier aggregate for a regroup) and the keys.
    fn grouping(
        &self,
        aggregate: &Aggregate,
        schema: &DFSchema,
        input: &[Col],
        regroup: bool,
        inputs: &mut Vec<(Expr, String)>,
    ) -> Result<Grouping> {
        let (mut has_start, mut has_end) = (false, false);
        let mut keys = Vec::new();
        let mut cols = Vec::new();
        for (i, expr) in aggregate.group_expr.iter().enumerate() {
            if matches!(expr, Expr::GroupingSet(_)) {
                return refuse(
                    "GROUPING SETS, CUBE and ROLLUP are not supported",
                    Hint::Word("group".into()),
                );
            }
            let col = self.substitute(expr, schema, input)?;
            let bound = match &col {
                Col::WindowStart => Some(WINDOW_START),
                Col::WindowEnd => Some(WINDOW_END),
                Col::Expr(Expr::Column(c)) if regroup => [WINDOW_START, WINDOW_END]
                    .into_iter()
                    .find(|b| c.name == *b),
                _ => None,
            };
            match (bound, col) {
                (Some(WINDOW_START), _) if !has_start => {
                    has_start = true;
                    cols.push(Col::Expr(column(WINDOW_START)));
                }
                (Some(WINDOW_END), _) if !has_end => {
                    has_end = true;
                    cols.push(Col::Expr(column(WINDOW_END)));
                }
                (_, Col::RowNumber) => {
                    return refuse("cannot group by a ROW_NUMBER() column", column_hint(expr));
                }
                (_, Col::WindowStart | Col::WindowEnd) => {
                    return refuse(
                        "group by window_start and window_end once each",
                        column_hint(expr),
                    );
                }
                (_, Col::Expr(e)) => {
                    let name = add_input(inputs, e, format!("__key{i}"));
                    keys.push(name.clone());
                    cols.push(Col::Expr(column(&name)));
                }
            }
        }
        if !(has_start && has_end) {
            // The first key written, when there is one: a query may hold several GROUP BYs.
            let hint = aggregate
                .group_expr
                .first()
                .map(column_hint)
                .filter(|h| !matches!(h, Hint::None))
                .unwrap_or(Hint::Word("group".into()));
            return refuse(
                "a window aggregate must GROUP BY both window_start and window_end",
                hint,
            );
        }
        Ok(Grouping { keys, cols })
    }

    /// The aggregate calls without `DISTINCT`, as window aggregates named `__agg{i}`, with
    /// their inputs added to the projection before the window.
    fn plain_calls(&self, calls: &[Call], inputs: &mut Vec<(Expr, String)>) -> Vec<AggregateCall> {
        calls
            .iter()
            .enumerate()
            .map(|(i, call)| AggregateCall {
                function: call.function,
                column: call
                    .arg
                    .clone()
                    .map(|e| add_input(inputs, e, format!("__arg{i}"))),
                alias: format!("__agg{i}"),
            })
            .collect()
    }

    /// Projects `inputs` (plus the source's event time) and adds the window stage; with
    /// `split`, the first level of a `DISTINCT` aggregate: keyed by the distinct value
    /// too, with partial aggregates the second level combines. Returns the aggregate
    /// output columns (plain case).
    fn window_stage(
        &mut self,
        window: WindowKind,
        keys: &[String],
        calls: &[Call],
        mut inputs: Vec<(Expr, String)>,
        split: bool,
    ) -> Result<Vec<Col>> {
        let aggregates = if split {
            partial_calls(calls, &mut inputs)
        } else {
            self.plain_calls(calls, &mut inputs)
        };
        let time = self.time_column.clone();
        // The window reads event time from the source's column, under its own name.
        add_input(&mut inputs, column(&time), "__time".into());
        self.project(inputs)?;
        let mut window_keys = keys.to_vec();
        if split {
            window_keys.push(DISTINCT.into());
        }
        let mut current = window_keys.clone();
        current.extend([WINDOW_START.to_string(), WINDOW_END.to_string()]);
        current.extend(aggregates.iter().map(|a| a.alias.clone()));
        let out = aggregates
            .iter()
            .map(|a| Col::Expr(column(&a.alias)))
            .collect();
        self.stages.push(Stage::Window {
            window,
            keys: window_keys,
            aggregates,
            time: None,
        });
        self.current = current;
        Ok(out)
    }

    /// Aggregates an already windowed stream per `keys` and upstream window: a window of
    /// one millisecond ending where the upstream window ends, keyed by the upstream
    /// window's bounds, so it closes exactly when the upstream window's rows are all in
    /// (they are emitted before the watermark that closes them). `inputs` must hold the
    /// keys and the aggregates' inputs. Returns the aggregate output columns.
    fn regroup(
        &mut self,
        keys: &[String],
        aggregates: Vec<AggregateCall>,
        mut inputs: Vec<(Expr, String)>,
    ) -> Result<Vec<Col>> {
        inputs.retain(|(_, name)| {
            keys.contains(name)
                || aggregates
                    .iter()
                    .any(|a| a.column.as_deref() == Some(name.as_str()))
        });
        inputs.push((column(WINDOW_START), REGROUP_START.into()));
        inputs.push((column(WINDOW_END), REGROUP_END.into()));
        let one_ms =
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(0, 0, 1_000_000)));
        inputs.push((
            column(WINDOW_END) - Expr::Literal(one_ms, None),
            REGROUP_TIME.into(),
        ));
        self.project(inputs)?;
        let mut window_keys = keys.to_vec();
        window_keys.extend([REGROUP_START.to_string(), REGROUP_END.to_string()]);
        let mut current = window_keys.clone();
        current.extend([WINDOW_START.to_string(), WINDOW_END.to_string()]);
        current.extend(aggregates.iter().map(|a| a.alias.clone()));
        let mut after: Vec<(Expr, String)> = keys.iter().map(|k| (column(k), k.clone())).collect();
        after.push((column(REGROUP_START), WINDOW_START.into()));
        after.push((column(REGROUP_END), WINDOW_END.into()));
        after.extend(
            aggregates
                .iter()
                .map(|a| (column(&a.alias), a.alias.clone())),
        );
        let out = aggregates
            .iter()
            .map(|a| Col::Expr(column(&a.alias)))
            .collect();
        self.stages.push(Stage::Window {
            window: WindowKind::Tumbling {
                size: std::time::Duration::from_millis(1),
            },
            keys: window_keys,
            aggregates,
            time: Some(REGROUP_TIME.into()),
        });
        self.current = current;
        self.project(after)?;
        Ok(out)
    }

    pub(super) fn aggregate_call(
        &self,
        call: &AggregateFunction,
        schema: &DFSchema,
        input: &[Col],
    ) -> Result<Call> {
        let name = call.func.name().to_lowercase();
        let params = &call.params;
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
            && !params.distinct
        {
            return Ok(Call {
                function,
                arg: None,
                distinct: false,
            });
        }
        let expr = self.substitute_expr(arg, schema, input)?;
        Ok(Call {
            function,
            arg: Some(expr),
            distinct: params.distinct,
        })
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
