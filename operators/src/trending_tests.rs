//! Trending against a naive oracle: a HashMap over (key, window end).

use std::collections::HashMap;

use arrow::array::{StringArray, TimestampMillisecondArray, UInt32Array};
use arrow::datatypes::{Float64Type, TimeUnit, TimestampMillisecondType, UInt32Type};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel_runtime::WATERMARK_END;

use super::*;
use crate::state::through_ipc;

/// `(key, window_end, value)`.
type Row = (Option<String>, i64, Option<u32>);

fn schema(nullable_value: bool) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, true),
        Field::new(
            "window_end",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("bids", DataType::UInt32, nullable_value),
    ]))
}

fn to_batch(rows: &[Row], nullable_value: bool) -> RecordBatch {
    let keys: StringArray = rows.iter().map(|r| r.0.clone()).collect();
    let ends = TimestampMillisecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>());
    let values: UInt32Array = rows.iter().map(|r| r.2).collect();
    RecordBatch::try_new(
        schema(nullable_value),
        vec![Arc::new(keys), Arc::new(ends), Arc::new(values)],
    )
    .unwrap()
}

/// `(row, previous, trend)` per output row.
fn from_batch(batch: &RecordBatch) -> Vec<(Row, i64, Option<f64>)> {
    let keys = batch.column(0).as_string::<i32>();
    let ends = batch.column(1).as_primitive::<TimestampMillisecondType>();
    let values = batch.column(2).as_primitive::<UInt32Type>();
    let previous = batch.column(3).as_primitive::<Int64Type>();
    let trend = batch.column(4).as_primitive::<Float64Type>();
    (0..batch.num_rows())
        .map(|i| {
            let key = keys.is_valid(i).then(|| keys.value(i).to_string());
            let value = values.is_valid(i).then(|| values.value(i));
            let score = trend.is_valid(i).then(|| trend.value(i));
            ((key, ends.value(i), value), previous.value(i), score)
        })
        .collect()
}

fn sorted(mut rows: Vec<(Row, i64, Option<f64>)>) -> Vec<String> {
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    rows.iter().map(|r| format!("{r:?}")).collect()
}

fn oracle(rows: &[Row], period: i64) -> Vec<(Row, i64, Option<f64>)> {
    let mut totals: HashMap<(Option<String>, i64), i64> = HashMap::new();
    for (key, end, value) in rows {
        if let Some(v) = value {
            *totals.entry((key.clone(), *end)).or_default() += i64::from(*v);
        }
    }
    rows.iter()
        .map(|row| {
            let previous = totals
                .get(&(row.0.clone(), row.1 - period))
                .copied()
                .unwrap_or(0);
            let trend = row
                .2
                .map(|v| (f64::from(v) - previous as f64) / (previous as f64 + 1.0));
            (row.clone(), previous, trend)
        })
        .collect()
}

#[test]
fn random_streams_match_oracle() {
    let mut rng = StdRng::seed_from_u64(17);
    for case in 0..400 {
        let nullable = rng.random_bool(0.5);
        let slide = 500;
        let period = slide * rng.random_range(1..3);
        let spec = TrendingSpec::new(
            ["key"],
            "window_end",
            "bids",
            Duration::from_millis(period as u64),
        );
        let ends: Vec<i64> = (1..=rng.random_range(1..8)).map(|j| j * slide).collect();
        let mut watermarks: Vec<Millis> = (0..rng.random_range(1..8))
            .map(|_| match rng.random_bool(0.5) {
                true => ends[rng.random_range(0..ends.len())],
                false => rng.random_range(0..4500),
            })
            .collect();
        watermarks.sort();
        watermarks.push(WATERMARK_END);
        let mut steps: Vec<Vec<Row>> = vec![Vec::new(); watermarks.len()];
        let (mut on_time, mut late) = (Vec::new(), Vec::new());
        for _ in 0..rng.random_range(0..80) {
            let key = (rng.random_range(0..8) > 0).then(|| format!("k{}", rng.random_range(0..5)));
            let value = (!nullable || rng.random_range(0..5) > 0).then(|| rng.random_range(0..20));
            let row = (key, ends[rng.random_range(0..ends.len())], value);
            let closing = watermarks.iter().position(|&w| w >= row.1).unwrap();
            let step = rng.random_range(0..watermarks.len());
            if step <= closing {
                on_time.push(row.clone())
            } else {
                late.push(row.clone())
            }
            steps[step].push(row);
        }
        let mut op = TrendingOperator::new(&spec, &schema(nullable), 128).unwrap();
        let (mut actual, mut late_out) = (Vec::new(), Vec::new());
        for (rows, &w) in steps.iter().zip(&watermarks) {
            let mut out = Output::default();
            for chunk in rows.chunks(rng.random_range(1..5)) {
                op.on_batch(0, to_batch(chunk, nullable), &mut out).unwrap();
            }
            op.on_watermark(w, &mut out).unwrap();
            if rng.random_bool(0.3) {
                let state = op.snapshot(1).unwrap();
                op = TrendingOperator::new(&spec, &schema(nullable), 128).unwrap();
                op.restore(state).unwrap();
                assert_eq!(op.watermark, Some(w), "case {case}: watermark restored");
            }
            assert!(
                op.windows.keys().all(|&e| e > w.saturating_sub(period)),
                "case {case}: not evicted"
            );
            let (main, l) = out.take();
            actual.extend(main.iter().flat_map(from_batch));
            late_out.extend(l.iter().flat_map(|b| {
                let ends = b.column(1).as_primitive::<TimestampMillisecondType>();
                ends.values().to_vec()
            }));
        }
        let ends_out: Vec<i64> = actual.iter().map(|r| r.0.1).collect();
        assert!(ends_out.is_sorted(), "case {case}: windows out of order");
        assert_eq!(
            sorted(actual),
            sorted(oracle(&on_time, period)),
            "case {case}"
        );
        let mut expected_late: Vec<i64> = late.iter().map(|r| r.1).collect();
        expected_late.sort();
        late_out.sort();
        assert_eq!(late_out, expected_late, "case {case}");
    }
}

#[test]
fn score_is_smoothed_relative_growth() {
    let spec = TrendingSpec::new(["key"], "window_end", "bids", Duration::from_millis(10));
    let mut op = spec.create(&schema(false)).unwrap();
    let mut out = Output::default();
    let first = [
        (Some("new".into()), 10, Some(0)),
        (Some("big".into()), 10, Some(100)),
    ];
    op.on_batch(0, to_batch(&first, false), &mut out).unwrap();
    op.on_watermark(10, &mut out).unwrap();
    let second = [
        (Some("new".into()), 20, Some(10)),
        (Some("big".into()), 20, Some(110)),
    ];
    op.on_batch(0, to_batch(&second, false), &mut out).unwrap();
    op.on_watermark(20, &mut out).unwrap();
    let trend: Vec<f64> = out.take().0[1]
        .column(4)
        .as_primitive::<Float64Type>()
        .values()
        .to_vec();
    assert_eq!(trend, vec![10.0, 10.0 / 101.0]);
}

#[test]
fn invalid_specs_are_plan_errors() {
    let ok = TrendingSpec::new(["key"], "window_end", "bids", Duration::from_secs(1));
    let bad = [
        TrendingSpec {
            period: Duration::ZERO,
            ..ok.clone()
        },
        TrendingSpec {
            key_columns: vec![],
            ..ok.clone()
        },
        TrendingSpec {
            key_columns: vec!["nope".into()],
            ..ok.clone()
        },
        TrendingSpec {
            value_column: "key".into(),
            ..ok.clone()
        },
        TrendingSpec {
            window_end_column: "key".into(),
            ..ok.clone()
        },
        TrendingSpec {
            score_column: "bids".into(),
            ..ok.clone()
        },
        TrendingSpec {
            previous_column: "trend".into(),
            ..ok.clone()
        },
    ];
    for spec in bad {
        assert!(
            matches!(spec.create(&schema(true)).err(), Some(Error::Plan(_))),
            "{spec:?}"
        );
    }
    let float = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, true),
        Field::new("window_end", DataType::Int64, false),
        Field::new("bids", DataType::Float64, false),
    ]));
    assert!(matches!(ok.create(&float).err(), Some(Error::Plan(_))));
}

/// Rows routed by key group to `p1` subtasks, snapshotted midway (through an IPC file per
/// subtask), restored into `p2` subtasks by key group: the union of the outputs and of the
/// late rows is what one uninterrupted subtask emits.
#[test]
fn rescaled_trending_continues_exactly() {
    use arrow::compute::filter_record_batch;
    use runnel_runtime::keys::{hash_rows, key_group, subtask_for_key_group};

    let max_key_groups = 16;
    let run = |ops: &mut [TrendingOperator], steps: &[(Vec<Row>, Millis)], out: &mut Vec<_>| {
        let p = ops.len();
        let mut output = Output::default();
        for (rows, w) in steps {
            let batch = to_batch(rows, true);
            let mut hashes = Vec::new();
            hash_rows(&[batch.column(0).clone()], &mut hashes).unwrap();
            let owner =
                |h: &u64| subtask_for_key_group(key_group(*h, max_key_groups), max_key_groups, p);
            for (s, op) in ops.iter_mut().enumerate() {
                let mask = hashes.iter().map(|h| Some(owner(h) == s)).collect();
                let part = filter_record_batch(&batch, &mask).unwrap();
                op.on_batch(0, part, &mut output).unwrap();
            }
            for op in ops.iter_mut() {
                op.on_watermark(*w, &mut output).unwrap();
            }
            let (main, late) = output.take();
            out.extend(main.iter().flat_map(from_batch).map(|r| format!("{r:?}")));
            out.extend(
                late.iter()
                    .flat_map(from_late)
                    .map(|r| format!("late {r:?}")),
            );
        }
    };
    let mut rng = StdRng::seed_from_u64(23);
    for case in 0..60 {
        let spec = TrendingSpec::new(["key"], "window_end", "bids", Duration::from_millis(500));
        let create = || TrendingOperator::new(&spec, &schema(true), max_key_groups).unwrap();
        let mut steps = Vec::new();
        let mut w = 0;
        for _ in 0..rng.random_range(1..10) {
            let rows: Vec<Row> = (0..rng.random_range(0..20))
                .map(|_| {
                    let key = (rng.random_range(0..6) > 0)
                        .then(|| format!("k{}", rng.random_range(0..9)));
                    let end = 500 * rng.random_range(1..10);
                    (
                        key,
                        end,
                        (rng.random_range(0..5) > 0).then(|| rng.random_range(0..20)),
                    )
                })
                .collect();
            w += 500 * rng.random_range(0..3);
            steps.push((rows, w));
        }
        steps.push((Vec::new(), WATERMARK_END));
        let mut expected = Vec::new();
        run(&mut [create()], &steps, &mut expected);
        let (p1, p2) = (rng.random_range(1..=3), rng.random_range(1..=3));
        let cut = rng.random_range(0..steps.len());
        let mut actual = Vec::new();
        let mut old: Vec<_> = (0..p1).map(|_| create()).collect();
        run(&mut old, &steps[..cut], &mut actual);
        let state: Vec<RecordBatch> = old
            .iter_mut()
            .flat_map(|op| through_ipc(op.snapshot(1).unwrap()))
            .collect();
        let mut new: Vec<_> = (0..p2)
            .map(|s| {
                let mut op = create();
                let mine = crate::state::state_for_subtask(&state, s, max_key_groups, p2).unwrap();
                op.restore(mine).unwrap();
                op
            })
            .collect();
        run(&mut new, &steps[cut..], &mut actual);
        expected.sort();
        actual.sort();
        assert_eq!(actual, expected, "case {case}: {p1} -> {p2} at step {cut}");
    }
}

fn from_late(batch: &RecordBatch) -> Vec<(Option<String>, i64)> {
    let keys = batch.column(0).as_string::<i32>();
    let ends = batch.column(1).as_primitive::<TimestampMillisecondType>();
    (0..batch.num_rows())
        .map(|i| {
            (
                keys.is_valid(i).then(|| keys.value(i).to_string()),
                ends.value(i),
            )
        })
        .collect()
}
