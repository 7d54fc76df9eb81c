//! Randomized tests: the window operators against the naive [`super::oracle`].
//!
//! Each case interleaves several "partitions" whose events are up to `D` ms out of order,
//! with watermarks like a bounded-out-of-orderness source would emit them (min over
//! partitions of max event time minus a delay). The delay is sometimes smaller than `D`,
//! and a few rows are pushed far behind, so that rows arrive behind the watermark and
//! lateness is exercised. Output rows and late rows are compared as multisets.

use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel_runtime::{Operator, Output, WATERMARK_END};

use super::oracle::{
    AlignedOracle, Event, Row, SessionOracle, all_aggregates, input_schema, rows, to_batch,
};
use super::{WINDOW_END, WindowAggregateSpec, WindowKind};

/// Either oracle, behind one interface.
trait Model {
    fn on_batch(&mut self, events: &[Event]);
    fn on_watermark(&mut self, watermark: i64) -> Vec<Row>;
    fn late(&self) -> &[Event];
}

impl Model for AlignedOracle {
    fn on_batch(&mut self, events: &[Event]) {
        AlignedOracle::on_batch(self, events)
    }
    fn on_watermark(&mut self, watermark: i64) -> Vec<Row> {
        AlignedOracle::on_watermark(self, watermark)
    }
    fn late(&self) -> &[Event] {
        &self.late
    }
}

impl Model for SessionOracle {
    fn on_batch(&mut self, events: &[Event]) {
        SessionOracle::on_batch(self, events)
    }
    fn on_watermark(&mut self, watermark: i64) -> Vec<Row> {
        SessionOracle::on_watermark(self, watermark)
    }
    fn late(&self) -> &[Event] {
        &self.late
    }
}

/// Shape of the generated stream.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Distinct values of `k1` (besides null).
    k1_domain: i64,
    batches: usize,
    max_batch_rows: usize,
}

const SMALL: Shape = Shape {
    k1_domain: 5,
    batches: 40,
    max_batch_rows: 12,
};

fn event(rng: &mut StdRng, ts: i64, shape: Shape, null_values: bool) -> Event {
    let maybe = |rng: &mut StdRng, p_null: f64| !null_values && !rng.random_bool(p_null);
    let k2 = ["", "a", "bb", "ccc"];
    Event {
        ts,
        k1: maybe(rng, 0.1).then(|| rng.random_range(0..shape.k1_domain)),
        k2: maybe(rng, 0.1).then(|| k2[rng.random_range(0..k2.len())].to_string()),
        vi: maybe(rng, 0.2).then(|| rng.random_range(-50..50)),
        vf: maybe(rng, 0.2).then(|| rng.random_range(-200..200) as f32 * 0.5),
        vt: maybe(rng, 0.2).then(|| rng.random_range(-1000..1000)),
    }
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort();
    rows
}

/// Runs one random case of `kind` against `model`; panics with the seed on a mismatch.
fn run_case(seed: u64, kind: WindowKind, mut model: Box<dyn Model>, keys: &[&str], shape: Shape) {
    let mut rng = StdRng::seed_from_u64(seed);
    let time_type = [
        DataType::Timestamp(TimeUnit::Millisecond, None),
        DataType::Int64,
        DataType::Timestamp(TimeUnit::Microsecond, None),
    ][rng.random_range(0..3)]
    .clone();
    let schema = input_schema(&time_type);
    let spec = WindowAggregateSpec {
        kind,
        time_column: "ts".into(),
        key_columns: keys.iter().map(|k| k.to_string()).collect(),
        aggregates: all_aggregates(),
    };
    let mut op = spec.create(&schema).unwrap();
    let partitions = rng.random_range(1..=3);
    let disorder = rng.random_range(0..30i64);
    let delay = if rng.random_bool(0.5) {
        disorder
    } else {
        rng.random_range(0..=disorder)
    };
    let null_values = rng.random_bool(0.1);
    let base = rng.random_range(-300..300i64);
    let mut clocks = vec![base; partitions];
    let mut max_seen = vec![None::<i64>; partitions];
    let mut out = Output::default();
    let (mut got, mut want, mut got_late) = (Vec::new(), Vec::new(), Vec::new());
    let mut watermark = i64::MIN;
    let emitted = |op: &mut Box<dyn Operator>, w: i64, out: &mut Output| {
        op.on_watermark(w, out).unwrap();
        let (main, late) = out.take();
        let mut last_end = i64::MIN;
        for batch in &main {
            let ends = batch.column_by_name(WINDOW_END).unwrap();
            for &end in ends.as_primitive::<TimestampMillisecondType>().values() {
                assert!(end >= last_end, "seed {seed}: windows out of end order");
                assert!(end <= w, "seed {seed}: window ending at {end} fired at {w}");
                last_end = end;
            }
        }
        assert!(late.is_empty(), "late rows emitted on a watermark");
        main.iter().flat_map(rows).collect::<Vec<_>>()
    };
    for _ in 0..shape.batches {
        let p = rng.random_range(0..partitions);
        let n = rng.random_range(0..=shape.max_batch_rows);
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            clocks[p] += rng.random_range(0..4);
            let mut ts = clocks[p] - rng.random_range(0..=disorder);
            if rng.random_bool(0.03) {
                ts -= rng.random_range(0..100);
            }
            max_seen[p] = Some(max_seen[p].map_or(ts, |m| m.max(ts)));
            events.push(event(&mut rng, ts, shape, null_values));
        }
        let batch = to_batch(&events, &schema);
        op.on_batch(0, batch, &mut out).unwrap();
        let (main, late) = out.take();
        assert!(main.is_empty(), "seed {seed}: output on a batch");
        got_late.extend(late.iter().flat_map(rows));
        model.on_batch(&events);
        let w = max_seen
            .iter()
            .copied()
            .collect::<Option<Vec<_>>>()
            .map(|m| m.into_iter().min().unwrap() - delay);
        if let Some(w) = w.filter(|&w| w > watermark && rng.random_bool(0.7)) {
            watermark = w;
            got.extend(emitted(&mut op, w, &mut out));
            want.extend(model.on_watermark(w));
        }
    }
    got.extend(emitted(&mut op, WATERMARK_END, &mut out));
    want.extend(model.on_watermark(WATERMARK_END));
    let want_late = rows(&to_batch(model.late(), &schema));
    assert_eq!(
        sorted(got_late),
        sorted(want_late),
        "seed {seed}: late rows differ ({kind:?}, keys {keys:?})"
    );
    assert_eq!(
        sorted(got),
        sorted(want),
        "seed {seed}: output differs ({kind:?}, keys {keys:?})"
    );
}

const KEY_SETS: [&[&str]; 4] = [&[], &["k1"], &["k2"], &["k1", "k2"]];

fn ms(v: i64) -> Duration {
    Duration::from_millis(v as u64)
}

fn hop_case(seed: u64, size: i64, slide: i64, shape: Shape) {
    let keys = KEY_SETS[seed as usize % KEY_SETS.len()];
    let kind = if size == slide {
        WindowKind::Tumbling { size: ms(size) }
    } else {
        WindowKind::Hopping {
            size: ms(size),
            slide: ms(slide),
        }
    };
    let model = AlignedOracle::hop(size, slide, keys.to_vec());
    run_case(seed, kind, Box::new(model), keys, shape);
}

fn cumulate_case(seed: u64, step: i64, max_size: i64, shape: Shape) {
    let keys = KEY_SETS[seed as usize % KEY_SETS.len()];
    let kind = WindowKind::Cumulative {
        step: ms(step),
        max_size: ms(max_size),
    };
    let model = AlignedOracle::cumulate(step, max_size, keys.to_vec());
    run_case(seed, kind, Box::new(model), keys, shape);
}

fn session_case(seed: u64, gap: i64, shape: Shape) {
    let keys = KEY_SETS[seed as usize % KEY_SETS.len()];
    let model = SessionOracle::new(gap, keys.to_vec());
    run_case(
        seed,
        WindowKind::Session { gap: ms(gap) },
        Box::new(model),
        keys,
        shape,
    );
}

#[test]
fn tumbling_matches_oracle() {
    for seed in 0..60 {
        let size = StdRng::seed_from_u64(seed ^ 0xA1).random_range(1..=25);
        hop_case(seed, size, size, SMALL);
    }
}

#[test]
fn hopping_with_size_a_multiple_of_slide_matches_oracle() {
    for seed in 100..160 {
        let mut rng = StdRng::seed_from_u64(seed);
        let slide = rng.random_range(1..=8);
        let size = slide * rng.random_range(2..=5);
        hop_case(seed, size, slide, SMALL);
    }
}

#[test]
fn hopping_with_size_not_a_multiple_of_slide_matches_oracle() {
    for seed in 200..260 {
        let mut rng = StdRng::seed_from_u64(seed);
        let (size, slide) = if seed % 4 == 0 {
            (10, 3) // 10 s / 3 s scaled down
        } else {
            let slide = rng.random_range(2..=9);
            let size = rng.random_range(slide + 1..=30);
            (size, slide)
        };
        hop_case(seed, size, slide, SMALL);
    }
}

/// Steps of 1 to 8 ms, up to 1 to 6 steps (one step: tumbling windows by another path).
#[test]
fn cumulating_matches_oracle() {
    for seed in 500..580 {
        let mut rng = StdRng::seed_from_u64(seed);
        let step = rng.random_range(1..=8);
        let max_size = step * rng.random_range(1..=6);
        cumulate_case(seed, step, max_size, SMALL);
    }
}

#[test]
fn session_matches_oracle() {
    for seed in 300..380 {
        let gap = StdRng::seed_from_u64(seed).random_range(1..=15);
        session_case(seed, gap, SMALL);
    }
}

/// Many distinct keys: exercises slot reuse and key-table compaction.
#[test]
fn many_keys_match_oracle() {
    let shape = Shape {
        k1_domain: 20_000,
        batches: 150,
        max_batch_rows: 300,
    };
    for seed in 400..403 {
        hop_case(seed * 4 + 1, 12, 4, shape);
        cumulate_case(seed * 4 + 3, 4, 12, shape);
        session_case(seed * 4 + 1, 3, shape);
    }
}
