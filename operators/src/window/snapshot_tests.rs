//! Checkpoints of the window operators: a run that is snapshotted and restored midway,
//! possibly at another parallelism, emits exactly what the uninterrupted run emits.
//!
//! Each case is a seeded random stream (several out-of-order partitions, watermarks from
//! a bounded-out-of-orderness delay that is sometimes too small, a few rows far behind,
//! so that late rows occur) over every aggregate function, with string, integer and null
//! keys. The reference is one operator that never stops; output rows and late rows are
//! compared as multisets, values bit for bit. Rescaled runs route rows by key group like
//! the runtime's hash edge, broadcast watermarks, write each old subtask's snapshot to an
//! Arrow IPC file and read it back, and hand each new subtask the rows of the key groups
//! it owns, exactly as the runtime will.

use std::io::Cursor;
use std::time::Duration;

use arrow::array::{AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, UInt32Type};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel_runtime::keys::{hash_rows, key_group, key_groups_of_subtask, subtask_for_key_group};
use runnel_runtime::{Error, Operator, Output, WATERMARK_END};

use super::oracle::{Event, Row, all_aggregates, input_schema, rows, to_batch};
use super::{WindowAggregateSpec, WindowKind};
use crate::state::{KEY_GROUP_COLUMN, WATERMARK_KEY};

enum Step {
    Rows(Vec<Event>),
    Watermark(i64),
}

struct Case {
    spec: WindowAggregateSpec,
    schema: SchemaRef,
    steps: Vec<Step>,
    max_key_groups: u32,
}

const KEY_SETS: [&[&str]; 5] = [&["k1", "k2"], &["k2", "k1"], &["k2"], &["k1"], &[]];

fn event(rng: &mut StdRng, ts: i64) -> Event {
    let k2 = ["", "a", "bb", "ccc", "ünï"];
    let some = |rng: &mut StdRng, p_null: f64| !rng.random_bool(p_null);
    Event {
        ts,
        k1: some(rng, 0.1).then(|| rng.random_range(0..6)),
        k2: some(rng, 0.1).then(|| k2[rng.random_range(0..k2.len())].to_string()),
        vi: some(rng, 0.2).then(|| rng.random_range(-50..50)),
        vf: some(rng, 0.2).then(|| rng.random_range(-200..200) as f32 * 0.37),
        vt: some(rng, 0.2).then(|| rng.random_range(-1000..1000)),
    }
}

fn case(seed: u64, kind: WindowKind) -> Case {
    let mut rng = StdRng::seed_from_u64(seed);
    let time_type = [
        DataType::Timestamp(TimeUnit::Millisecond, None),
        DataType::Int64,
        DataType::Timestamp(TimeUnit::Microsecond, None),
    ][rng.random_range(0..3)]
    .clone();
    let keys = KEY_SETS[seed as usize % KEY_SETS.len()];
    let spec = WindowAggregateSpec {
        kind,
        time_column: "ts".into(),
        key_columns: keys.iter().map(|k| k.to_string()).collect(),
        aggregates: all_aggregates(),
    };
    let partitions = rng.random_range(1..=3);
    let disorder = rng.random_range(0..25i64);
    let delay = rng.random_range(0..=disorder);
    let mut clocks = vec![rng.random_range(-300..300i64); partitions];
    let mut max_seen = vec![None::<i64>; partitions];
    let mut steps = Vec::new();
    for _ in 0..rng.random_range(10..40) {
        let p = rng.random_range(0..partitions);
        let mut events = Vec::new();
        for _ in 0..rng.random_range(0..=15) {
            clocks[p] += rng.random_range(0..4);
            let mut ts = clocks[p] - rng.random_range(0..=disorder);
            if rng.random_bool(0.03) {
                ts -= rng.random_range(0..100);
            }
            max_seen[p] = Some(max_seen[p].map_or(ts, |m| m.max(ts)));
            events.push(event(&mut rng, ts));
        }
        steps.push(Step::Rows(events));
        let low = max_seen.iter().copied().collect::<Option<Vec<_>>>();
        if let Some(low) = low.filter(|_| rng.random_bool(0.6)) {
            steps.push(Step::Watermark(low.into_iter().min().unwrap() - delay));
        }
    }
    steps.push(Step::Watermark(WATERMARK_END));
    Case {
        spec,
        schema: input_schema(&time_type),
        steps,
        max_key_groups: [1, 3, 7, 128][rng.random_range(0..4)],
    }
}

/// Output and late rows, as multisets.
#[derive(Default, Debug, PartialEq)]
struct Emitted {
    out: Vec<Row>,
    late: Vec<Row>,
}

impl Emitted {
    fn take(&mut self, output: &mut Output) {
        let (main, late) = output.take();
        self.out.extend(main.iter().flat_map(rows));
        self.late.extend(late.iter().flat_map(rows));
    }

    fn sorted(mut self) -> Self {
        self.out.sort();
        self.late.sort();
        self
    }
}

/// Splits `batch` among `parallelism` subtasks by key group, like the hash edge does.
fn route(case: &Case, batch: &RecordBatch, parallelism: usize) -> Vec<RecordBatch> {
    let keys: Vec<_> = case
        .spec
        .key_columns
        .iter()
        .map(|k| batch.column_by_name(k).unwrap().clone())
        .collect();
    let mut hashes = Vec::new();
    hash_rows(&keys, &mut hashes).unwrap();
    hashes.resize(batch.num_rows(), 0);
    let m = case.max_key_groups;
    let owner: Vec<usize> = hashes
        .iter()
        .map(|&h| subtask_for_key_group(key_group(h, m), m, parallelism))
        .collect();
    (0..parallelism)
        .map(|s| {
            let mask: BooleanArray = owner.iter().map(|&o| Some(o == s)).collect();
            filter_record_batch(batch, &mask).unwrap()
        })
        .collect()
}

/// Feeds `steps` to the subtasks of one operator: rows routed by key, watermarks to all.
fn run(case: &Case, ops: &mut [Box<dyn Operator>], steps: &[Step], emitted: &mut Emitted) {
    let mut output = Output::default();
    for step in steps {
        match step {
            Step::Rows(events) => {
                let batch = to_batch(events, &case.schema);
                let parts = route(case, &batch, ops.len());
                for (op, part) in ops.iter_mut().zip(parts) {
                    op.on_batch(0, part, &mut output).unwrap();
                }
                emitted.take(&mut output);
            }
            Step::Watermark(w) => {
                for op in ops.iter_mut() {
                    op.on_watermark(*w, &mut output).unwrap();
                }
                emitted.take(&mut output);
            }
        }
    }
}

fn create(case: &Case) -> Box<dyn Operator> {
    case.spec
        .create_with(&case.schema, case.max_key_groups)
        .unwrap()
}

fn uninterrupted(case: &Case) -> Emitted {
    let mut emitted = Emitted::default();
    run(case, &mut [create(case)], &case.steps, &mut emitted);
    emitted.sorted()
}

/// A subtask's state through an Arrow IPC file, as the runtime stores it: one schema.
fn through_ipc(state: Vec<RecordBatch>) -> Vec<RecordBatch> {
    let schema = state[0].schema();
    assert!(state.iter().all(|b| b.schema() == schema), "one schema");
    assert!(schema.metadata().contains_key(WATERMARK_KEY));
    let mut writer = FileWriter::try_new(Vec::new(), &schema).unwrap();
    for batch in &state {
        writer.write(batch).unwrap();
    }
    let bytes = writer.into_inner().unwrap();
    let reader = FileReader::try_new(Cursor::new(bytes), None).unwrap();
    reader.map(Result::unwrap).collect()
}

/// The rows of every old subtask's state that new subtask `s` of `p` owns.
fn state_of_subtask(case: &Case, old: &[Vec<RecordBatch>], s: usize, p: usize) -> Vec<RecordBatch> {
    let owned = key_groups_of_subtask(s, case.max_key_groups, p);
    let mut state = Vec::new();
    for batch in old.iter().flatten() {
        let groups = batch.column_by_name(KEY_GROUP_COLUMN).unwrap();
        let groups = groups.as_primitive::<UInt32Type>();
        let mask: BooleanArray = groups
            .iter()
            .map(|g| Some(owned.contains(&g.unwrap())))
            .collect();
        state.push(filter_record_batch(batch, &mask).unwrap());
    }
    state
}

/// Snapshots and restores one operator at 1 to 3 random points; at each, the run goes on
/// with the restored operator or (the snapshot must not disturb it) the original.
fn check_restore(seed: u64, kind: WindowKind) {
    let case = case(seed, kind);
    let expected = uninterrupted(&case);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut cuts: Vec<usize> = (0..rng.random_range(1..=3))
        .map(|_| rng.random_range(0..case.steps.len()))
        .collect();
    cuts.sort();
    let mut op = create(&case);
    let (mut emitted, mut done) = (Emitted::default(), 0);
    for (epoch, cut) in cuts.into_iter().enumerate() {
        run(
            &case,
            std::slice::from_mut(&mut op),
            &case.steps[done..cut],
            &mut emitted,
        );
        done = cut;
        let state = op.snapshot(epoch as u64).unwrap();
        if rng.random_bool(0.8) {
            op = create(&case);
            op.restore(state).unwrap();
        }
    }
    run(
        &case,
        std::slice::from_mut(&mut op),
        &case.steps[done..],
        &mut emitted,
    );
    assert_eq!(emitted.sorted(), expected, "seed {seed}: {kind:?}");
}

/// Runs at parallelism `p1`, snapshots every subtask at a random point, restores at `p2`.
fn check_rescale(seed: u64, kind: WindowKind, p1: usize, p2: usize) {
    let case = case(seed, kind);
    let expected = uninterrupted(&case);
    let cut = StdRng::seed_from_u64(seed ^ 0xc07).random_range(0..case.steps.len());
    let mut emitted = Emitted::default();
    let mut old: Vec<_> = (0..p1).map(|_| create(&case)).collect();
    run(&case, &mut old, &case.steps[..cut], &mut emitted);
    let state: Vec<_> = old
        .iter_mut()
        .map(|op| through_ipc(op.snapshot(7).unwrap()))
        .collect();
    let mut new: Vec<_> = (0..p2)
        .map(|s| {
            let mut op = create(&case);
            op.restore(state_of_subtask(&case, &state, s, p2)).unwrap();
            op
        })
        .collect();
    run(&case, &mut new, &case.steps[cut..], &mut emitted);
    let keys = &case.spec.key_columns;
    assert_eq!(
        emitted.sorted(),
        expected,
        "seed {seed}: {kind:?} keys {keys:?} {p1} -> {p2}, max_key_groups {}",
        case.max_key_groups
    );
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Tumbling, hopping with size a multiple of the slide and not, and session windows.
fn kind(rng: &mut StdRng, which: usize) -> WindowKind {
    match which % 4 {
        0 => WindowKind::Tumbling {
            size: ms(rng.random_range(1..=25)),
        },
        1 => {
            let slide = rng.random_range(1..=8);
            let size = slide * rng.random_range(2..=5);
            WindowKind::Hopping {
                size: ms(size),
                slide: ms(slide),
            }
        }
        2 => {
            let slide = rng.random_range(2..=9);
            let (size, slide) = match rng.random_bool(0.3) {
                true => (10, 3),
                false => (rng.random_range(slide + 1..=30), slide),
            };
            WindowKind::Hopping {
                size: ms(size),
                slide: ms(slide),
            }
        }
        _ => WindowKind::Session {
            gap: ms(rng.random_range(1..=15)),
        },
    }
}

/// Cumulative windows of 1 to 8 ms steps, up to 1 to 6 steps.
fn cumulative(rng: &mut StdRng) -> WindowKind {
    let step = rng.random_range(1..=8);
    WindowKind::Cumulative {
        step: ms(step),
        max_size: ms(step * rng.random_range(1..=6)),
    }
}

#[test]
fn restored_operator_continues_exactly() {
    for seed in 0..160 {
        let kind = kind(&mut StdRng::seed_from_u64(seed), seed as usize);
        check_restore(seed, kind);
    }
}

#[test]
fn rescaled_operators_continue_exactly() {
    for seed in 1000..1144 {
        let mut rng = StdRng::seed_from_u64(seed);
        let kind = kind(&mut rng, (seed / 9) as usize);
        let (p1, p2) = ((seed % 3) as usize + 1, (seed / 3 % 3) as usize + 1);
        check_rescale(seed, kind, p1, p2);
    }
}

#[test]
fn restored_cumulative_operator_continues_exactly() {
    for seed in 2000..2060 {
        let kind = cumulative(&mut StdRng::seed_from_u64(seed));
        check_restore(seed, kind);
    }
}

#[test]
fn rescaled_cumulative_operators_continue_exactly() {
    for seed in 3000..3036 {
        let kind = cumulative(&mut StdRng::seed_from_u64(seed));
        let (p1, p2) = ((seed % 3) as usize + 1, (seed / 3 % 3) as usize + 1);
        check_rescale(seed, kind, p1, p2);
    }
}

#[test]
fn empty_state_keeps_the_watermark_and_no_state_is_a_fresh_start() {
    let case = case(3, WindowKind::Tumbling { size: ms(10) });
    let mut op = create(&case);
    let mut output = Output::default();
    op.on_watermark(42, &mut output).unwrap();
    let state = op.snapshot(1).unwrap();
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].num_rows(), 0);
    assert_eq!(state[0].schema().metadata()[WATERMARK_KEY], "42");
    // Restored, a row whose window ended at 42 is late.
    let mut restored = create(&case);
    restored.restore(state).unwrap();
    let late = Step::Rows(vec![event(&mut StdRng::seed_from_u64(1), 31)]);
    let mut emitted = Emitted::default();
    run(
        &case,
        std::slice::from_mut(&mut restored),
        &[late],
        &mut emitted,
    );
    assert_eq!(emitted.late.len(), 1);
    create(&case).restore(Vec::new()).unwrap();
}

#[test]
fn state_of_another_window_or_aggregate_is_refused() {
    let tumbling = case(4, WindowKind::Tumbling { size: ms(10) });
    let state = create(&tumbling).snapshot(1).unwrap();
    let mut other = case(4, WindowKind::Session { gap: ms(10) });
    let err = create(&other).restore(state.clone()).unwrap_err();
    assert!(matches!(err, Error::Plan(_)), "{err}");
    other.spec = tumbling.spec.clone();
    other.spec.aggregates.pop();
    let err = create(&other).restore(state.clone()).unwrap_err();
    assert!(matches!(err, Error::Plan(_)), "{err}");
    let mut ran = create(&tumbling);
    ran.on_watermark(5, &mut Output::default()).unwrap();
    assert!(matches!(ran.restore(state), Err(Error::Internal(_))));
}

/// CUMULATE 2 ms up to 10 ms and HOP 10 ms every 2 ms cut the same panes, with the same
/// columns; their state must still not be mistaken for each other's.
#[test]
fn cumulative_state_is_refused_by_other_geometries() {
    let cumulate = |step, max_size| WindowKind::Cumulative {
        step: ms(step),
        max_size: ms(max_size),
    };
    let cumulative = case(6, cumulate(2, 10));
    let mut op = create(&cumulative);
    let Some(Step::Rows(rows)) = cumulative.steps.first() else {
        panic!("a case starts with rows");
    };
    op.on_batch(
        0,
        to_batch(rows, &cumulative.schema),
        &mut Output::default(),
    )
    .unwrap();
    let state = op.snapshot(1).unwrap();
    assert!(state[0].num_rows() > 0, "the state holds panes");
    let hop = WindowKind::Hopping {
        size: ms(10),
        slide: ms(2),
    };
    for other in [hop, cumulate(2, 8), cumulate(1, 10), cumulate(10, 10)] {
        let mut spec = cumulative.spec.clone();
        spec.kind = other;
        let op = spec.create_with(&cumulative.schema, cumulative.max_key_groups);
        let err = op.unwrap().restore(state.clone()).unwrap_err();
        assert!(matches!(err, Error::Plan(_)), "{other:?}: {err}");
        assert!(err.to_string().contains("cumulate"), "{other:?}: {err}");
    }
    let hop_case = case(6, hop);
    let hop_state = create(&hop_case).snapshot(1).unwrap();
    let err = create(&cumulative).restore(hop_state).unwrap_err();
    assert!(matches!(err, Error::Plan(_)), "{err}");
    create(&cumulative).restore(state).unwrap();
}
