//! Projection: computes output columns from DataFusion expressions, one batch at a time.
//!
//! Expressions are compiled once at creation (see [`crate::expr`]); each batch is then a
//! handful of vectorized kernel calls. A projection that keeps a column as it is (a bare
//! column reference) keeps its array and field untouched, so an event-time column stays an
//! event-time column. Projection is stateless: it keeps no state across batches or
//! checkpoints and passes watermarks through.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion_expr::Expr;
use runnel_runtime::{Operator, Output, Result};

use crate::expr::{CompiledExpr, check_unique_names, compile};

/// A projection: one output column per `(expression, output name)`.
///
/// ```
/// use std::sync::Arc;
/// use arrow::datatypes::{DataType, Field, Schema};
/// use datafusion_expr::{col, lit};
/// use runnel_operators::project::ProjectSpec;
///
/// let input = Arc::new(Schema::new(vec![
///     Field::new("auction", DataType::Int64, false),
///     Field::new("price", DataType::Int64, false),
/// ]));
/// let spec = ProjectSpec {
///     exprs: vec![
///         (col("auction"), "auction".into()),
///         (col("price") * lit(908) / lit(1000), "price_eur".into()),
///     ],
/// };
/// let out = spec.output_schema(&input).unwrap();
/// assert_eq!(out.field(1).name(), "price_eur");
/// ```
#[derive(Debug, Clone)]
pub struct ProjectSpec {
    /// Output columns, in order: an expression over the input columns and its name.
    pub exprs: Vec<(Expr, String)>,
}

impl ProjectSpec {
    /// The schema of the projection's output for rows of schema `input`.
    pub fn output_schema(&self, input: &Schema) -> Result<SchemaRef> {
        Ok(self.compile(&Arc::new(input.clone()))?.1)
    }

    /// Creates one projection subtask for rows of schema `input`.
    pub fn create(&self, input: &SchemaRef) -> Result<Box<dyn Operator>> {
        let (exprs, schema) = self.compile(input)?;
        Ok(Box::new(ProjectOperator { exprs, schema }))
    }

    fn compile(&self, input: &SchemaRef) -> Result<(Vec<CompiledExpr>, SchemaRef)> {
        check_unique_names(self.exprs.iter().map(|(_, name)| name.as_str()))?;
        let exprs = self
            .exprs
            .iter()
            .map(|(expr, _)| compile(expr, input))
            .collect::<Result<Vec<_>>>()?;
        let fields: Vec<Field> = exprs
            .iter()
            .zip(&self.exprs)
            .map(|(compiled, (_, name))| compiled.field().as_ref().clone().with_name(name))
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()));
        Ok((exprs, schema))
    }
}

/// A projection subtask.
struct ProjectOperator {
    exprs: Vec<CompiledExpr>,
    schema: SchemaRef,
}

impl Operator for ProjectOperator {
    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let columns = self
            .exprs
            .iter()
            .map(|expr| expr.evaluate(&batch))
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let projected =
            RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)?;
        out.emit(projected);
        Ok(())
    }
}

#[cfg(test)]
#[path = "project_tests.rs"]
mod tests;
