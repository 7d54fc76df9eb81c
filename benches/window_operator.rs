//! Throughput of the window aggregate operator alone, fed pre-built batches in memory:
//! rows/s per core for several window shapes. `cargo bench -p runnel-benches --bench
//! window_operator`.

// A benchmark measures wall-clock time.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel_operators::{AggregateExpr, WindowAggregateSpec, WindowKind, avg, count_star, max, sum};
use runnel_runtime::{Output, WATERMARK_END};

fn run(name: &str, kind: WindowKind, aggregates: Vec<AggregateExpr>, keys: usize) {
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
        kind,
        time_column: "date_time".into(),
        key_columns: (keys > 0)
            .then(|| "auction".to_string())
            .into_iter()
            .collect(),
        aggregates,
    };
    let mut rng = StdRng::seed_from_u64(7);
    let rows_per_batch = 8192;
    let batches: Vec<RecordBatch> = (0..400)
        .map(|b| {
            let t0 = b as i64 * rows_per_batch as i64 / 100; // 100k events per second of event time
            let base = t0 / 10; // auctions age out slowly
            let auction: Vec<i64> = (0..rows_per_batch)
                .map(|_| base + rng.random_range(0..keys.max(1) as i64))
                .collect();
            let price: Vec<i64> = (0..rows_per_batch)
                .map(|_| rng.random_range(1..10_000))
                .collect();
            let ts: Vec<i64> = (0..rows_per_batch)
                .map(|i| t0 + i as i64 / 100 - rng.random_range(0..50))
                .collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(auction)),
                Arc::new(Int64Array::from(price)),
                Arc::new(TimestampMillisecondArray::from(ts)),
            ];
            RecordBatch::try_new(schema.clone(), columns).unwrap()
        })
        .collect();
    let mut best = Duration::MAX;
    let mut out_rows = 0;
    for _ in 0..3 {
        let mut op = spec.create(&schema).unwrap();
        let mut out = Output::default();
        out_rows = 0;
        let start = Instant::now();
        for (b, batch) in batches.iter().enumerate() {
            op.on_batch(0, batch.clone(), &mut out).unwrap();
            let w = (b as i64 + 1) * rows_per_batch as i64 / 100 - 100;
            op.on_watermark(w, &mut out).unwrap();
            out_rows += out.take().0.iter().map(|b| b.num_rows()).sum::<usize>();
        }
        op.on_watermark(WATERMARK_END, &mut out).unwrap();
        best = best.min(start.elapsed());
    }
    let rows = batches.len() * rows_per_batch;
    println!(
        "{name}: {:.1} M events/s ({rows} rows, {out_rows} output rows, {best:?})",
        rows as f64 / best.as_secs_f64() / 1e6
    );
}

fn main() {
    let s = Duration::from_secs;
    let q5 = WindowKind::Hopping {
        size: s(10),
        slide: s(2),
    };
    run(
        "q5 HOP 10s/2s count(*) by auction, 1k hot",
        q5,
        vec![count_star()],
        1000,
    );
    run(
        "q5 HOP 10s/2s count(*) by auction, 100k",
        q5,
        vec![count_star()],
        100_000,
    );
    run(
        "HOP 10s/3s count, sum, max by auction",
        WindowKind::Hopping {
            size: s(10),
            slide: s(3),
        },
        vec![count_star(), sum("price"), max("price")],
        1000,
    );
    run(
        "TUMBLE 10s count(*) no key",
        WindowKind::Tumbling { size: s(10) },
        vec![count_star()],
        0,
    );
    run(
        "TUMBLE 1s avg by auction",
        WindowKind::Tumbling { size: s(1) },
        vec![avg("price")],
        1000,
    );
    run(
        "SESSION 10ms count(*) by auction",
        WindowKind::Session {
            gap: Duration::from_millis(10),
        },
        vec![count_star()],
        1000,
    );
}
