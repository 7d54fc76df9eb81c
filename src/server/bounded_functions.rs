//! The scalar functions whose output can be vastly larger than their input
//! (`repeat('x', 1500000000)` is 42 bytes of SQL and 1.5 GB of string), wrapped so that
//! they refuse, before allocating, to produce more than the query's memory limit.
//! DataFusion's memory pool accounts for operators' state (sorts, joins, aggregates),
//! not for the arrays a scalar function allocates; these are the functions for which
//! that matters.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::compute::kernels::cast::cast;
use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

/// How a function's output grows with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(text, n)`: the text's bytes times `n`.
    Repeat,
    /// `lpad/rpad(text, n, ...)`: `n` characters of up to 4 bytes.
    Pad,
    /// `replace/regexp_replace(text, pattern, replacement, ...)`: at most the text's
    /// bytes times the replacement's.
    Replace,
}

const AMPLIFIERS: [(&str, Growth); 5] = [
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("replace", Growth::Replace),
    ("regexp_replace", Growth::Replace),
];

/// Replaces each amplifying function `ctx` has with one that refuses to produce more
/// than `max_bytes`.
pub fn register(ctx: &SessionContext, max_bytes: usize) {
    for (name, growth) in AMPLIFIERS {
        let Some(inner) = ctx.state().scalar_functions().get(name).cloned() else {
            continue;
        };
        ctx.register_udf(ScalarUDF::new_from_impl(Bounded {
            inner,
            growth,
            max_bytes,
        }));
    }
}

/// `inner` with a size check before each call.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: Arc<ScalarUDF>,
    growth: Growth,
    max_bytes: usize,
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bytes = output_bytes(self.growth, &args)?;
        if bytes > self.max_bytes as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}(...) would produce about {bytes} bytes, more than the query memory \
                 limit of {} bytes (--query-max-memory-bytes)",
                self.inner.name(),
                self.max_bytes
            )));
        }
        self.inner.invoke_with_args(args)
    }
}

/// An upper bound of the bytes one call produces.
fn output_bytes(growth: Growth, args: &ScalarFunctionArgs) -> Result<u128> {
    let all_scalar = args
        .args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let rows = if all_scalar { 1 } else { args.number_rows } as u128;
    let count = |i: usize| -> Result<u128> {
        Ok(args
            .args
            .get(i)
            .map(integers)
            .transpose()?
            .unwrap_or_default()
            .into_iter()
            .map(|n| n.max(0) as u128)
            .max()
            .unwrap_or(0))
    };
    let text = |i: usize| args.args.get(i).map(longest_text).unwrap_or(0) as u128;
    Ok(match growth {
        Growth::Repeat => rows * text(0) * count(1)?,
        Growth::Pad => rows * 4 * count(1)?,
        Growth::Replace => rows * text(0) * text(2).max(1),
    })
}

/// The non-null integers of an argument (none if it is not an integer).
fn integers(value: &ColumnarValue) -> Result<Vec<i64>> {
    let array = match value {
        ColumnarValue::Scalar(scalar) if scalar.data_type().is_integer() => scalar.to_array()?,
        ColumnarValue::Array(array) if array.data_type().is_integer() => array.clone(),
        _ => return Ok(Vec::new()),
    };
    let array = cast(&array, &DataType::Int64)?;
    Ok(array.as_primitive::<Int64Type>().iter().flatten().collect())
}

/// The byte length of an argument's longest string (0 if it is not a string).
fn longest_text(value: &ColumnarValue) -> usize {
    match value {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => s.len(),
        ColumnarValue::Scalar(_) => 0,
        ColumnarValue::Array(array) => match cast(array, &DataType::Utf8) {
            Ok(strings) => strings
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::len)
                .max()
                .unwrap_or(0),
            Err(_) => 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(sql: &str, max_bytes: usize) -> Result<usize> {
        let ctx = SessionContext::new();
        register(&ctx, max_bytes);
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(batches.iter().map(|b| b.num_rows()).sum())
    }

    #[tokio::test]
    async fn amplifying_functions_refuse_outputs_beyond_the_limit() {
        for sql in [
            "SELECT repeat('x', 1500000000)",
            "SELECT repeat(s, 100000000) FROM (VALUES ('abc'), ('de')) t(s)",
            "SELECT lpad('x', 2000000000)",
            "SELECT rpad('x', 2000000000, 'yz')",
            "SELECT replace(repeat('a', 100000), 'a', repeat('b', 10000))",
            "SELECT regexp_replace(repeat('a', 100000), 'a', repeat('b', 10000), 'g')",
        ] {
            let error = run(sql, 64 << 20).await.unwrap_err().to_string();
            assert!(error.contains("--query-max-memory-bytes"), "{sql}: {error}");
        }
    }

    #[tokio::test]
    async fn modest_calls_still_work() {
        for (sql, rows) in [
            ("SELECT repeat('ab', 1000)", 1),
            ("SELECT repeat(s, 3) FROM (VALUES ('abc'), ('de')) t(s)", 2),
            ("SELECT lpad('x', 10, '-')", 1),
            ("SELECT replace('banana', 'a', 'oo')", 1),
            ("SELECT regexp_replace('banana', 'a+', 'o', 'g')", 1),
        ] {
            assert_eq!(run(sql, 64 << 20).await.unwrap(), rows, "{sql}");
        }
    }
}
