//! Two-phase top-K against a naive oracle: random rows with many ties, split at random
//! over partial subtasks, interleaved with watermarks, some of them late.

use std::cmp::Ordering;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use runnel_runtime::WATERMARK_END;

use super::oracle::{Row, cmp_nullable, from_batch, oracle, random_row, schema, to_batch};
use super::*;

fn random_spec(rng: &mut StdRng) -> TopKSpec {
    let partition_by = match rng.random_range(0..3) {
        0 => vec!["window_start", "window_end"],
        1 => vec!["window_end", "cat"],
        _ => vec![],
    };
    let mut sortable = ["count", "price", "item", "cat"];
    sortable.shuffle(rng);
    let order_by = sortable[..rng.random_range(0..3)]
        .iter()
        .map(|c| SortKey {
            column: c.to_string(),
            descending: rng.random_bool(0.5),
        })
        .collect();
    TopKSpec {
        k: rng.random_range(1..5),
        time_column: "window_end".into(),
        partition_by: partition_by.into_iter().map(String::from).collect(),
        order_by,
        rank_column: Some("rn".into()),
    }
}

/// One subtask's input: (batches before watermark j) for each step j.
type Steps = Vec<Vec<RecordBatch>>;

/// Runs `op` over `steps` with `watermarks`; returns main output per step and late rows.
fn drive(op: &mut dyn Operator, steps: Steps, watermarks: &[Millis]) -> (Steps, Vec<RecordBatch>) {
    let mut per_step = Vec::new();
    let mut late = Vec::new();
    for (batches, &w) in steps.into_iter().zip(watermarks) {
        let mut out = Output::default();
        for b in batches {
            op.on_batch(0, b, &mut out).unwrap();
        }
        op.on_watermark(w, &mut out).unwrap();
        let (main, l) = out.take();
        per_step.push(main);
        late.extend(l);
    }
    (per_step, late)
}

fn multiset(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by(|a, b| {
        (0..6).fold(Ordering::Equal, |o, c| {
            o.then_with(|| cmp_nullable(&a[c], &b[c], false, true))
        })
    });
    rows
}

#[test]
fn partial_then_global_equals_single_top_k() {
    let mut rng = StdRng::seed_from_u64(42);
    for case in 0..400 {
        let spec = random_spec(&mut rng);
        let ends: Vec<i64> = (1..=rng.random_range(1..6)).map(|j| j * 1000).collect();
        let mut watermarks: Vec<Millis> = (0..rng.random_range(1..8))
            .map(|_| match rng.random_bool(0.5) {
                true => ends[rng.random_range(0..ends.len())],
                false => rng.random_range(0..7000),
            })
            .collect();
        watermarks.sort();
        watermarks.push(WATERMARK_END);
        let subtasks = rng.random_range(1..5);
        let mut inputs: Vec<Steps> = vec![vec![Vec::new(); watermarks.len()]; subtasks];
        let (mut on_time, mut late) = (Vec::new(), Vec::new());
        for _ in 0..rng.random_range(0..120) {
            let end = ends[rng.random_range(0..ends.len())];
            let row = random_row(&mut rng, end);
            // The first step whose watermark closes the row's window: before it, on time.
            let closing = watermarks.iter().position(|&w| w >= end).unwrap();
            let step = rng.random_range(0..watermarks.len());
            if step <= closing {
                on_time.push(row.clone())
            } else {
                late.push(row.clone())
            }
            let subtask = rng.random_range(0..subtasks);
            inputs[subtask][step].push(to_batch(&[row]));
        }
        // Coalesce some single-row batches into mixed-time batches.
        for steps in inputs.iter_mut() {
            for batches in steps.iter_mut() {
                if rng.random_bool(0.5) && !batches.is_empty() {
                    *batches = vec![concat_batches(&schema(), batches.iter()).unwrap()];
                }
            }
        }
        let threshold = rng.random_range(1..3 * spec.k + 3);
        let partial_spec = TopKSpec {
            rank_column: None,
            ..spec.clone()
        };
        let mut global_steps: Steps = vec![Vec::new(); watermarks.len()];
        let mut late_out = Vec::new();
        for steps in inputs {
            let mut partial = TopKOperator::new(&partial_spec, &schema(), threshold).unwrap();
            let (outputs, l) = drive(&mut partial, steps, &watermarks);
            late_out.extend(l);
            for (j, batches) in outputs.into_iter().enumerate() {
                global_steps[j].extend(batches);
            }
        }
        let mut global = TopKOperator::new(&spec, &schema(), threshold).unwrap();
        let (outputs, global_late) = drive(&mut global, global_steps, &watermarks);
        assert!(global_late.is_empty(), "case {case}");
        let actual: Vec<(Row, Option<u64>)> =
            outputs.iter().flatten().flat_map(from_batch).collect();
        let expected = oracle(&spec, &on_time);
        assert!(
            actual.len() == expected.len()
                && actual
                    .iter()
                    .zip(&expected)
                    .all(|(a, e)| format!("{a:?}") == format!("{e:?}")),
            "case {case} {spec:?}\nactual   {actual:?}\nexpected {expected:?}"
        );
        let late_rows: Vec<Row> = late_out
            .iter()
            .flat_map(from_batch)
            .map(|(r, _)| r)
            .collect();
        assert_eq!(
            format!("{:?}", multiset(late_rows)),
            format!("{:?}", multiset(late)),
            "case {case}"
        );
    }
}

#[test]
fn pruning_keeps_memory_bounded_and_snapshot_restores() {
    let spec = TopKSpec {
        k: 2,
        time_column: "window_end".into(),
        partition_by: vec![],
        order_by: vec![SortKey::desc("count")],
        rank_column: Some("rn".into()),
    };
    let mut rng = StdRng::seed_from_u64(5);
    let rows: Vec<Row> = (0..500).map(|_| random_row(&mut rng, 1000)).collect();
    let mut op = TopKOperator::new(&spec, &schema(), 8).unwrap();
    let mut out = Output::default();
    for chunk in rows.chunks(7) {
        op.on_batch(0, to_batch(chunk), &mut out).unwrap();
        assert!(
            op.groups.values().all(|g| g.rows <= 16 + 7),
            "buffer not pruned"
        );
    }
    let state = op.snapshot(1).unwrap();
    let mut restored = TopKOperator::new(&spec, &schema(), 8).unwrap();
    restored.restore(state).unwrap();
    restored.on_watermark(1000, &mut out).unwrap();
    let actual: Vec<_> = out.take().0.iter().flat_map(from_batch).collect();
    assert_eq!(format!("{actual:?}"), format!("{:?}", oracle(&spec, &rows)));
}

#[test]
fn invalid_specs_are_plan_errors() {
    let base = TopKSpec {
        k: 1,
        time_column: "window_end".into(),
        partition_by: vec![],
        order_by: vec![SortKey::asc("count")],
        rank_column: None,
    };
    let bad = [
        TopKSpec {
            k: 0,
            ..base.clone()
        },
        TopKSpec {
            time_column: "cat".into(),
            ..base.clone()
        },
        TopKSpec {
            partition_by: vec!["nope".into()],
            ..base.clone()
        },
        TopKSpec {
            order_by: vec![SortKey::desc("nope")],
            ..base.clone()
        },
        TopKSpec {
            rank_column: Some("count".into()),
            ..base.clone()
        },
    ];
    for spec in bad {
        assert!(
            matches!(spec.create(&schema()).err(), Some(Error::Plan(_))),
            "{spec:?}"
        );
    }
}
