//! The test model of the window join: Nexmark q5's two sides as plain Rust rows, their
//! Arrow form, and a nested-loop join to compare the operator with.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::TimestampMillisecondType;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion_expr::col;
use rand::Rng;
use rand::rngs::StdRng;

use super::WindowJoinSpec;

/// A row of `AuctionBids`: bids per auction and window.
#[derive(Debug, Clone, PartialEq)]
pub struct Left {
    pub start: i64,
    pub end: i64,
    pub auction: Option<i64>,
    pub num: Option<i64>,
}

/// A row of `MaxBids`: the largest count per window (an auction key too, for joins with
/// a key beyond the window).
#[derive(Debug, Clone, PartialEq)]
pub struct Right {
    pub start: i64,
    pub end: i64,
    pub auction: Option<i64>,
    pub maxn: Option<i64>,
    pub tag: Option<String>,
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

/// `starttime, endtime, auction?, num?`.
pub fn left_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("starttime", ts(), false),
        Field::new("endtime", ts(), false),
        Field::new("auction", DataType::Int64, true),
        Field::new("num", DataType::Int64, true),
    ]))
}

/// `max_start, max_end, max_auction?, maxn?, tag?`.
pub fn right_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("max_start", ts(), false),
        Field::new("max_end", ts(), false),
        Field::new("max_auction", DataType::Int64, true),
        Field::new("maxn", DataType::Int64, true),
        Field::new("tag", DataType::Utf8, true),
    ]))
}

/// Keys: the window bounds, plus the auction if `by_auction`; residual `num >= maxn` if
/// `residual`.
pub fn spec(by_auction: bool, residual: bool) -> WindowJoinSpec {
    let (mut left, mut right) = (vec!["starttime", "endtime"], vec!["max_start", "max_end"]);
    if by_auction {
        left.push("auction");
        right.push("max_auction");
    }
    let spec = WindowJoinSpec::new(left, right, "endtime", "max_end");
    match residual {
        true => spec.with_residual(col("num").gt_eq(col("maxn"))),
        false => spec,
    }
}

/// The pairs the join must emit, by nested loops over both sides.
pub fn nested_loops(
    spec_by_auction: bool,
    residual: bool,
    left: &[Left],
    right: &[Right],
) -> Vec<(Left, Right)> {
    let mut pairs = Vec::new();
    for l in left {
        for r in right {
            let window = l.start == r.start && l.end == r.end;
            let key = !spec_by_auction || (l.auction.is_some() && l.auction == r.auction);
            let condition = !residual || matches!((l.num, r.maxn), (Some(n), Some(m)) if n >= m);
            if window && key && condition {
                pairs.push((l.clone(), r.clone()));
            }
        }
    }
    pairs
}

fn maybe<T>(rng: &mut StdRng, value: T) -> Option<T> {
    (rng.random_range(0..6) > 0).then_some(value)
}

/// A window of a hopping stream: ends on a multiple of 500, 500 or 1000 long.
fn window(rng: &mut StdRng, ends: &[i64]) -> (i64, i64) {
    let end = ends[rng.random_range(0..ends.len())];
    (end - 500 * rng.random_range(1..=2), end)
}

/// A random left row in one of the windows ending at `ends` (few distinct keys, so keys
/// repeat on both sides).
pub fn random_left(rng: &mut StdRng, ends: &[i64]) -> Left {
    let (start, end) = window(rng, ends);
    let auction = rng.random_range(0..4);
    let num = rng.random_range(0..8);
    Left {
        start,
        end,
        auction: maybe(rng, auction),
        num: maybe(rng, num),
    }
}

pub fn random_right(rng: &mut StdRng, ends: &[i64]) -> Right {
    let (start, end) = window(rng, ends);
    let auction = rng.random_range(0..4);
    let maxn = rng.random_range(0..8);
    let tag = format!("t{}", rng.random_range(0..3));
    Right {
        start,
        end,
        auction: maybe(rng, auction),
        maxn: maybe(rng, maxn),
        tag: maybe(rng, tag),
    }
}

pub fn left_batch(rows: &[Left]) -> RecordBatch {
    RecordBatch::try_new(
        left_schema(),
        vec![
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.start),
            )),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.end),
            )),
            Arc::new(rows.iter().map(|r| r.auction).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.num).collect::<Int64Array>()),
        ],
    )
    .unwrap()
}

pub fn right_batch(rows: &[Right]) -> RecordBatch {
    RecordBatch::try_new(
        right_schema(),
        vec![
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.start),
            )),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.end),
            )),
            Arc::new(rows.iter().map(|r| r.auction).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.maxn).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.tag.clone()).collect::<StringArray>()),
        ],
    )
    .unwrap()
}

fn times(batch: &RecordBatch, i: usize) -> Vec<i64> {
    batch
        .column(i)
        .as_primitive::<TimestampMillisecondType>()
        .values()
        .to_vec()
}

fn ints(batch: &RecordBatch, i: usize) -> Vec<Option<i64>> {
    batch.column(i).as_primitive::<Int64Type>().iter().collect()
}

/// The left rows of `batch`, whose first columns are the left columns.
pub fn left_rows(batch: &RecordBatch) -> Vec<Left> {
    let (starts, ends) = (times(batch, 0), times(batch, 1));
    let (auctions, nums) = (ints(batch, 2), ints(batch, 3));
    (0..batch.num_rows())
        .map(|i| Left {
            start: starts[i],
            end: ends[i],
            auction: auctions[i],
            num: nums[i],
        })
        .collect()
}

/// The right rows of `batch`, whose columns from `first` on are the right columns.
pub fn right_rows(batch: &RecordBatch, first: usize) -> Vec<Right> {
    let (starts, ends) = (times(batch, first), times(batch, first + 1));
    let (auctions, maxns) = (ints(batch, first + 2), ints(batch, first + 3));
    let tags = batch.column(first + 4).as_string::<i32>();
    (0..batch.num_rows())
        .map(|i| Right {
            start: starts[i],
            end: ends[i],
            auction: auctions[i],
            maxn: maxns[i],
            tag: tags.is_valid(i).then(|| tags.value(i).to_string()),
        })
        .collect()
}

/// The pairs of a joined batch.
pub fn pairs(batch: &RecordBatch) -> Vec<(Left, Right)> {
    left_rows(batch)
        .into_iter()
        .zip(right_rows(batch, 4))
        .collect()
}

/// A late batch as text, whichever side it came from.
pub fn late_lines(batch: &RecordBatch) -> Vec<String> {
    if batch.schema() == left_schema() {
        left_rows(batch)
            .iter()
            .map(|r| format!("late {r:?}"))
            .collect()
    } else {
        right_rows(batch, 0)
            .iter()
            .map(|r| format!("late {r:?}"))
            .collect()
    }
}

/// Rows as sorted text, to compare multisets.
pub fn sorted<T: std::fmt::Debug>(rows: impl IntoIterator<Item = T>) -> Vec<String> {
    let mut lines: Vec<String> = rows.into_iter().map(|r| format!("{r:?}")).collect();
    lines.sort();
    lines
}
