//! Joins, window by window: both inputs are window aggregates (or rankings of them), and
//! the `ON` clause matches their `window_start` and `window_end`, so a window's join can
//! run once the watermark has passed its end and all rows of both sides are in (Flink's
//! window join). Nexmark q5 in its join form (the count per auction and window, joined
//! with the maximum count of the window) is such a join.
//!
//! The first input continues the pipeline built so far; the second is translated by a
//! translator of its own into a [`JoinInput`]. Each side's columns are materialized under
//! names of their own (`__l{i}`, `__r{i}`), so names never clash, and the first side also
//! keeps its window bounds as `window_start`/`window_end`: the joined stream is windowed
//! like its first input, for a ranking or a regroup after the join. The pair of window
//! ends in `ON` is the join's clock.

use datafusion::common::JoinType;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Join, Operator};
use runnel_operators::{WINDOW_END, WINDOW_START};

use super::{Col, Result, Translator, column, refuse, sql};
use crate::plan::locate::{Hint, TranslateError};
use crate::plan::{JoinInput, Stage};

/// One side of a join, materialized: its output names and what each one holds.
struct Side {
    /// Names of the side's columns, aligned with its logical schema.
    names: Vec<String>,
    /// Per name, the expression over the side's stream it was computed from.
    exprs: Vec<Expr>,
}

impl Side {
    fn holds(&self, name: &str, bound: &str) -> bool {
        self.names
            .iter()
            .zip(&self.exprs)
            .any(|(n, e)| n == name && e == &column(bound))
    }
}

/// The `JOIN` keyword (a join written with a comma points at the query's start).
fn join_hint() -> Hint {
    Hint::Word("join".into())
}

impl Translator<'_> {
    pub(super) fn join(&mut self, join: &Join) -> Result<Vec<Col>> {
        if join.join_type != JoinType::Inner {
            return refuse(
                format!(
                    "{} joins are not supported: only inner joins, window by window",
                    join.join_type
                ),
                join_hint(),
            );
        }
        let left_cols = self.visit(&join.left)?;
        self.check_join_input("first")?;
        let left = self.materialize(left_cols, "__l", true)?;

        let mut right_t = Translator::new(self.sources);
        let right_cols = right_t.visit(&join.right)?;
        right_t.check_join_input("second")?;
        let right = right_t.materialize(right_cols, "__r", false)?;
        let right_source = right_t
            .source
            .clone()
            .and_then(|name| self.sources.get(&name).cloned());
        let Some(right_source) = right_source else {
            return refuse("the second input of a join needs a source", join_hint());
        };

        // The join's columns: the first side's, then the second's.
        let scope: Vec<Col> = left
            .names
            .iter()
            .chain(&right.names)
            .map(|n| Col::Expr(column(n)))
            .collect();
        let mut conjuncts: Vec<Expr> = join
            .on
            .iter()
            .map(|(l, r)| l.clone().eq(r.clone()))
            .collect();
        if let Some(filter) = &join.filter {
            conjuncts.extend(split_conjunction(filter).into_iter().cloned());
        }
        let (mut left_keys, mut right_keys, mut residual) = (Vec::new(), Vec::new(), Vec::new());
        for conjunct in &conjuncts {
            let expr = self.substitute_expr(conjunct, &join.schema, &scope)?;
            match equi_pair(&expr, &left, &right) {
                Some((l, r)) => {
                    left_keys.push(l);
                    right_keys.push(r);
                }
                None => residual.push(expr),
            }
        }
        let matched = |bound: &str| {
            left_keys
                .iter()
                .zip(&right_keys)
                .find(|(l, r)| left.holds(l, bound) && right.holds(r, bound))
                .map(|(l, r)| (l.clone(), r.clone()))
        };
        let (Some(_), Some((left_end, right_end))) = (matched(WINDOW_START), matched(WINDOW_END))
        else {
            return refuse(
                "a join must match the windows of its inputs: ON a.window_start = \
                 b.window_start AND a.window_end = b.window_end (joins of unbounded \
                 streams are not supported)",
                join_hint(),
            );
        };
        let residual = residual
            .into_iter()
            .reduce(Expr::and)
            .map(|e| sql(&e))
            .transpose()?;
        self.stages.push(Stage::Join {
            right: JoinInput {
                source: right_source,
                stages: std::mem::take(&mut right_t.stages),
            },
            left_keys,
            right_keys,
            left_end,
            right_end,
            residual,
        });
        self.current = self
            .current
            .iter()
            .chain(&right_t.current)
            .cloned()
            .collect();
        self.aggregated = true;
        Ok(scope)
    }

    /// A join input must be a finished window aggregate or ranking.
    fn check_join_input(&self, which: &str) -> Result<()> {
        if self.window.is_some() || self.pending_rank.is_some() || !self.aggregated {
            return refuse(
                format!(
                    "the {which} input of a join must be a window aggregate (GROUP BY \
                     window_start, window_end) or a top-N of one: joins of unbounded streams \
                     are not supported"
                ),
                join_hint(),
            );
        }
        Ok(())
    }

    /// Projects the side's columns under `{prefix}{i}`; the first side also keeps its
    /// window bounds as `window_start`/`window_end` (part of the stream, not of the
    /// join's logical columns), for what follows the join.
    fn materialize(&mut self, cols: Vec<Col>, prefix: &str, first: bool) -> Result<Side> {
        let mut side = Side {
            names: Vec::new(),
            exprs: Vec::new(),
        };
        for (i, col) in cols.into_iter().enumerate() {
            let Col::Expr(expr) = col else {
                return Err(TranslateError::new(
                    "a join input's window bounds and ranks must be computed before the join",
                    join_hint(),
                ));
            };
            side.names.push(format!("{prefix}{i}"));
            side.exprs.push(expr);
        }
        let mut columns: Vec<(Expr, String)> = side
            .exprs
            .iter()
            .cloned()
            .zip(side.names.iter().cloned())
            .collect();
        if first {
            columns.push((column(WINDOW_START), WINDOW_START.into()));
            columns.push((column(WINDOW_END), WINDOW_END.into()));
        }
        self.project(columns)?;
        Ok(side)
    }
}

/// `l = r` with `l` a column of the first side and `r` one of the second (either order).
fn equi_pair(expr: &Expr, left: &Side, right: &Side) -> Option<(String, String)> {
    let Expr::BinaryExpr(BinaryExpr {
        left: a,
        op: Operator::Eq,
        right: b,
    }) = expr
    else {
        return None;
    };
    let (Expr::Column(a), Expr::Column(b)) = (a.as_ref(), b.as_ref()) else {
        return None;
    };
    let on_left = |n: &str| left.names.iter().any(|x| x == n);
    let on_right = |n: &str| right.names.iter().any(|x| x == n);
    if on_left(&a.name) && on_right(&b.name) {
        Some((a.name.clone(), b.name.clone()))
    } else if on_right(&a.name) && on_left(&b.name) {
        Some((b.name.clone(), a.name.clone()))
    } else {
        None
    }
}
