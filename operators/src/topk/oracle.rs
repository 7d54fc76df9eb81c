//! Test data for top-K: random rows with many ties, their Arrow form, and a naive
//! row-by-row top-K to compare against.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{
    DataType, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
    UInt64Type,
};
use arrow::record_batch::RecordBatch;
use rand::Rng;
use rand::rngs::StdRng;

use super::TopKSpec;

pub const COLUMNS: [&str; 6] = [
    "window_start",
    "window_end",
    "cat",
    "item",
    "count",
    "price",
];

#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Val {
    I(i64),
    F(f64),
    S(String),
}

impl Val {
    fn cmp(&self, other: &Val) -> Ordering {
        match (self, other) {
            (Val::I(a), Val::I(b)) => a.cmp(b),
            (Val::F(a), Val::F(b)) => a.total_cmp(b),
            (Val::S(a), Val::S(b)) => a.cmp(b),
            _ => unreachable!("columns have one type"),
        }
    }
}

/// A row as the oracle sees it: values by column position (None is null).
pub type Row = Vec<Option<Val>>;

pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    Arc::new(Schema::new(vec![
        Field::new("window_start", ts.clone(), false),
        Field::new("window_end", ts, false),
        Field::new("cat", DataType::Utf8, true),
        Field::new("item", DataType::Int64, true),
        Field::new("count", DataType::Int64, true),
        Field::new("price", DataType::Float64, true),
    ]))
}

pub fn random_row(rng: &mut StdRng, window_end: i64) -> Row {
    let null = |rng: &mut StdRng| rng.random_range(0..6) == 0;
    let cats = ["a", "b", "c"];
    let prices = [-1.5, -0.0, 0.0, 2.5, f64::NAN];
    let ws = window_end - 1000 * rng.random_range(1..3);
    vec![
        Some(Val::I(ws)),
        Some(Val::I(window_end)),
        (!null(rng)).then(|| Val::S(cats[rng.random_range(0..cats.len())].into())),
        (!null(rng)).then(|| Val::I(rng.random_range(0..4))),
        (!null(rng)).then(|| Val::I(rng.random_range(0..4))),
        (!null(rng)).then(|| Val::F(prices[rng.random_range(0..prices.len())])),
    ]
}

pub fn to_batch(rows: &[Row]) -> RecordBatch {
    let int = |c: usize| -> Vec<Option<i64>> {
        rows.iter()
            .map(|r| match &r[c] {
                Some(Val::I(v)) => Some(*v),
                _ => None,
            })
            .collect()
    };
    let ts = |c: usize| {
        TimestampMillisecondArray::from(int(c).into_iter().map(Option::unwrap).collect::<Vec<_>>())
    };
    let cat: StringArray = rows
        .iter()
        .map(|r| match &r[2] {
            Some(Val::S(s)) => Some(s.clone()),
            _ => None,
        })
        .collect();
    let price: Float64Array = rows
        .iter()
        .map(|r| match &r[5] {
            Some(Val::F(v)) => Some(*v),
            _ => None,
        })
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ts(0)),
        Arc::new(ts(1)),
        Arc::new(cat),
        Arc::new(Int64Array::from(int(3))),
        Arc::new(Int64Array::from(int(4))),
        Arc::new(price),
    ];
    RecordBatch::try_new(schema(), columns).unwrap()
}

/// Rows of `batch`, with the rank (if the batch has a seventh column).
pub fn from_batch(batch: &RecordBatch) -> Vec<(Row, Option<u64>)> {
    let c = |i: usize| batch.column(i);
    (0..batch.num_rows())
        .map(|r| {
            let get = |i: usize| -> Option<Val> {
                if c(i).is_null(r) {
                    return None;
                }
                Some(match i {
                    0 | 1 => Val::I(c(i).as_primitive::<TimestampMillisecondType>().value(r)),
                    2 => Val::S(c(i).as_string::<i32>().value(r).to_string()),
                    5 => Val::F(c(i).as_primitive::<Float64Type>().value(r)),
                    _ => Val::I(c(i).as_primitive::<Int64Type>().value(r)),
                })
            };
            let rank =
                (batch.num_columns() > 6).then(|| c(6).as_primitive::<UInt64Type>().value(r));
            ((0..6).map(get).collect(), rank)
        })
        .collect()
}

pub fn cmp_nullable(
    a: &Option<Val>,
    b: &Option<Val>,
    descending: bool,
    nulls_first: bool,
) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (_, None) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(x), Some(y)) => {
            if descending {
                y.cmp(x)
            } else {
                x.cmp(y)
            }
        }
    }
}

/// Row-by-row top-K: group by (time, partition), sort each group, keep k.
pub fn oracle(spec: &TopKSpec, rows: &[Row]) -> Vec<(Row, Option<u64>)> {
    let idx = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap();
    let part: Vec<usize> = spec.partition_by.iter().map(|c| idx(c)).collect();
    let mut key: Vec<(usize, bool, bool)> = spec
        .order_by
        .iter()
        .map(|s| (idx(&s.column), s.descending, s.descending))
        .collect();
    for c in 0..COLUMNS.len() {
        if c != 1 && !part.contains(&c) && !key.iter().any(|k| k.0 == c) {
            key.push((c, false, true));
        }
    }
    let mut sorted = rows.to_vec();
    sorted.sort_by(|a, b| {
        let by_time = cmp_nullable(&a[1], &b[1], false, true);
        let by_part = part.iter().fold(by_time, |o, &c| {
            o.then_with(|| cmp_nullable(&a[c], &b[c], false, true))
        });
        key.iter().fold(by_part, |o, &(c, d, n)| {
            o.then_with(|| cmp_nullable(&a[c], &b[c], d, n))
        })
    });
    let same_group = |a: &Row, b: &Row| {
        a[1] == b[1]
            && part
                .iter()
                .all(|&c| cmp_nullable(&a[c], &b[c], false, true).is_eq())
    };
    let mut out = Vec::new();
    let mut rank = 0;
    for (i, row) in sorted.iter().enumerate() {
        rank = if i > 0 && same_group(&sorted[i - 1], row) {
            rank + 1
        } else {
            1
        };
        if rank <= spec.k as u64 {
            out.push((row.clone(), spec.rank_column.as_ref().map(|_| rank)));
        }
    }
    out
}
