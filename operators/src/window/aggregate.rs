//! Aggregate expressions of a window (`COUNT(*)`, `SUM(price) AS total`, ...) and their
//! resolution against an input schema.
//!
//! Resolution decides, once at plan time, everything the hot path needs: which column an
//! aggregate reads, which of the few accumulator kinds computes it, which type its input is
//! cast to (integers to Int64, floats to Float64, timestamps and dates to Int64 for
//! MIN/MAX) and which type its result has. Casting up front keeps the number of typed
//! accumulator loops small: one per (function, Int64 | Float64), not one per input type.

use arrow::array::ArrayRef;
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use runnel_runtime::{Error, Result};

/// An aggregate function over the rows of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateFunction {
    /// Number of rows (`COUNT(*)`) or of non-null values (`COUNT(col)`).
    Count,
    /// Sum of the non-null values: Int64 for integers (wrapping on overflow), Float64 for
    /// floats.
    Sum,
    /// Smallest non-null value, of the input's type.
    Min,
    /// Largest non-null value, of the input's type.
    Max,
    /// Mean of the non-null values, as Float64.
    Avg,
}

impl AggregateFunction {
    /// SQL name, used in default aliases and error messages.
    pub fn name(self) -> &'static str {
        match self {
            AggregateFunction::Count => "count",
            AggregateFunction::Sum => "sum",
            AggregateFunction::Min => "min",
            AggregateFunction::Max => "max",
            AggregateFunction::Avg => "avg",
        }
    }
}

/// One aggregate of a window: a function, the column it reads and the output column name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateExpr {
    /// What to compute.
    pub function: AggregateFunction,
    /// The input column; `None` only for `COUNT(*)`.
    pub column: Option<String>,
    /// Name of the output column.
    pub alias: String,
}

impl AggregateExpr {
    fn over(function: AggregateFunction, column: impl Into<String>) -> Self {
        let column = column.into();
        AggregateExpr {
            function,
            alias: format!("{}_{column}", function.name()),
            column: Some(column),
        }
    }

    /// Renames the output column.
    ///
    /// ```
    /// use runnel_operators::window::count_star;
    /// assert_eq!(count_star().alias("bids").alias, "bids");
    /// ```
    pub fn alias(mut self, name: impl Into<String>) -> Self {
        self.alias = name.into();
        self
    }
}

/// `COUNT(*)`: the number of rows, output column `count`.
pub fn count_star() -> AggregateExpr {
    AggregateExpr {
        function: AggregateFunction::Count,
        column: None,
        alias: "count".into(),
    }
}

/// `COUNT(col)`: the number of non-null values, output column `count_{col}`.
pub fn count(column: impl Into<String>) -> AggregateExpr {
    AggregateExpr::over(AggregateFunction::Count, column)
}

/// `SUM(col)`, output column `sum_{col}`.
pub fn sum(column: impl Into<String>) -> AggregateExpr {
    AggregateExpr::over(AggregateFunction::Sum, column)
}

/// `MIN(col)`, output column `min_{col}`.
pub fn min(column: impl Into<String>) -> AggregateExpr {
    AggregateExpr::over(AggregateFunction::Min, column)
}

/// `MAX(col)`, output column `max_{col}`.
pub fn max(column: impl Into<String>) -> AggregateExpr {
    AggregateExpr::over(AggregateFunction::Max, column)
}

/// `AVG(col)`, output column `avg_{col}`.
pub fn avg(column: impl Into<String>) -> AggregateExpr {
    AggregateExpr::over(AggregateFunction::Avg, column)
}

/// The accumulator that computes an aggregate; each has one typed update loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccumulatorKind {
    CountRows,
    CountValues,
    SumInt,
    SumFloat,
    MinInt,
    MaxInt,
    MinFloat,
    MaxFloat,
    Avg,
}

impl AccumulatorKind {
    /// The type the input column is cast to before it reaches the accumulator.
    fn input_type(self) -> Option<DataType> {
        use AccumulatorKind::*;
        match self {
            CountRows | CountValues => None,
            SumInt | MinInt | MaxInt => Some(DataType::Int64),
            SumFloat | MinFloat | MaxFloat | Avg => Some(DataType::Float64),
        }
    }
}

/// An aggregate checked against the input schema.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedAggregate {
    pub kind: AccumulatorKind,
    /// Index of the input column (`None` for `COUNT(*)`).
    pub column: Option<usize>,
    /// The output field (the alias, the result type).
    pub field: Field,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum InputClass {
    Integer,
    Float,
    Temporal,
}

fn classify(data_type: &DataType) -> Option<InputClass> {
    use DataType::*;
    match data_type {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => {
            Some(InputClass::Integer)
        }
        Float16 | Float32 | Float64 => Some(InputClass::Float),
        Timestamp(_, _) | Date32 | Date64 => Some(InputClass::Temporal),
        _ => None,
    }
}

impl ResolvedAggregate {
    /// Checks `expr` against `schema` and picks its accumulator and output type.
    pub fn resolve(expr: &AggregateExpr, schema: &Schema) -> Result<Self> {
        use AggregateFunction::*;
        let name = expr.function.name().to_uppercase();
        let Some(column_name) = &expr.column else {
            if expr.function != Count {
                return Err(Error::Plan(format!(
                    "{name} needs a column (only COUNT(*) has none)"
                )));
            }
            return Ok(ResolvedAggregate {
                kind: AccumulatorKind::CountRows,
                column: None,
                field: Field::new(&expr.alias, DataType::Int64, false),
            });
        };
        let column = schema.index_of(column_name).map_err(|_| {
            Error::Plan(format!(
                "{name}({column_name}): unknown column `{column_name}`; the input has {:?}",
                schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()
            ))
        })?;
        let input_type = schema.field(column).data_type();
        let class = classify(input_type);
        let unsupported = || {
            Error::Plan(format!(
                "{name}({column_name}): cannot aggregate a column of type {input_type}"
            ))
        };
        let (kind, output_type) = match (expr.function, class) {
            (Count, _) => (AccumulatorKind::CountValues, DataType::Int64),
            (Sum, Some(InputClass::Integer)) => (AccumulatorKind::SumInt, DataType::Int64),
            (Sum, Some(InputClass::Float)) => (AccumulatorKind::SumFloat, DataType::Float64),
            (Avg, Some(InputClass::Integer | InputClass::Float)) => {
                (AccumulatorKind::Avg, DataType::Float64)
            }
            (Min, Some(InputClass::Integer | InputClass::Temporal)) => {
                (AccumulatorKind::MinInt, input_type.clone())
            }
            (Max, Some(InputClass::Integer | InputClass::Temporal)) => {
                (AccumulatorKind::MaxInt, input_type.clone())
            }
            (Min, Some(InputClass::Float)) => (AccumulatorKind::MinFloat, input_type.clone()),
            (Max, Some(InputClass::Float)) => (AccumulatorKind::MaxFloat, input_type.clone()),
            _ => return Err(unsupported()),
        };
        let nullable = kind != AccumulatorKind::CountValues;
        Ok(ResolvedAggregate {
            kind,
            column: Some(column),
            field: Field::new(&expr.alias, output_type, nullable),
        })
    }

    /// The input of this aggregate in `batch`, cast to what its accumulator reads.
    /// `None` for `COUNT(*)`, which reads no column.
    pub fn input(&self, batch: &RecordBatch) -> Result<Option<ArrayRef>> {
        let Some(index) = self.column else {
            return Ok(None);
        };
        let column = batch.column(index);
        match self.kind.input_type() {
            Some(target) if column.data_type() != &target => {
                // `safe: false`: a value that does not fit (UInt64 above i64::MAX) is an
                // error rather than a silent null.
                let options = CastOptions {
                    safe: false,
                    ..Default::default()
                };
                let cast = cast_with_options(column, &target, &options)
                    .map_err(|e| Error::Data(format!("aggregate `{}`: {e}", self.field.name())))?;
                Ok(Some(cast))
            }
            _ => Ok(Some(column.clone())),
        }
    }

    /// Casts an accumulator result (Int64 / Float64) back to the output type.
    pub fn output(&self, result: ArrayRef) -> Result<ArrayRef> {
        if result.data_type() == self.field.data_type() {
            return Ok(result);
        }
        Ok(arrow::compute::cast(&result, self.field.data_type())?)
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::TimeUnit;

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("price", DataType::UInt32, true),
            Field::new("ratio", DataType::Float32, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("name", DataType::Utf8, true),
        ])
    }

    #[test]
    fn default_aliases_and_output_types() {
        let s = schema();
        let cases = [
            (count_star(), "count", DataType::Int64, false),
            (count("name"), "count_name", DataType::Int64, false),
            (sum("price"), "sum_price", DataType::Int64, true),
            (sum("ratio"), "sum_ratio", DataType::Float64, true),
            (min("ratio"), "min_ratio", DataType::Float32, true),
            (max("at"), "max_at", s.field(2).data_type().clone(), true),
            (avg("price"), "avg_price", DataType::Float64, true),
        ];
        for (expr, alias, data_type, nullable) in cases {
            let r = ResolvedAggregate::resolve(&expr, &s).unwrap();
            assert_eq!(r.field, Field::new(alias, data_type, nullable));
        }
    }

    #[test]
    fn bad_aggregates_are_plan_errors() {
        let s = schema();
        let sum_star = AggregateExpr {
            column: None,
            ..sum("x")
        };
        for (expr, needle) in [
            (sum("nope"), "unknown column `nope`"),
            (sum("name"), "cannot aggregate a column of type Utf8"),
            (avg("at"), "cannot aggregate"),
            (min("name"), "cannot aggregate"),
            (sum_star, "SUM needs a column"),
        ] {
            let err = ResolvedAggregate::resolve(&expr, &s).unwrap_err();
            assert!(matches!(err, Error::Plan(_)), "{err}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
