//! `DISTINCT` aggregates, split in two levels as Flink and Calcite do: the first level
//! groups by the keys plus the distinct value and computes partials of the other
//! aggregates; the second, a regroup per keys and window, aggregates the distinct values
//! and combines the partials.

use arrow::datatypes::DataType;
use datafusion::logical_expr::{Cast, Expr};

use super::super::{Col, Result, Translator, column, refuse};
use super::{Call, add_input};
use crate::plan::locate::Hint;
use crate::plan::{AggregateCall, AggregateFn};

/// The value of a single `DISTINCT` argument, a key of the first level.
pub(super) const DISTINCT: &str = "__distinct";

impl Translator<'_> {
    /// The second level of a `DISTINCT` aggregate: per keys and window, the distinct
    /// aggregates over the first level's distinct values, the others combined from its
    /// partials. Returns the aggregate output columns.
    pub(super) fn distinct_second_level(
        &mut self,
        keys: &[String],
        calls: &[Call],
    ) -> Result<Vec<Col>> {
        let mut aggregates = Vec::new();
        let mut out = Vec::new();
        let combine = |function, column: String, alias: String| AggregateCall {
            function,
            column: Some(column),
            alias,
        };
        for (i, call) in calls.iter().enumerate() {
            let alias = format!("__agg{i}");
            if call.distinct {
                aggregates.push(combine(call.function, DISTINCT.into(), alias.clone()));
                out.push(Col::Expr(column(&alias)));
                continue;
            }
            match call.function {
                AggregateFn::Count | AggregateFn::Sum => {
                    aggregates.push(combine(AggregateFn::Sum, format!("__p{i}"), alias.clone()));
                    out.push(Col::Expr(column(&alias)));
                }
                AggregateFn::Min | AggregateFn::Max => {
                    aggregates.push(combine(call.function, format!("__p{i}"), alias.clone()));
                    out.push(Col::Expr(column(&alias)));
                }
                AggregateFn::Avg => {
                    let (sum, count) = (format!("__s{i}"), format!("__c{i}"));
                    aggregates.push(combine(AggregateFn::Sum, format!("__p{i}s"), sum.clone()));
                    aggregates.push(combine(AggregateFn::Sum, format!("__p{i}c"), count.clone()));
                    out.push(Col::Expr(double(column(&sum)) / double(column(&count))));
                }
            }
        }
        let mut inputs: Vec<(Expr, String)> = Vec::new();
        for name in self.current.clone() {
            add_input(&mut inputs, column(&name), name);
        }
        self.regroup(keys, aggregates, inputs)?;
        Ok(out)
    }
}

/// The argument shared by the `DISTINCT` calls, if any: one distinct argument per query
/// (as in Flink's split of distinct aggregates).
pub(super) fn distinct_argument(calls: &[Call]) -> Result<Option<Expr>> {
    let mut args = calls.iter().filter(|c| c.distinct).map(|c| &c.arg);
    let Some(first) = args.next() else {
        return Ok(None);
    };
    if args.any(|a| a != first) {
        return refuse(
            "DISTINCT aggregates over different arguments in one query are not supported",
            Hint::Word("distinct".into()),
        );
    }
    Ok(first.clone())
}

/// The first level's aggregates of a split `DISTINCT` aggregate: the partials of the
/// calls without `DISTINCT` (`__p{i}`; `AVG` as a sum `__p{i}s` and a count `__p{i}c`).
pub(super) fn partial_calls(
    calls: &[Call],
    inputs: &mut Vec<(Expr, String)>,
) -> Vec<AggregateCall> {
    let mut partials = Vec::new();
    for (i, call) in calls.iter().enumerate().filter(|(_, c)| !c.distinct) {
        let column = call
            .arg
            .clone()
            .map(|e| add_input(inputs, e, format!("__arg{i}")));
        let partial = |function, alias: String| AggregateCall {
            function,
            column: column.clone(),
            alias,
        };
        match call.function {
            AggregateFn::Avg => {
                partials.push(partial(AggregateFn::Sum, format!("__p{i}s")));
                partials.push(partial(AggregateFn::Count, format!("__p{i}c")));
            }
            function => partials.push(partial(function, format!("__p{i}"))),
        }
    }
    partials
}

fn double(expr: Expr) -> Expr {
    Expr::Cast(Cast::new(Box::new(expr), DataType::Float64))
}
