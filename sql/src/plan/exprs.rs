//! Scalar expressions as SQL text, the form a [`super::PipelinePlan`] stores them in.
//!
//! DataFusion's logical expressions are not serializable without an extra crate, but
//! they print back to SQL with DataFusion's unparser and parse again with its planner.
//! Expressions are printed after DataFusion's type coercion (casts made explicit) and
//! coerced again after parsing, which leaves an already coerced expression unchanged.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{DFSchema, DataFusionError};
use datafusion::logical_expr::Expr;
use datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter;
use datafusion::sql::planner::{PlannerContext, SqlToRel};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::unparser::expr_to_sql;

use super::context::SqlContext;
use crate::parse::cursor::DIALECT;

/// `expr` as SQL text.
pub(crate) fn expr_to_sql_text(expr: &Expr) -> Result<String, DataFusionError> {
    Ok(expr_to_sql(expr)?.to_string())
}

/// Parses and resolves the SQL expression `sql` against the columns of `schema`.
pub(crate) fn expr_from_sql(sql: &str, schema: &SchemaRef) -> Result<Expr, DataFusionError> {
    let ast = Parser::new(&DIALECT)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| DataFusionError::Plan(format!("expression `{sql}`: {e}")))?;
    let df_schema = DFSchema::try_from(Arc::clone(schema))?;
    let context = SqlContext::empty();
    let expr = SqlToRel::new(&context).sql_to_expr(ast, &df_schema, &mut PlannerContext::new())?;
    let mut coercion = TypeCoercionRewriter::new(&df_schema);
    Ok(expr.rewrite(&mut coercion)?.data)
}
