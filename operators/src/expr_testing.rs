//! Random rows for the expression tests, as Arrow batches and as plain Rust values.

use std::sync::Arc;

use arrow::array::{Float64Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use rand::Rng;
use rand::rngs::StdRng;

/// One input row, as the oracle sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub a: Option<i64>,
    pub b: Option<i32>,
    pub c: Option<f64>,
    pub s: Option<String>,
    pub t: i64,
}

/// `a Int64?, b Int32?, c Float64?, s Utf8?, t Timestamp(ms)`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Int32, true),
        Field::new("c", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), false),
    ]))
}

fn maybe<T>(rng: &mut StdRng, value: T) -> Option<T> {
    (rng.random_range(0..5) > 0).then_some(value)
}

/// Up to `max_rows` random rows; `s` holds decimal integers, so it always casts to Int64.
pub fn random_rows(rng: &mut StdRng, max_rows: usize) -> Vec<Row> {
    let n = rng.random_range(0..=max_rows);
    (0..n)
        .map(|_| {
            let a = rng.random_range(-20..20);
            let b = rng.random_range(-5..5);
            let c = f64::from(rng.random_range(-100..100)) / 4.0;
            let s = rng.random_range(-999..999).to_string();
            Row {
                a: maybe(rng, a),
                b: maybe(rng, b),
                c: maybe(rng, c),
                s: maybe(rng, s),
                t: rng.random_range(0..10_000),
            }
        })
        .collect()
}

pub fn to_batch(rows: &[Row]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(rows.iter().map(|r| r.a).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.b).collect::<Int32Array>()),
            Arc::new(rows.iter().map(|r| r.c).collect::<Float64Array>()),
            Arc::new(rows.iter().map(|r| r.s.clone()).collect::<StringArray>()),
            Arc::new(TimestampMillisecondArray::from(
                rows.iter().map(|r| r.t).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

/// SQL's three-valued AND.
pub fn and(x: Option<bool>, y: Option<bool>) -> Option<bool> {
    match (x, y) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

/// SQL's three-valued OR.
pub fn or(x: Option<bool>, y: Option<bool>) -> Option<bool> {
    match (x, y) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}
