//! Small hand-written cases that read like documentation; the randomized comparison with
//! the oracle is in `oracle_tests.rs`.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::util::display::array_value_to_string;
use runnel_runtime::{Operator, Output, WATERMARK_END};

use super::*;

pub(super) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("auction", DataType::Int64, true),
        Field::new("bidder", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
    ]))
}

/// (ts, auction, bidder, price)
pub(super) type TestRow<'a> = (i64, Option<i64>, Option<&'a str>, Option<f64>);

pub(super) fn batch(rows: &[TestRow]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from_iter_values(
            rows.iter().map(|r| r.0),
        )),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.2))),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.3))),
    ];
    RecordBatch::try_new(schema(), columns).unwrap()
}

pub(super) fn spec(
    kind: WindowKind,
    keys: &[&str],
    aggregates: Vec<AggregateExpr>,
) -> WindowAggregateSpec {
    WindowAggregateSpec {
        kind,
        time_column: "ts".into(),
        key_columns: keys.iter().map(|k| k.to_string()).collect(),
        aggregates,
    }
}

/// Each row as `col=value` pairs (timestamps as raw milliseconds), sorted.
pub(super) fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let mut lines = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .schema()
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(field, column)| {
                    let value = match column.data_type() {
                        DataType::Timestamp(_, _) if column.is_valid(row) => {
                            arrow::compute::cast(column, &DataType::Int64)
                                .map(|c| array_value_to_string(&c, row).unwrap())
                                .unwrap()
                        }
                        _ => array_value_to_string(column, row).unwrap(),
                    };
                    format!("{}={value}", field.name())
                })
                .collect();
            lines.push(cells.join(" "));
        }
    }
    lines.sort();
    lines
}

pub(super) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

pub(super) struct Harness {
    op: Box<dyn Operator>,
    out: Output,
}

impl Harness {
    fn new(spec: &WindowAggregateSpec) -> Self {
        Harness {
            op: spec.create(&schema()).unwrap(),
            out: Output::default(),
        }
    }

    /// Feeds a batch; returns the late rows.
    fn rows(&mut self, batch: RecordBatch) -> Vec<String> {
        self.op.on_batch(0, batch, &mut self.out).unwrap();
        let (main, late) = self.out.take();
        assert!(main.is_empty());
        lines(&late)
    }

    /// Advances the watermark; returns the fired windows.
    fn watermark(&mut self, w: i64) -> Vec<String> {
        self.op.on_watermark(w, &mut self.out).unwrap();
        lines(&self.out.take().0)
    }
}

#[test]
fn tumbling_count_and_max_per_auction() {
    let spec = spec(
        WindowKind::Tumbling { size: ms(10) },
        &["auction"],
        vec![count_star().alias("bids"), max("price")],
    );
    let mut h = Harness::new(&spec);
    h.rows(batch(&[
        (1, Some(7), None, Some(3.0)),
        (12, Some(7), None, Some(1.0)),
        (9, Some(7), None, None),
        (5, Some(8), None, Some(2.5)),
        (-1, None, None, Some(4.0)),
    ]));
    assert_eq!(
        h.watermark(10),
        [
            "auction= window_start=-10 window_end=0 bids=1 max_price=4.0",
            "auction=7 window_start=0 window_end=10 bids=2 max_price=3.0",
            "auction=8 window_start=0 window_end=10 bids=1 max_price=2.5",
        ]
    );
    assert!(h.watermark(19).is_empty());
    assert_eq!(
        h.watermark(WATERMARK_END),
        ["auction=7 window_start=10 window_end=20 bids=1 max_price=1.0"]
    );
}

#[test]
fn hopping_row_counts_only_in_windows_that_have_not_fired() {
    // HOP 10 ms / 5 ms: a row at 12 is in [5, 15) and [10, 20).
    let spec = spec(
        WindowKind::Hopping {
            size: ms(10),
            slide: ms(5),
        },
        &[],
        vec![count_star(), sum("price")],
    );
    let mut h = Harness::new(&spec);
    h.rows(batch(&[
        (3, None, None, Some(1.0)),
        (12, None, None, Some(2.0)),
    ]));
    assert_eq!(
        h.watermark(15),
        [
            "window_start=-5 window_end=5 count=1 sum_price=1.0",
            "window_start=0 window_end=10 count=1 sum_price=1.0",
            "window_start=5 window_end=15 count=1 sum_price=2.0",
        ]
    );
    // 11 is in [5, 15) (fired) and [10, 20) (open): it counts in [10, 20) only.
    // 4 is in [-5, 5) and [0, 10), both fired: late.
    let late = h.rows(batch(&[
        (11, None, None, Some(4.0)),
        (4, None, None, Some(8.0)),
    ]));
    assert_eq!(late, ["ts=4 auction= bidder= price=8.0"]);
    assert_eq!(
        h.watermark(WATERMARK_END),
        ["window_start=10 window_end=20 count=2 sum_price=6.0",]
    );
}

#[test]
fn hopping_size_not_a_multiple_of_slide() {
    // HOP 10 ms / 4 ms (panes of 2 ms): windows [0,10) [4,14) [8,18) hold 9.
    let spec = spec(
        WindowKind::Hopping {
            size: ms(10),
            slide: ms(4),
        },
        &[],
        vec![count_star()],
    );
    let mut h = Harness::new(&spec);
    h.rows(batch(&[(9, None, None, None), (13, None, None, None)]));
    assert_eq!(
        h.watermark(WATERMARK_END),
        [
            "window_start=0 window_end=10 count=1",
            "window_start=12 window_end=22 count=1",
            "window_start=4 window_end=14 count=2",
            "window_start=8 window_end=18 count=2",
        ]
    );
}

#[test]
fn cumulative_windows_grow_by_steps_and_restart_every_max_size() {
    // CUMULATE 2 ms up to 6 ms: [0,2) [0,4) [0,6), then [6,8) [6,10) [6,12), ...
    let spec = spec(
        WindowKind::Cumulative {
            step: ms(2),
            max_size: ms(6),
        },
        &["auction"],
        vec![count_star(), sum("price")],
    );
    let mut h = Harness::new(&spec);
    h.rows(batch(&[
        (1, Some(7), None, Some(1.0)),
        (3, Some(7), None, Some(2.0)),
        (4, Some(8), None, Some(4.0)),
        (7, Some(7), None, Some(8.0)),
    ]));
    assert_eq!(
        h.watermark(4),
        [
            "auction=7 window_start=0 window_end=2 count=1 sum_price=1.0",
            "auction=7 window_start=0 window_end=4 count=2 sum_price=3.0",
        ]
    );
    // 2 is in [0,4) (fired) and [0,6) (open): it counts in [0,6) only. -1 is in the
    // period [-6,0), which has fired: late.
    let late = h.rows(batch(&[
        (2, Some(8), None, Some(16.0)),
        (-1, Some(7), None, Some(32.0)),
    ]));
    assert_eq!(late, ["ts=-1 auction=7 bidder= price=32.0"]);
    assert_eq!(
        h.watermark(8),
        [
            "auction=7 window_start=0 window_end=6 count=2 sum_price=3.0",
            "auction=7 window_start=6 window_end=8 count=1 sum_price=8.0",
            "auction=8 window_start=0 window_end=6 count=2 sum_price=20.0",
        ]
    );
    assert_eq!(
        h.watermark(WATERMARK_END),
        [
            "auction=7 window_start=6 window_end=10 count=1 sum_price=8.0",
            "auction=7 window_start=6 window_end=12 count=1 sum_price=8.0",
        ]
    );
}

#[test]
fn session_bridging_row_merges_two_sessions() {
    let spec = spec(
        WindowKind::Session { gap: ms(5) },
        &["bidder"],
        vec![count_star(), min("price"), avg("price")],
    );
    let mut h = Harness::new(&spec);
    h.rows(batch(&[
        (0, None, Some("ann"), Some(1.0)),
        (10, None, Some("ann"), Some(3.0)),
        (3, None, Some("bob"), None),
    ]));
    // 5 touches [0, 5) and [5, 10) touches [10, 15): one session [0, 15).
    h.rows(batch(&[(5, None, Some("ann"), Some(2.0))]));
    assert_eq!(
        h.watermark(9),
        ["bidder=bob window_start=3 window_end=8 count=1 min_price= avg_price="]
    );
    // [1, 6) would be a new session of bob ending before the watermark: late.
    assert_eq!(h.rows(batch(&[(1, None, Some("bob"), None)])).len(), 1);
    assert_eq!(
        h.watermark(WATERMARK_END),
        ["bidder=ann window_start=0 window_end=15 count=3 min_price=1.0 avg_price=2.0"]
    );
}

#[test]
fn multi_column_keys_with_nulls_and_count_of_a_column() {
    let spec = spec(
        WindowKind::Tumbling { size: ms(100) },
        &["auction", "bidder"],
        vec![count("price"), sum("price")],
    );
    let mut h = Harness::new(&spec);
    h.rows(batch(&[
        (1, Some(1), Some("x"), None),
        (2, Some(1), Some("x"), None),
        (3, Some(1), None, Some(2.0)),
        (4, None, None, Some(1.0)),
    ]));
    assert_eq!(
        h.watermark(WATERMARK_END),
        [
            "auction= bidder= window_start=0 window_end=100 count_price=1 sum_price=1.0",
            "auction=1 bidder= window_start=0 window_end=100 count_price=1 sum_price=2.0",
            "auction=1 bidder=x window_start=0 window_end=100 count_price=0 sum_price=",
        ]
    );
}

#[test]
fn old_watermarks_and_empty_windows_emit_nothing() {
    let spec = spec(
        WindowKind::Hopping {
            size: ms(10),
            slide: ms(2),
        },
        &[],
        vec![count_star()],
    );
    let mut h = Harness::new(&spec);
    h.rows(batch(&[(1_000_000, None, None, None)]));
    assert!(h.watermark(1_000_000).is_empty());
    assert!(h.watermark(5).is_empty());
    assert_eq!(h.watermark(1_000_004).len(), 2);
    assert_eq!(h.watermark(WATERMARK_END).len(), 3);
}

#[test]
fn all_state_is_released_after_the_last_watermark() {
    let events: Vec<_> = (0..500i64)
        .map(|i| {
            (
                i * 7 % 300,
                Some(i % 13),
                Some(["a", "b"][(i % 2) as usize]),
                Some(i as f64),
            )
        })
        .collect();
    let run = |op: &mut dyn Operator| {
        let mut out = Output::default();
        for (i, chunk) in events.chunks(50).enumerate() {
            op.on_batch(0, batch(chunk), &mut out).unwrap();
            op.on_watermark(i as i64 * 25, &mut out).unwrap();
        }
        op.on_watermark(WATERMARK_END, &mut out).unwrap();
    };
    let aggregates = vec![count_star(), avg("price")];
    let hop = spec(
        WindowKind::Hopping {
            size: ms(30),
            slide: ms(7),
        },
        &["auction", "bidder"],
        aggregates.clone(),
    );
    let plan = plan::WindowPlan::new(&hop, &schema()).unwrap();
    let mut op = panes::PaneWindowOperator::new(plan, panes::PaneLayout::new(30, 7), 128).unwrap();
    run(&mut op);
    assert_eq!(op.open_state(), (0, 0, 0));

    let cumulate = spec(
        WindowKind::Cumulative {
            step: ms(5),
            max_size: ms(20),
        },
        &["auction", "bidder"],
        aggregates.clone(),
    );
    let plan = plan::WindowPlan::new(&cumulate, &schema()).unwrap();
    let layout = panes::PaneLayout::cumulative(5, 20);
    let mut op = panes::PaneWindowOperator::new(plan, layout, 128).unwrap();
    run(&mut op);
    assert_eq!(op.open_state(), (0, 0, 0));

    let session = spec(WindowKind::Session { gap: ms(4) }, &["auction"], aggregates);
    let plan = plan::WindowPlan::new(&session, &schema()).unwrap();
    let mut op = session::SessionWindowOperator::new(plan, 4, 128).unwrap();
    run(&mut op);
    assert_eq!(op.open_state(), (0, 0, 0));
}
