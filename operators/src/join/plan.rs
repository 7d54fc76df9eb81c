//! What a window join knows about its inputs and output, resolved once at plan time:
//! column indices of keys and window ends per side, the key types, the output schema and
//! the compiled residual predicate. Every check happens here, so a job that builds cannot
//! fail on its first batch for a reason its description already showed.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use runnel_runtime::keys::is_hashable;
use runnel_runtime::time::is_event_time_type;
use runnel_runtime::{Error, Result};

use super::WindowJoinSpec;
use crate::expr::{CompiledExpr, column_index, compile};

/// One input of the join, resolved.
#[derive(Debug)]
pub(super) struct SidePlan {
    /// `left` or `right`, for messages.
    pub name: &'static str,
    pub schema: SchemaRef,
    /// Indices of the equi-join key columns, in key order.
    pub keys: Vec<usize>,
    /// Index of the window-end column.
    pub end: usize,
    pub end_name: String,
}

/// A window join resolved against its two input schemas.
#[derive(Debug)]
pub(super) struct JoinPlan {
    /// Input 0, then input 1.
    pub sides: [SidePlan; 2],
    /// The type of each key pair (the same on both sides).
    pub key_types: Vec<DataType>,
    pub residual: Option<CompiledExpr>,
    output: SchemaRef,
}

impl JoinPlan {
    /// Checks every column reference and type of `spec` against both inputs.
    pub fn new(spec: &WindowJoinSpec, left: &SchemaRef, right: &SchemaRef) -> Result<Self> {
        if spec.left_keys.is_empty() || spec.left_keys.len() != spec.right_keys.len() {
            return Err(Error::Plan(format!(
                "a window join needs pairs of key columns, at least its window ends: \
                 got left keys {:?} and right keys {:?}",
                spec.left_keys, spec.right_keys
            )));
        }
        let left = resolve_side("left", left, &spec.left_keys, &spec.left_end)?;
        let right = resolve_side("right", right, &spec.right_keys, &spec.right_end)?;
        let mut key_types = Vec::with_capacity(left.keys.len());
        for (i, (&l, &r)) in left.keys.iter().zip(&right.keys).enumerate() {
            let l_type = left.schema.field(l).data_type();
            let r_type = right.schema.field(r).data_type();
            if l_type != r_type {
                return Err(Error::Plan(format!(
                    "window join keys `{}` ({l_type}) and `{}` ({r_type}) differ in type: \
                     cast one side first",
                    spec.left_keys[i], spec.right_keys[i]
                )));
            }
            if !is_hashable(l_type) {
                return Err(Error::Plan(format!(
                    "window join key `{}` of type {l_type} cannot be hashed",
                    spec.left_keys[i]
                )));
            }
            key_types.push(l_type.clone());
        }
        let ends_paired = spec
            .left_keys
            .iter()
            .zip(&spec.right_keys)
            .any(|(l, r)| *l == spec.left_end && *r == spec.right_end);
        if !ends_paired {
            return Err(Error::Plan(format!(
                "window join keys must pair the window ends `{}` and `{}`, so that rows \
                 only meet rows of their own window",
                spec.left_end, spec.right_end
            )));
        }
        let output = joined_schema(&left.schema, &right.schema)?;
        let residual = spec
            .residual
            .as_ref()
            .map(|predicate| {
                let compiled = compile(predicate, &output)?;
                match compiled.field().data_type() {
                    DataType::Boolean | DataType::Null => Ok(compiled),
                    other => Err(Error::Plan(format!(
                        "window join condition `{predicate}` must be boolean, not {other}"
                    ))),
                }
            })
            .transpose()?;
        Ok(JoinPlan {
            sides: [left, right],
            key_types,
            residual,
            output,
        })
    }

    /// All left columns, then all right columns.
    pub fn output(&self) -> &SchemaRef {
        &self.output
    }
}

fn resolve_side(
    name: &'static str,
    schema: &SchemaRef,
    keys: &[String],
    end: &str,
) -> Result<SidePlan> {
    let keys = keys
        .iter()
        .map(|k| column_index(schema, k, &format!("window join {name} key")))
        .collect::<Result<Vec<_>>>()?;
    let end_index = column_index(schema, end, &format!("window join {name} window end"))?;
    let end_type = schema.field(end_index).data_type();
    if !is_event_time_type(end_type) {
        return Err(Error::Plan(format!(
            "window join {name} window end `{end}` must be a timestamp or BIGINT \
             milliseconds, not {end_type}"
        )));
    }
    Ok(SidePlan {
        name,
        schema: Arc::clone(schema),
        keys,
        end: end_index,
        end_name: end.to_string(),
    })
}

/// Both inputs' fields side by side; a name on both sides would make the output ambiguous.
fn joined_schema(left: &Schema, right: &Schema) -> Result<SchemaRef> {
    if let Some(both) = left
        .fields()
        .iter()
        .find(|f| right.field_with_name(f.name()).is_ok())
    {
        return Err(Error::Plan(format!(
            "column `{}` is on both sides of the window join: rename it on one side",
            both.name()
        )));
    }
    let fields: Vec<Arc<Field>> = left
        .fields()
        .iter()
        .chain(right.fields())
        .cloned()
        .collect();
    crate::expr::check_unique_names(fields.iter().map(|f| f.name().as_str()))?;
    Ok(Arc::new(Schema::new(fields)))
}
