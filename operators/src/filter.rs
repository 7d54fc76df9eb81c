//! Filter: keeps the rows for which a DataFusion predicate is true.
//!
//! The predicate is compiled once at creation (see [`crate::expr`]) and evaluated over
//! whole batches; rows are then selected with Arrow's `filter` kernel. As in SQL's
//! `WHERE`, a null predicate value drops the row. Batches that pass whole are forwarded
//! without copying. The schema is unchanged, so the event-time column is too; the
//! operator is stateless and passes watermarks through.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion_expr::Expr;
use runnel_runtime::{Error, Operator, Output, Result};

use crate::expr::{CompiledExpr, compile};

/// A filter: `WHERE predicate`.
///
/// ```
/// use std::sync::Arc;
/// use arrow::datatypes::{DataType, Field, Schema};
/// use datafusion_expr::{col, lit};
/// use runnel_operators::filter::FilterSpec;
///
/// let input = Arc::new(Schema::new(vec![Field::new("price", DataType::Int64, true)]));
/// let spec = FilterSpec { predicate: col("price").gt(lit(100)) };
/// assert!(spec.create(&input).is_ok());
/// // A predicate must be boolean.
/// assert!(FilterSpec { predicate: col("price") }.create(&input).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct FilterSpec {
    /// A boolean expression over the input columns.
    pub predicate: Expr,
}

impl FilterSpec {
    /// The schema of the filter's output: the input schema.
    pub fn output_schema(&self, input: &Schema) -> Result<SchemaRef> {
        let input = Arc::new(input.clone());
        self.compile(&input)?;
        Ok(input)
    }

    /// Creates one filter subtask for rows of schema `input`.
    pub fn create(&self, input: &SchemaRef) -> Result<Box<dyn Operator>> {
        let predicate = self.compile(input)?;
        Ok(Box::new(FilterOperator { predicate }))
    }

    fn compile(&self, input: &SchemaRef) -> Result<CompiledExpr> {
        let predicate = compile(&self.predicate, input)?;
        match predicate.field().data_type() {
            DataType::Boolean | DataType::Null => Ok(predicate),
            other => Err(Error::Plan(format!(
                "filter predicate `{}` must be boolean, not {other}",
                self.predicate
            ))),
        }
    }
}

/// A filter subtask.
struct FilterOperator {
    predicate: CompiledExpr,
}

impl Operator for FilterOperator {
    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let values = self.predicate.evaluate(&batch)?;
        let Some(mask) = values.as_boolean_opt() else {
            // A predicate typed Null (e.g. `NULL AND x`) keeps no row.
            return Ok(());
        };
        // Counts non-null true values: null keeps no row.
        let selected = mask.true_count();
        if selected == batch.num_rows() {
            out.emit(batch);
        } else if selected > 0 {
            out.emit(filter_record_batch(&batch, mask)?);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
