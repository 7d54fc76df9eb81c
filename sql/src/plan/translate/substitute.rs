//! Expressions of a node rewritten in terms of the stream built so far: a projection's
//! columns are substituted, not computed, until a stage needs them.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::Expr;
use runnel_operators::{WINDOW_END, WINDOW_START};

use super::{Col, Result, Translator, column_hint, refuse};
use crate::plan::locate::{Hint, TranslateError};

impl Translator<'_> {
    /// The column `expr` computes, in terms of the current stream.
    pub(super) fn substitute(&self, expr: &Expr, schema: &DFSchema, input: &[Col]) -> Result<Col> {
        let mut expr = expr;
        while let Expr::Alias(alias) = expr {
            expr = &alias.expr;
        }
        if let Expr::Column(c) = expr {
            return Ok(input[self.index(c, schema)?].clone());
        }
        self.check_scalar(expr)?;
        let replaced = expr
            .clone()
            .transform_up(|e| {
                let Expr::Column(c) = &e else {
                    return Ok(Transformed::no(e));
                };
                let index = schema.index_of_column(c)?;
                match &input[index] {
                    Col::Expr(x) => Ok(Transformed::yes(x.clone())),
                    _ => Err(datafusion::common::DataFusionError::Plan(c.name.clone())),
                }
            })
            .map_err(|e| {
                let name = match e {
                    datafusion::common::DataFusionError::Plan(name) => name,
                    other => other.strip_backtrace(),
                };
                let message = if name == WINDOW_START || name == WINDOW_END {
                    format!(
                        "`{name}` is computed by the window aggregate: it can be grouped by \
                         (GROUP BY window_start, window_end) and used after it, not in \
                         expressions before it"
                    )
                } else {
                    format!(
                        "the ROW_NUMBER() column `{name}` can only be compared with a \
                         constant (WHERE {name} <= N)"
                    )
                };
                TranslateError::new(message, column_hint(expr))
            })?;
        Ok(Col::Expr(replaced.data))
    }

    pub(super) fn index(&self, c: &Column, schema: &DFSchema) -> Result<usize> {
        schema
            .index_of_column(c)
            .map_err(|e| TranslateError::new(e.strip_backtrace(), Hint::Word(c.name.clone())))
    }

    /// Refuses what a stage expression cannot contain.
    pub(super) fn check_scalar(&self, expr: &Expr) -> Result<()> {
        let mut problem = None;
        let _ = expr.apply(|e| {
            problem = match e {
                Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::OuterReferenceColumn(..) => Some((
                    "subqueries in expressions are not supported yet",
                    Hint::Word("select".into()),
                )),
                Expr::Placeholder(_) => Some(("parameters are not supported", Hint::None)),
                Expr::AggregateFunction(_) | Expr::WindowFunction(_) => Some((
                    "aggregate and window functions are not supported here",
                    Hint::None,
                )),
                _ => None,
            };
            Ok(if problem.is_some() {
                datafusion::common::tree_node::TreeNodeRecursion::Stop
            } else {
                datafusion::common::tree_node::TreeNodeRecursion::Continue
            })
        });
        match problem {
            Some((message, hint)) => refuse(message, hint),
            None => Ok(()),
        }
    }

    pub(super) fn substitute_expr(
        &self,
        expr: &Expr,
        schema: &DFSchema,
        input: &[Col],
    ) -> Result<Expr> {
        match self.substitute(expr, schema, input)? {
            Col::Expr(e) => Ok(e),
            Col::WindowStart | Col::WindowEnd => refuse(
                "window_start and window_end can only be grouped by before the window aggregate",
                column_hint(expr),
            ),
            Col::RowNumber => refuse(
                "the ROW_NUMBER() column can only be compared with a constant (WHERE rn <= N)",
                column_hint(expr),
            ),
        }
    }
}
