//! Snapshot and restore of window state with 1,000,000 keys: how long a checkpoint of a
//! large keyed window takes to take, encode, decode and load back.
//! `cargo bench -p runnel-benches --bench window_state`.

// A benchmark measures wall-clock time.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use runnel_operators::{WindowAggregateSpec, WindowKind, avg, count_star, max, sum};
use runnel_runtime::Output;
use runnel_runtime::checkpoint::{decode_state, encode_state};

const KEYS: i64 = 1_000_000;
const BATCH: i64 = 65_536;

fn main() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, false),
        Field::new("price", DataType::Int64, false),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ]));
    let spec = WindowAggregateSpec {
        kind: WindowKind::Hopping {
            size: Duration::from_secs(10),
            slide: Duration::from_secs(2),
        },
        time_column: "date_time".into(),
        key_columns: vec!["auction".into()],
        aggregates: vec![count_star(), sum("price"), max("price"), avg("price")],
    };
    let mut operator = spec.create(&schema).expect("operator");
    let mut out = Output::default();
    let mut start = 0;
    while start < KEYS {
        let end = (start + BATCH).min(KEYS);
        let keys: Vec<i64> = (start..end).collect();
        let prices: Vec<i64> = keys.iter().map(|k| k % 1000).collect();
        let times: Vec<i64> = keys.iter().map(|k| 1_000 + k % 1_000).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(keys)),
                Arc::new(Int64Array::from(prices)),
                Arc::new(TimestampMillisecondArray::from(times)),
            ],
        )
        .expect("batch");
        operator.on_batch(0, batch, &mut out).expect("on_batch");
        start = end;
    }

    let t = Instant::now();
    let state = operator.snapshot(1).expect("snapshot");
    let snapshot = t.elapsed();
    let t = Instant::now();
    let bytes = encode_state(&state).expect("encode");
    let encode = t.elapsed();
    let t = Instant::now();
    let decoded = decode_state(&bytes).expect("decode");
    let decode = t.elapsed();
    let mut restored = spec.create(&schema).expect("operator");
    let t = Instant::now();
    restored.restore(decoded).expect("restore");
    let restore = t.elapsed();
    let rows: usize = state.iter().map(|b| b.num_rows()).sum();
    println!(
        "window state, {KEYS} keys ({rows} pane groups, 4 aggregates, {:.1} MiB as Arrow IPC): \
         snapshot {snapshot:?}, encode {encode:?}, decode {decode:?}, restore {restore:?}",
        bytes.len() as f64 / (1 << 20) as f64
    );
}
