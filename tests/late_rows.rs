//! Rows behind the watermark are neither aggregated nor lost: they are counted in the
//! `late_rows` metric and delivered on the window's late-rows output.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use object_store::memory::InMemory;
use object_store::path::Path;
use runnel_connectors::channel::CollectSink;
use runnel_connectors::log::{EmbeddedLog, LogSource};
use runnel_operators::{StreamExt, WindowKind, count_star};
use runnel_runtime::{Dataflow, JobConfig, WatermarkStrategy, spawn};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ]))
}

fn batch(rows: &[(i64, i64)]) -> RecordBatch {
    let keys: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let ts: Vec<i64> = rows.iter().map(|r| r.1).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(keys)),
            Arc::new(TimestampMillisecondArray::from(ts)),
        ],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_rows_are_counted_and_routed_to_the_side_output() {
    let log = EmbeddedLog::new(Arc::new(InMemory::new()), Path::from("late"));
    let topic = log.create_topic("events", 1, schema()).await.unwrap();
    // On time: keys 1 and 2 over 0..30 s. Then, in a later append, a row for the window
    // [0 s, 10 s) that closed long ago, and one on-time row for [30 s, 40 s).
    let on_time: Vec<(i64, i64)> = (0..30).map(|s| (1 + s % 2, s * 1_000)).collect();
    topic.append(0, &[batch(&on_time)], None).await.unwrap();
    topic
        .append(0, &[batch(&[(1, 5_000), (2, 31_000)])], None)
        .await
        .unwrap();

    let flow = Dataflow::new("late").with_parallelism(1);
    let windows = flow
        .source(
            "events",
            Arc::new(LogSource::new(topic).bounded()),
            WatermarkStrategy::bounded("ts", Duration::from_secs(1)),
        )
        .unwrap()
        .key_by(&["key"])
        .unwrap()
        .window(
            WindowKind::Tumbling {
                size: Duration::from_secs(10),
            },
            vec![count_star().alias("n")],
        )
        .unwrap();
    let (results, late) = (CollectSink::new(), CollectSink::new());
    windows.sink("counts", Arc::new(results.clone())).unwrap();
    windows
        .late_rows()
        .sink("late", Arc::new(late.clone()))
        .unwrap();
    let job = spawn(flow.build().unwrap(), JobConfig::default())
        .await
        .unwrap();
    let metrics = job.metrics().clone();
    job.join().await.unwrap();

    assert_eq!(metrics.node("window").unwrap().late_rows(), 1);
    let late_rows = late.batches();
    assert_eq!(late_rows.len(), 1);
    assert_eq!(late_rows[0], batch(&[(1, 5_000)]));

    // Per (window start, key): 5 rows each in the first three windows, 1 in the fourth.
    let mut counts = Vec::new();
    for b in results.batches() {
        let key = b.column(0).as_primitive::<Int64Type>();
        let start = b
            .column(1)
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        let n = b.column(3).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            counts.push((start.value(i), key.value(i), n.value(i)));
        }
    }
    counts.sort();
    let expected = vec![
        (0, 1, 5),
        (0, 2, 5),
        (10_000, 1, 5),
        (10_000, 2, 5),
        (20_000, 1, 5),
        (20_000, 2, 5),
        (30_000, 2, 1),
    ];
    assert_eq!(counts, expected);
}
