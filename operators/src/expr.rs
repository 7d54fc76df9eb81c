//! DataFusion expressions as runnel's scalar expression language.
//!
//! Project and filter take logical [`Expr`]s (what the SQL layer gets from DataFusion's
//! planner, or what a Rust user writes with `col("price") * lit(2)`) and compile them once,
//! at operator creation, into DataFusion physical expressions that evaluate a whole
//! `RecordBatch` at a time with Arrow kernels.
//!
//! DataFusion's physical planner does no type coercion: its analyzer is expected to have
//! cast both sides of every binary operator to a common type. The SQL layer's plans are
//! already analyzed, but expressions written by hand are often not (`Int64 + Int32`), and
//! would then fail on the first batch instead of at planning. [`compile`] therefore
//! coerces binary operators itself, with DataFusion's own coercion rules, which leaves
//! already-coerced expressions unchanged. Other expression kinds are taken as typed.
//!
//! Errors say whose fault they are: anything found while compiling is a
//! [`Error::Plan`]; a failure while evaluating (division by zero, a string that does not
//! cast) is [`Error::Data`], the fault of a record; DataFusion's internal errors stay
//! [`Error::Internal`].

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{FieldRef, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{DFSchema, DataFusionError};
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::expr::BinaryExpr;
use datafusion_expr::type_coercion::binary::BinaryTypeCoercer;
use datafusion_expr::{Expr, ExprSchemable, cast};
use datafusion_physical_expr::PhysicalExpr;
use runnel_runtime::{Error, Result};

/// A logical expression compiled against one input schema.
#[derive(Debug, Clone)]
pub struct CompiledExpr {
    physical: Arc<dyn PhysicalExpr>,
    field: FieldRef,
}

impl CompiledExpr {
    /// The type, nullability and metadata of the values the expression produces. A bare
    /// column reference keeps the input field as it is (event-time metadata included).
    pub fn field(&self) -> &FieldRef {
        &self.field
    }

    /// Evaluates the expression over every row of `batch`.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<ArrayRef> {
        self.physical
            .evaluate(batch)
            .and_then(|value| value.into_array(batch.num_rows()))
            .map_err(data_error)
    }
}

/// Compiles `expr` against `input`: resolves columns, coerces binary operators to common
/// types and builds the physical expression.
///
/// ```
/// use std::sync::Arc;
/// use arrow::datatypes::{DataType, Field, Schema};
/// use datafusion_expr::{col, lit};
/// use runnel_operators::expr::compile;
///
/// let schema = Arc::new(Schema::new(vec![Field::new("price", DataType::Int64, false)]));
/// let doubled = compile(&(col("price") * lit(2i32)), &schema).unwrap();
/// assert_eq!(doubled.field().data_type(), &DataType::Int64);
/// assert!(compile(&col("nope"), &schema).is_err());
/// ```
pub fn compile(expr: &Expr, input: &SchemaRef) -> Result<CompiledExpr> {
    let df_schema = DFSchema::try_from(Arc::clone(input)).map_err(plan_error)?;
    let coerced = coerce_binary(expr.clone(), &df_schema)?;
    let physical = datafusion_physical_expr::create_physical_expr(
        &coerced,
        &df_schema,
        &ExecutionProps::new(),
    )
    .map_err(plan_error)?;
    let field = match &coerced {
        Expr::Column(column) => {
            let index = df_schema.index_of_column(column).map_err(plan_error)?;
            Arc::new(input.field(index).clone())
        }
        _ => physical.return_field(input.as_ref()).map_err(plan_error)?,
    };
    Ok(CompiledExpr { physical, field })
}

/// Casts both operands of every binary operator to the types DataFusion's coercion rules
/// pick for that operator (`Int64 + Int32` -> `Int64 + CAST(.. AS Int64)`).
fn coerce_binary(expr: Expr, schema: &DFSchema) -> Result<Expr> {
    expr.transform_up(|e| {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
            return Ok(Transformed::no(e));
        };
        let left_type = left.get_type(schema)?;
        let right_type = right.get_type(schema)?;
        let (lhs, rhs) = BinaryTypeCoercer::new(&left_type, &op, &right_type).get_input_types()?;
        if lhs == left_type && rhs == right_type {
            return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                left,
                op,
                right,
            })));
        }
        let left = if lhs == left_type {
            *left
        } else {
            cast(*left, lhs)
        };
        let right = if rhs == right_type {
            *right
        } else {
            cast(*right, rhs)
        };
        Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
            Box::new(left),
            op,
            Box::new(right),
        ))))
    })
    .map(|t| t.data)
    .map_err(plan_error)
}

/// A DataFusion error found while planning: the job description is wrong.
pub fn plan_error(e: DataFusionError) -> Error {
    match e.find_root() {
        DataFusionError::Internal(_) => Error::Internal(e.strip_backtrace()),
        _ => Error::Plan(e.strip_backtrace()),
    }
}

/// A DataFusion error raised while evaluating rows: a record the expression cannot handle.
pub fn data_error(e: DataFusionError) -> Error {
    match e.find_root() {
        DataFusionError::Internal(_) => Error::Internal(e.strip_backtrace()),
        _ => Error::Data(e.strip_backtrace()),
    }
}

/// Checks that output column names are unique, as a schema needs them to be.
pub(crate) fn check_unique_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let mut seen = hashbrown::HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(Error::Plan(format!("duplicate output column `{name}`")));
        }
    }
    Ok(())
}

/// The index of column `name` in `schema`, or a plan error naming the column and `what`
/// it was needed for.
pub(crate) fn column_index(schema: &Schema, name: &str, what: &str) -> Result<usize> {
    schema.index_of(name).map_err(|_| {
        let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        Error::Plan(format!(
            "{what}: no column `{name}` (columns: {})",
            known.join(", ")
        ))
    })
}

#[cfg(test)]
#[path = "expr_testing.rs"]
pub(crate) mod testing;
