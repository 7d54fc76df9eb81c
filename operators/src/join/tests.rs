//! The window join by example, its plan errors, and a randomized comparison with the
//! nested-loop oracle.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion_expr::{col, lit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel_runtime::{Error, Millis, Operator, Output, WATERMARK_END};

use super::operator::WindowJoinOperator;
use super::oracle::*;
use super::plan::JoinPlan;
use super::*;

pub(super) fn operator(spec: &WindowJoinSpec, max_key_groups: u32) -> WindowJoinOperator {
    let plan = JoinPlan::new(spec, &left_schema(), &right_schema()).unwrap();
    WindowJoinOperator::new(plan, max_key_groups).unwrap()
}

fn left(start: i64, end: i64, auction: i64, num: i64) -> Left {
    Left {
        start,
        end,
        auction: Some(auction),
        num: Some(num),
    }
}

fn right(start: i64, end: i64, maxn: i64) -> Right {
    Right {
        start,
        end,
        auction: None,
        maxn: Some(maxn),
        tag: None,
    }
}

/// Fires `watermark`; returns the emitted pairs as `(auction, num, maxn, window end)`.
fn fire(op: &mut WindowJoinOperator, watermark: Millis) -> Vec<(i64, i64, i64, i64)> {
    let mut out = Output::default();
    op.on_watermark(watermark, &mut out).unwrap();
    let (main, late) = out.take();
    assert!(late.is_empty());
    main.iter()
        .flat_map(pairs)
        .map(|(l, r)| (l.auction.unwrap(), l.num.unwrap(), r.maxn.unwrap(), l.end))
        .collect()
}

#[test]
fn q5_keeps_the_auctions_with_the_most_bids_of_each_window() {
    let mut op = operator(&spec(false, true), 128);
    let mut out = Output::default();
    let auction_bids = [
        left(0, 10, 1, 3),
        left(0, 10, 2, 5),
        left(10, 20, 1, 2),
        left(0, 10, 3, 5),
    ];
    op.on_batch(0, left_batch(&auction_bids), &mut out).unwrap();
    // A window of another size that ends at 10 too: it must not meet [0, 10).
    op.on_batch(
        1,
        right_batch(&[right(0, 10, 5), right(5, 10, 1)]),
        &mut out,
    )
    .unwrap();
    op.on_batch(1, right_batch(&[right(10, 20, 2)]), &mut out)
        .unwrap();
    assert!(out.take().0.is_empty(), "nothing before the window closes");
    assert!(fire(&mut op, 9).is_empty());
    assert_eq!(fire(&mut op, 10), [(2, 5, 5, 10), (3, 5, 5, 10)]);
    assert_eq!(op.pending.iter().map(|p| p.len()).sum::<usize>(), 2);

    // The window [0, 10) is closed: its rows are late on either side.
    op.on_batch(
        0,
        left_batch(&[left(0, 10, 4, 9), left(10, 20, 4, 2)]),
        &mut out,
    )
    .unwrap();
    op.on_batch(1, right_batch(&[right(0, 10, 0)]), &mut out)
        .unwrap();
    let (main, late) = out.take();
    assert!(main.is_empty());
    let late: Vec<String> = late.iter().flat_map(late_lines).collect();
    assert_eq!(
        late,
        [
            format!("late {:?}", left(0, 10, 4, 9)),
            format!("late {:?}", right(0, 10, 0)),
        ]
    );
    assert_eq!(fire(&mut op, WATERMARK_END), [(1, 2, 2, 20), (4, 2, 2, 20)]);
    assert!(op.pending.iter().all(|p| p.is_empty()));
}

#[test]
fn null_keys_match_nothing_and_a_null_condition_drops_the_pair() {
    let mut op = operator(&spec(true, true), 128);
    let mut out = Output::default();
    let l = [
        Left {
            auction: None,
            ..left(0, 10, 0, 5)
        },
        Left {
            num: None,
            ..left(0, 10, 1, 0)
        },
        left(0, 10, 2, 5),
    ];
    let r = [
        Right {
            auction: None,
            ..right(0, 10, 1)
        },
        Right {
            auction: Some(1),
            ..right(0, 10, 1)
        },
        Right {
            auction: Some(2),
            ..right(0, 10, 1)
        },
    ];
    op.on_batch(0, left_batch(&l), &mut out).unwrap();
    op.on_batch(1, right_batch(&r), &mut out).unwrap();
    assert_eq!(fire(&mut op, 10), [(2, 5, 1, 10)]);
}

#[test]
fn output_is_cut_into_batches_in_window_end_order() {
    let mut op = operator(&spec(false, false), 128);
    op.batch_rows = 4;
    let mut out = Output::default();
    let l: Vec<Left> = (0..6)
        .map(|i| left(20 - 10 * (i % 2), 30 - 10 * (i % 2), i, 0))
        .collect();
    let r: Vec<Right> = (0..3)
        .flat_map(|i| [right(10, 20, i), right(20, 30, i)])
        .collect();
    op.on_batch(0, left_batch(&l), &mut out).unwrap();
    op.on_batch(1, right_batch(&r), &mut out).unwrap();
    op.on_watermark(30, &mut out).unwrap();
    let (main, _) = out.take();
    let sizes: Vec<usize> = main.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes, [4, 4, 4, 4, 2]);
    let ends: Vec<i64> = main.iter().flat_map(pairs).map(|(l, _)| l.end).collect();
    assert!(ends.is_sorted() && ends.first() == Some(&20) && ends.last() == Some(&30));
}

#[test]
fn a_null_window_end_is_a_bad_record() {
    let nullable = Arc::new(Schema::new(vec![
        Field::new("starttime", DataType::Int64, true),
        Field::new("endtime", DataType::Int64, true),
    ]));
    let spec = WindowJoinSpec::new(
        ["starttime", "endtime"],
        ["max_start", "max_end"],
        "endtime",
        "max_end",
    );
    let right = Arc::new(Schema::new(vec![
        Field::new("max_start", DataType::Int64, false),
        Field::new("max_end", DataType::Int64, false),
    ]));
    let mut op = spec.create(&nullable, &right).unwrap();
    let column = Arc::new(arrow::array::Int64Array::from(vec![Some(0), None]));
    let batch = RecordBatch::try_new(nullable, vec![column.clone(), column]).unwrap();
    let err = op.on_batch(0, batch, &mut Output::default()).unwrap_err();
    assert!(matches!(err, Error::Data(_)), "{err}");
}

#[test]
fn invalid_specs_are_plan_errors() {
    let ok = spec(true, true);
    let (l, r) = (left_schema(), right_schema());
    assert!(ok.create(&l, &r).is_ok());
    let keys = |left: &[&str], right: &[&str]| WindowJoinSpec {
        left_keys: left.iter().map(|k| k.to_string()).collect(),
        right_keys: right.iter().map(|k| k.to_string()).collect(),
        ..ok.clone()
    };
    let bad = [
        ("no keys", keys(&[], &[])),
        (
            "unpaired keys",
            keys(&["starttime", "endtime"], &["max_end"]),
        ),
        (
            "unknown key",
            keys(&["endtime", "nope"], &["max_end", "maxn"]),
        ),
        (
            "types differ",
            keys(&["endtime", "auction"], &["max_end", "tag"]),
        ),
        ("ends not keys", keys(&["starttime"], &["max_start"])),
        (
            "ends crossed",
            keys(&["starttime", "endtime"], &["max_end", "max_start"]),
        ),
        (
            "unknown end",
            WindowJoinSpec {
                right_end: "nope".into(),
                ..ok.clone()
            },
        ),
        (
            "condition not boolean",
            ok.clone().with_residual(col("num") + lit(1)),
        ),
        (
            "condition unknown column",
            ok.clone().with_residual(col("nope").gt(lit(1))),
        ),
    ];
    for (what, spec) in bad {
        let err = spec.create(&l, &r).err();
        assert!(matches!(err, Some(Error::Plan(_))), "{what}: {err:?}");
    }
    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }
    fn bounds<'a>(s: &'a str, e: &'a str, t: DataType) -> Vec<(&'a str, DataType)> {
        vec![(s, t.clone()), (e, t)]
    }
    let on_bounds = WindowJoinSpec::new(["s", "e"], ["s2", "e2"], "e", "e2");
    let plan_error = |left: Schema, right: Schema| {
        on_bounds
            .output_schema(&left, &right)
            .unwrap_err()
            .to_string()
    };

    let ts = DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None);
    let mut clash = bounds("s2", "e2", ts.clone());
    clash.push(("x", DataType::Int64));
    let mut left = bounds("s", "e", ts);
    left.push(("x", DataType::Int64));
    let err = plan_error(schema(&left), schema(&clash));
    assert!(err.contains("`x` is on both sides"), "{err}");
    let err = plan_error(
        schema(&bounds("s", "e", DataType::Utf8)),
        schema(&bounds("s2", "e2", DataType::Utf8)),
    );
    assert!(err.contains("must be a timestamp"), "{err}");
    let mut floats = bounds("s", "e", DataType::Int64);
    floats[0].1 = DataType::Float64;
    let mut right_floats = bounds("s2", "e2", DataType::Int64);
    right_floats[0].1 = DataType::Float64;
    let err = plan_error(schema(&floats), schema(&right_floats));
    assert!(err.contains("cannot be hashed"), "{err}");
}

/// One random run: rows of both sides spread over watermark steps, some late, fed in
/// pieces of random sizes with the sides interleaved.
pub(super) struct Run {
    pub by_auction: bool,
    pub residual: bool,
    /// Per step: the rows that arrive, then the watermark.
    pub steps: Vec<(Vec<Left>, Vec<Right>, Millis)>,
    pub on_time: (Vec<Left>, Vec<Right>),
    pub late: Vec<String>,
}

pub(super) fn random_run(rng: &mut StdRng) -> Run {
    let ends: Vec<i64> = (1..=rng.random_range(1..7)).map(|j| j * 500).collect();
    let mut watermarks: Vec<Millis> = (0..rng.random_range(1..6))
        .map(|_| match rng.random_bool(0.5) {
            true => ends[rng.random_range(0..ends.len())],
            false => rng.random_range(0..3500),
        })
        .collect();
    watermarks.sort();
    watermarks.push(WATERMARK_END);
    let mut steps: Vec<(Vec<Left>, Vec<Right>, Millis)> = watermarks
        .iter()
        .map(|&w| (Vec::new(), Vec::new(), w))
        .collect();
    let (mut on_time, mut late) = ((Vec::new(), Vec::new()), Vec::new());
    // A row arriving at step s is late if a watermark before s passed its window end.
    let is_late = |step: usize, end: i64| step > 0 && watermarks[step - 1] >= end;
    for _ in 0..rng.random_range(0..50) {
        let row = random_left(rng, &ends);
        let step = rng.random_range(0..steps.len());
        if is_late(step, row.end) {
            late.push(format!("late {row:?}"));
        } else {
            on_time.0.push(row.clone());
        }
        steps[step].0.push(row);
    }
    for _ in 0..rng.random_range(0..25) {
        let row = random_right(rng, &ends);
        let step = rng.random_range(0..steps.len());
        if is_late(step, row.end) {
            late.push(format!("late {row:?}"));
        } else {
            on_time.1.push(row.clone());
        }
        steps[step].1.push(row);
    }
    late.sort();
    Run {
        by_auction: rng.random_bool(0.5),
        residual: rng.random_bool(0.5),
        steps,
        on_time,
        late,
    }
}

/// Feeds one step's rows to `op` in random pieces, the two sides interleaved.
pub(super) fn feed(
    op: &mut dyn Operator,
    rng: &mut StdRng,
    left: &[Left],
    right: &[Right],
    out: &mut Output,
) {
    let mut pieces: Vec<(usize, RecordBatch)> = Vec::new();
    for chunk in left.chunks(rng.random_range(1..6)) {
        pieces.push((0, left_batch(chunk)));
    }
    for chunk in right.chunks(rng.random_range(1..6)) {
        pieces.push((1, right_batch(chunk)));
    }
    while !pieces.is_empty() {
        // Either side may be next, but each side's pieces stay in order.
        let side = rng.random_range(0..2);
        let index = pieces.iter().position(|p| p.0 == side).unwrap_or(0);
        let (input, batch) = pieces.remove(index);
        op.on_batch(input, batch, out).unwrap();
    }
}

#[test]
fn random_streams_match_the_nested_loop_oracle() {
    let mut rng = StdRng::seed_from_u64(29);
    let (mut matched, mut late_rows) = (0, 0);
    for case in 0..400 {
        let run = random_run(&mut rng);
        let spec = spec(run.by_auction, run.residual);
        let mut op = operator(&spec, 128);
        op.batch_rows = rng.random_range(1..8);
        let (mut actual, mut late) = (Vec::new(), Vec::new());
        for (l, r, w) in &run.steps {
            let mut out = Output::default();
            feed(&mut op, &mut rng, l, r, &mut out);
            op.on_watermark(*w, &mut out).unwrap();
            if rng.random_bool(0.3) {
                let state = op.snapshot(1).unwrap();
                let batch_rows = op.batch_rows;
                op = operator(&spec, 128);
                op.batch_rows = batch_rows;
                op.restore(state).unwrap();
                assert_eq!(op.watermark, Some(*w), "case {case}: watermark restored");
            }
            assert!(
                op.pending.iter().all(|p| p.keys().all(|&end| end > *w)),
                "case {case}: closed windows must be dropped"
            );
            let (main, l) = out.take();
            assert!(main.iter().all(|b| b.num_rows() <= op.batch_rows));
            actual.extend(main.iter().flat_map(pairs));
            late.extend(l.iter().flat_map(late_lines));
        }
        let ends: Vec<i64> = actual.iter().map(|(l, _)| l.end).collect();
        assert!(ends.is_sorted(), "case {case}: windows out of order");
        let expected = nested_loops(run.by_auction, run.residual, &run.on_time.0, &run.on_time.1);
        matched += expected.len();
        late_rows += late.len();
        assert_eq!(sorted(actual), sorted(expected), "case {case}");
        late.sort();
        assert_eq!(late, run.late, "case {case}: late rows");
    }
    assert!(
        matched > 1000 && late_rows > 100,
        "{matched} pairs, {late_rows} late"
    );
}
