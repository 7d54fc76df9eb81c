//! Checkpoints of the window join: snapshot midway, restore at another parallelism, and
//! refusal of state the join did not write.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel_runtime::keys::subtask_for_key_group;
use runnel_runtime::{Error, Millis, Operator, Output};

use super::WindowJoinSpec;
use super::operator::WindowJoinOperator;
use super::oracle::*;
use super::tests::{operator, random_run};
use crate::state::through_ipc;
use crate::state::{empty_state, key_group_field, key_groups, state_for_subtask, state_schema};

/// The rows of `batch` that subtask `s` of `p` receives when a hash edge routes by `keys`.
fn route(
    batch: &RecordBatch,
    keys: &[usize],
    max_key_groups: u32,
    p: usize,
    s: usize,
) -> RecordBatch {
    let columns: Vec<ArrayRef> = keys.iter().map(|&k| batch.column(k).clone()).collect();
    let groups = key_groups(&columns, batch.num_rows(), max_key_groups).unwrap();
    let mask = groups
        .values()
        .iter()
        .map(|&g| Some(subtask_for_key_group(g, max_key_groups, p) == s))
        .collect();
    filter_record_batch(batch, &mask).unwrap()
}

/// Runs `steps` through parallel subtasks, routing each side by its join keys; returns
/// the joined pairs and late rows as text.
fn run(
    ops: &mut [WindowJoinOperator],
    steps: &[(Vec<Left>, Vec<Right>, Millis)],
    keys: &[usize],
    max_key_groups: u32,
) -> Vec<String> {
    let p = ops.len();
    let mut lines = Vec::new();
    for (left, right, w) in steps {
        let mut out = Output::default();
        let (left, right) = (left_batch(left), right_batch(right));
        for (s, op) in ops.iter_mut().enumerate() {
            op.on_batch(0, route(&left, keys, max_key_groups, p, s), &mut out)
                .unwrap();
            op.on_batch(1, route(&right, keys, max_key_groups, p, s), &mut out)
                .unwrap();
        }
        for op in ops.iter_mut() {
            op.on_watermark(*w, &mut out).unwrap();
        }
        let (main, late) = out.take();
        lines.extend(main.iter().flat_map(pairs).map(|pair| format!("{pair:?}")));
        lines.extend(late.iter().flat_map(late_lines));
    }
    lines.sort();
    lines
}

/// Snapshots of `p1` subtasks taken midway (through an Arrow IPC file each, as
/// checkpoints store them) and restored into 1 and into 2 subtasks by key group: the
/// union of everything emitted, pairs and late rows, is what one uninterrupted subtask
/// emits.
#[test]
fn restored_joins_continue_exactly_at_any_parallelism() {
    let max_key_groups = 16;
    let mut rng = StdRng::seed_from_u64(31);
    let mut restored_rows = 0;
    for case in 0..80 {
        let run_spec = random_run(&mut rng);
        let spec = spec(run_spec.by_auction, run_spec.residual);
        let keys: &[usize] = if run_spec.by_auction {
            &[0, 1, 2]
        } else {
            &[0, 1]
        };
        let create = || operator(&spec, max_key_groups);
        let steps = &run_spec.steps;
        let expected = run(&mut [create()], steps, keys, max_key_groups);
        for p2 in [1, 2] {
            let p1 = rng.random_range(1..=3);
            let cut = rng.random_range(0..steps.len());
            let mut old: Vec<_> = (0..p1).map(|_| create()).collect();
            let mut actual = run(&mut old, &steps[..cut], keys, max_key_groups);
            let state: Vec<RecordBatch> = old
                .iter_mut()
                .flat_map(|op| through_ipc(op.snapshot(1).unwrap()))
                .collect();
            restored_rows += state.iter().map(RecordBatch::num_rows).sum::<usize>();
            let mut new: Vec<_> = (0..p2)
                .map(|s| {
                    let mut op = create();
                    let mine = state_for_subtask(&state, s, max_key_groups, p2).unwrap();
                    op.restore(mine).unwrap();
                    op
                })
                .collect();
            actual.extend(run(&mut new, &steps[cut..], keys, max_key_groups));
            actual.sort();
            assert_eq!(actual, expected, "case {case}: {p1} -> {p2} at step {cut}");
        }
    }
    assert!(
        restored_rows > 500,
        "only {restored_rows} rows went through checkpoints"
    );
}

#[test]
fn state_of_another_kind_or_shape_is_refused() {
    let spec = spec(false, true);
    let mut op = operator(&spec, 128);
    let mut out = Output::default();
    let row = Left {
        start: 0,
        end: 10,
        auction: Some(1),
        num: Some(2),
    };
    op.on_batch(0, left_batch(std::slice::from_ref(&row)), &mut out)
        .unwrap();
    let state = op.snapshot(1).unwrap();

    let trending = state_schema("runnel.trending/1 period=10", vec![key_group_field()], 0);
    let err = operator(&spec, 128).restore(vec![empty_state(&trending)]);
    assert!(matches!(err, Err(Error::Plan(_))), "{err:?}");

    // The same join over a right input without `tag`: its columns no longer fit.
    let narrower = Arc::new(Schema::new(
        right_schema().fields()[..4]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect::<Vec<Field>>(),
    ));
    let mut other = spec.create(&left_schema(), &narrower).unwrap();
    assert!(matches!(other.restore(state.clone()), Err(Error::Plan(_))));

    // Columns moved from one side to the other change the kind even where types line up.
    let times = |names: &[&str]| {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let fields: Vec<Field> = names
            .iter()
            .map(|n| Field::new(*n, ts.clone(), false))
            .collect();
        Arc::new(Schema::new(fields))
    };
    let split = |left: &[&str], right: &[&str]| {
        let spec = WindowJoinSpec::new(["s", "e"], ["s2", "e2"], "e", "e2");
        spec.create(&times(left), &times(right)).unwrap()
    };
    let state_2_3 = split(&["s", "e"], &["s2", "e2", "t"]).snapshot(1).unwrap();
    let err = split(&["s", "e", "t"], &["s2", "e2"]).restore(state_2_3);
    assert!(matches!(err, Err(Error::Plan(_))), "{err:?}");

    let err = op.restore(state.clone());
    assert!(
        matches!(err, Err(Error::Internal(_))),
        "restore into a running operator"
    );
    let mut restored = operator(&spec, 128);
    restored.restore(state).unwrap();
    assert_eq!(restored.pending[0].values().flatten().count(), 1);
}
