//! The Iceberg sink's commit path on the embedded catalog (sqlite + local files): how long
//! phase 1 (Parquet files at the barrier) and phase 2 (one snapshot per epoch) take, how
//! many files each commit adds, how the table's metadata grows with every snapshot kept
//! versus a snapshot retention, and what compaction (every 10 commits) does to the number
//! of data files, to commit latency and to the time a full scan of the table takes.
//! `cargo bench -p runnel-benches --bench iceberg_commit` (`ICEBERG_EPOCHS=N` to change
//! the number of epochs, 300 by default).

// A benchmark measures wall-clock time.
#![allow(clippy::disallowed_methods)]

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use runnel_connectors::iceberg::{
    Compaction, EPOCH_PROPERTY, IcebergCatalog, IcebergSink, live_data_files, read_table,
};
use runnel_runtime::{Sink, Staged};

/// Sink subtasks, each staging one file per epoch.
const SUBTASKS: usize = 2;
/// Rows each subtask writes per epoch.
const ROWS: i64 = 1_000;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn batch(start: i64) -> RecordBatch {
    let ids: Vec<i64> = (start..start + ROWS).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("name-{i}")).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .expect("batch")
}

struct Run {
    stage: Vec<Duration>,
    commit: Vec<Duration>,
    files: Vec<u64>,
    snapshots: usize,
    metadata_bytes: u64,
    live_files: usize,
    scan: Duration,
    rows: usize,
}

/// How a run keeps its table.
struct Upkeep {
    retention: Option<NonZeroUsize>,
    compaction: Option<Compaction>,
}

async fn run(dir: &Path, epochs: u64, upkeep: &Upkeep) -> Run {
    let catalog = IcebergCatalog::embedded(dir, runnel_runtime::Ambient::system())
        .await
        .expect("catalog");
    let mut sink = IcebergSink::new(catalog, "bench", "bench.sink", schema())
        .await
        .expect("sink")
        .with_compaction(upkeep.compaction);
    if let Some(keep) = upkeep.retention {
        sink = sink.with_snapshot_retention(keep);
    }
    let mut writers = Vec::new();
    for subtask in 0..SUBTASKS {
        writers.push(sink.open(subtask, SUBTASKS).await.expect("writer"));
    }
    let mut run = Run {
        stage: Vec::new(),
        commit: Vec::new(),
        files: Vec::new(),
        snapshots: 0,
        metadata_bytes: 0,
        live_files: 0,
        scan: Duration::ZERO,
        rows: 0,
    };
    let mut next = 0;
    for epoch in 1..=epochs {
        let t = Instant::now();
        let mut staged = Vec::new();
        for (subtask, writer) in writers.iter_mut().enumerate() {
            writer.write(batch(next)).await.expect("write");
            next += ROWS;
            let pre_commit = writer.pre_commit(epoch).await.expect("pre_commit");
            staged.push(Staged {
                subtask,
                pre_commit,
            });
        }
        run.stage.push(t.elapsed());
        let t = Instant::now();
        sink.commit(epoch, 0, staged).await.expect("commit");
        run.commit.push(t.elapsed());
        let table = sink.table().await.expect("table");
        let epoch_text = epoch.to_string();
        let append = table
            .metadata()
            .snapshots()
            .find(|s| s.summary().additional_properties.get(EPOCH_PROPERTY) == Some(&epoch_text))
            .expect("the epoch's snapshot");
        let added = append.summary().additional_properties["added-data-files"]
            .parse()
            .expect("added-data-files");
        run.files.push(added);
    }
    let table = sink.table().await.expect("table");
    run.snapshots = table.metadata().snapshots().len();
    let location = table.metadata_location().expect("metadata location");
    let path = location.strip_prefix("file://").unwrap_or(location);
    run.metadata_bytes = std::fs::metadata(path).expect("metadata file").len();
    run.live_files = live_data_files(&table).await.expect("data files").len();
    let t = Instant::now();
    let rows: Vec<RecordBatch> = read_table(&table).await.expect("scan");
    run.scan = t.elapsed();
    run.rows = rows.iter().map(RecordBatch::num_rows).sum();
    run
}

fn ms(durations: &[Duration]) -> f64 {
    durations.iter().sum::<Duration>().as_secs_f64() * 1e3 / durations.len() as f64
}

fn percentile(durations: &[Duration], p: f64) -> f64 {
    let mut sorted = durations.to_vec();
    sorted.sort();
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn report(label: &str, run: &Run) {
    let tenth = (run.commit.len() / 10).max(1);
    let first = &run.commit[..tenth];
    let last = &run.commit[run.commit.len() - tenth..];
    let files = run.files.iter().sum::<u64>() as f64 / run.files.len() as f64;
    println!(
        "{label:<22} stage {:>6.2} ms/epoch | commit {:>6.2} ms mean, p50 {:>6.2}, p99 {:>6.2} | \
         first 10% {:>6.2} ms, last 10% {:>6.2} ms | {files:.1} files/commit | {} snapshots, \
         metadata {} KiB | {} live files, full scan {:.0} ms ({} rows)",
        ms(&run.stage),
        ms(&run.commit),
        percentile(&run.commit, 0.5),
        percentile(&run.commit, 0.99),
        ms(first),
        ms(last),
        run.snapshots,
        run.metadata_bytes / 1024,
        run.live_files,
        run.scan.as_secs_f64() * 1e3,
        run.rows,
    );
}

fn main() {
    let epochs: u64 = std::env::var("ICEBERG_EPOCHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{epochs} epochs, {SUBTASKS} subtasks x {ROWS} rows per epoch, embedded catalog on a \
         local disk"
    );
    let keep = NonZeroUsize::new(10).expect("non-zero");
    let runs = [
        ("every snapshot kept", None, None),
        ("retention 10", Some(keep), None),
        (
            "retention 10, compact",
            Some(keep),
            Some(Compaction::default()),
        ),
    ];
    for (label, retention, compaction) in runs {
        let dir = tempfile::tempdir().expect("tempdir");
        let upkeep = Upkeep {
            retention,
            compaction,
        };
        let run = runtime.block_on(run(dir.path(), epochs, &upkeep));
        report(label, &run);
    }
}
