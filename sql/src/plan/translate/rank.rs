//! Top-N per window: `ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY
//! ...)` bounded by an outer `WHERE rn <= N`, run on the top-K operator.

use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, Window, WindowFunctionDefinition};
use runnel_operators::{WINDOW_END, WINDOW_START};

use super::{Col, RANK, Result, Translator, column, column_hint, refuse};
use crate::plan::locate::{Hint, TranslateError};
use crate::plan::{OrderKey, Stage};

impl Translator<'_> {
    pub(super) fn window_function(&mut self, window: &Window) -> Result<Vec<Col>> {
        let mut cols = self.visit(&window.input)?;
        let schema = window.input.schema();
        let hint = || Hint::Call("row_number".into());
        if !self.aggregated {
            return refuse(
                "window functions over single rows are not supported: ROW_NUMBER() ranks \
                 the rows of a window aggregate (top-N per window)",
                Hint::Word("over".into()),
            );
        }
        if self.ranked || self.pending_rank.is_some() {
            return refuse(
                "only one ROW_NUMBER() ranking per query is supported",
                hint(),
            );
        }
        let [expr] = window.window_expr.as_slice() else {
            return refuse(
                "only one window function per query is supported",
                Hint::Word("over".into()),
            );
        };
        let mut expr = expr;
        while let Expr::Alias(alias) = expr {
            expr = &alias.expr;
        }
        let Expr::WindowFunction(function) = expr else {
            return refuse(format!("`{expr}` is not a window function"), Hint::None);
        };
        let WindowFunction { fun, params } = function.as_ref();
        let name = match fun {
            WindowFunctionDefinition::WindowUDF(udf) => udf.name().to_lowercase(),
            WindowFunctionDefinition::AggregateUDF(udaf) => udaf.name().to_lowercase(),
        };
        if name != "row_number" {
            return refuse(
                format!(
                    "window function {} is not supported: only ROW_NUMBER() for top-N per window",
                    name.to_uppercase()
                ),
                Hint::Call(name),
            );
        }
        let mut partition = Vec::new();
        for expr in &params.partition_by {
            match self.substitute_expr(expr, schema, &cols)? {
                Expr::Column(c) if c.name == WINDOW_START || c.name == WINDOW_END => {
                    partition.push(c.name)
                }
                _ => {
                    return refuse(
                        "top-N partitions by window only: PARTITION BY window_start, window_end \
                         (per-key top-N is not supported yet)",
                        Hint::Word("partition".into()),
                    );
                }
            }
        }
        if !partition
            .iter()
            .any(|c| c == WINDOW_END || c == WINDOW_START)
        {
            return refuse(
                "ROW_NUMBER() must be PARTITION BY window_start, window_end",
                Hint::Word("over".into()),
            );
        }
        if params.order_by.is_empty() {
            return refuse("ROW_NUMBER() needs an ORDER BY", Hint::Word("over".into()));
        }
        let mut order = Vec::new();
        for sort in &params.order_by {
            if sort.nulls_first == sort.asc {
                return refuse(
                    "NULLS FIRST/LAST other than the default (last ascending, first \
                     descending) is not supported",
                    Hint::Word("nulls".into()),
                );
            }
            let expr = self.substitute_expr(&sort.expr, schema, &cols)?;
            order.push((expr, !sort.asc));
        }
        self.pending_rank = Some(order);
        cols.push(Col::RowNumber);
        Ok(cols)
    }

    /// `N` of `rn <= N` (or `rn < N + 1`, `N >= rn`, `rn = 1`) when `conjunct` limits the
    /// rank column; `None` when it does not mention it.
    pub(super) fn rank_limit(
        &self,
        conjunct: &Expr,
        schema: &DFSchema,
        cols: &[Col],
    ) -> Result<Option<usize>> {
        let is_rank = |e: &Expr| -> bool {
            matches!(strip_casts(e), Expr::Column(c)
                if schema.index_of_column(c).is_ok_and(|i| matches!(cols[i], Col::RowNumber)))
        };
        let mentions_rank = conjunct.column_refs().iter().any(|c| {
            schema
                .index_of_column(c)
                .is_ok_and(|i| matches!(cols[i], Col::RowNumber))
        });
        if !mentions_rank {
            return Ok(None);
        }
        let bad = || {
            TranslateError::new(
                "the ROW_NUMBER() column can only be limited by a constant: WHERE rn <= N",
                column_hint(conjunct),
            )
        };
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = conjunct else {
            return Err(bad());
        };
        let (op, value) = if is_rank(left) {
            (*op, integer(right))
        } else if is_rank(right) {
            let flipped = match op {
                Operator::GtEq => Operator::LtEq,
                Operator::Gt => Operator::Lt,
                other => *other,
            };
            (flipped, integer(left))
        } else {
            return Err(bad());
        };
        let value = value.ok_or_else(bad)?;
        let k = match op {
            Operator::LtEq => value,
            Operator::Lt => value - 1,
            Operator::Eq if value == 1 => 1,
            _ => return Err(bad()),
        };
        if k < 1 {
            return refuse(
                format!("the rank limit keeps no row (rn <= {k})"),
                column_hint(conjunct),
            );
        }
        usize::try_from(k).map(Some).map_err(|_| bad())
    }

    pub(super) fn emit_top_k(&mut self, k: usize) -> Result<()> {
        let order = self.pending_rank.take().unwrap_or_default();
        let mut computed = Vec::new();
        let mut order_by = Vec::new();
        for (i, (expr, descending)) in order.into_iter().enumerate() {
            let name = match &expr {
                Expr::Column(c) if self.current.contains(&c.name) => c.name.clone(),
                _ => {
                    let name = format!("__order{i}");
                    computed.push((expr, name.clone()));
                    name
                }
            };
            order_by.push(OrderKey {
                column: name,
                descending,
            });
        }
        if !computed.is_empty() {
            let mut columns: Vec<(Expr, String)> = self
                .current
                .iter()
                .map(|n| (column(n), n.clone()))
                .collect();
            columns.extend(computed);
            self.project(columns)?;
        }
        self.stages.push(Stage::TopK { k, order_by });
        self.current.push(RANK.to_string());
        self.ranked = true;
        Ok(())
    }
}

fn strip_casts(expr: &Expr) -> &Expr {
    match expr {
        Expr::Cast(c) => strip_casts(&c.expr),
        Expr::TryCast(c) => strip_casts(&c.expr),
        other => other,
    }
}

fn integer(expr: &Expr) -> Option<i128> {
    match strip_casts(expr) {
        Expr::Literal(value, _) => match value.cast_to(&arrow::datatypes::DataType::Int64) {
            Ok(ScalarValue::Int64(Some(v))) => Some(i128::from(v)),
            _ => None,
        },
        _ => None,
    }
}
