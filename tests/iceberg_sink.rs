//! The Iceberg sink end to end: a job copies Nexmark bids from the embedded log (appended
//! while it runs) into an Iceberg table on a local data directory, is killed at seeded
//! random moments (between and inside the two commit phases, and inside compactions, every
//! 4 commits) and restarted, and in the end the table holds every bid exactly once, one
//! snapshot per committed epoch plus the compactions' `replace` snapshots. PyIceberg then
//! reads the same table through the same SQL catalog and sees the same rows.

// Tests wait on and time real processes with the machine's clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use object_store::ObjectStore;
use object_store::path::Path;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel_connectors::iceberg::{
    CATALOG_NAME, COMPACTED_EPOCH_PROPERTY, Compaction, EPOCH_PROPERTY, IcebergCatalog,
    IcebergSink, NAMESPACE, SINK_ID_PROPERTY, live_data_files, read_table,
};
use runnel_connectors::log::{EmbeddedLog, LogSource, SyncedLocal, Topic};
use runnel_connectors::nexmark::{NexmarkOptions, NexmarkTable, generate_partition};
use runnel_runtime::checkpoint::ObjectStoreCheckpoints;
use runnel_runtime::{CheckpointConfig, Dataflow, JobConfig, WatermarkStrategy, spawn};

use common::python::{python, script};

const TABLE: &str = "bids";
const SINK_ID: &str = "copy_bids.sink";

async fn copy_job(
    catalog: IcebergCatalog,
    bids: &Topic,
    ends: &HashMap<u32, u64>,
) -> runnel_runtime::JobGraph {
    let flow = Dataflow::new("copy_bids").with_parallelism(2);
    let watermark = WatermarkStrategy::bounded("date_time", Duration::from_secs(1));
    let source = LogSource::new(bids.clone())
        .until(ends.clone())
        .poll_interval(Duration::from_millis(5));
    let source = Arc::new(source);
    let stream = flow.source("bids", source, watermark).unwrap();
    let compaction = Compaction {
        every_commits: NonZeroUsize::new(4).unwrap(),
        ..Compaction::default()
    };
    let sink = IcebergSink::new(catalog, TABLE, SINK_ID, stream.schema().clone())
        .await
        .unwrap()
        .with_compaction(Some(compaction));
    stream.sink("iceberg", Arc::new(sink)).unwrap();
    flow.build().unwrap()
}

/// The rows of `batches` cast to `schema`, as sortable byte strings, sorted.
fn sorted_rows(batches: &[RecordBatch], schema: &SchemaRef) -> Vec<Vec<u8>> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| SortField::new(f.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields).unwrap();
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| cast(column, field.data_type()).unwrap())
            .collect();
        let converted = converter.convert_columns(&columns).unwrap();
        rows.extend(converted.iter().map(|row| row.as_ref().to_vec()));
    }
    rows.sort();
    rows
}

/// Bids of `partitions` generator partitions, generated up front: the batches of each.
fn generate_bids(partitions: usize) -> Vec<Vec<RecordBatch>> {
    let options = NexmarkOptions {
        seed: 7,
        events_per_second: 2_000,
        max_events: Some(24_000),
        batch_size: 200,
        partitions,
        ..NexmarkOptions::default()
    };
    (0..partitions)
        .map(|p| generate_partition(&options, NexmarkTable::Bid, p).unwrap())
        .collect()
}

/// Appends each partition's batches to `topic` a few milliseconds apart, so that the job
/// reading it runs across many checkpoints and kills.
async fn append_slowly(topic: Topic, batches: Vec<Vec<RecordBatch>>) {
    let rounds = batches.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..rounds {
        for (partition, batches) in batches.iter().enumerate() {
            if let Some(batch) = batches.get(round) {
                let batch = std::slice::from_ref(batch);
                topic.append(partition as u32, batch, None).await.unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(8)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_the_table_holds_every_bid_once_and_pyiceberg_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(SyncedLocal::open(dir.path()).unwrap());
    let log = EmbeddedLog::new(store.clone(), Path::from(""));
    let generated = generate_bids(2);
    let all: Vec<RecordBatch> = generated.iter().flatten().cloned().collect();
    let ends: HashMap<u32, u64> = generated
        .iter()
        .enumerate()
        .map(|(p, batches)| (p as u32, batches.iter().map(|b| b.num_rows() as u64).sum()))
        .collect();
    let bids = log
        .create_topic("bids", 2, NexmarkTable::Bid.schema())
        .await
        .unwrap();
    let appender = tokio::spawn(append_slowly(bids.clone(), generated));

    let checkpoints =
        Arc::new(ObjectStoreCheckpoints::new(store.clone(), Path::from(""), "copy_bids").unwrap());
    let mut rng = StdRng::seed_from_u64(17);
    let kills = 4;
    for run in 0..=kills {
        let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
            .await
            .unwrap();
        let graph = copy_job(catalog, &bids, &ends).await;
        let config = JobConfig {
            checkpoints: Some(CheckpointConfig::new(
                checkpoints.clone(),
                Duration::from_millis(30),
            )),
            ..JobConfig::default()
        };
        let job = spawn(graph, config).await.unwrap();
        if run == kills {
            job.join().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(30..150))).await;
        job.abort();
        let _ = job.join().await;
    }
    appender.await.unwrap();

    let schema = bids.schema();
    let expected = sorted_rows(&all, &schema);
    assert!(expected.len() > 1_000, "{} bids", expected.len());

    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    let table = catalog.load_table(TABLE).await.unwrap();
    let scanned: Vec<RecordBatch> = read_table(&table).await.unwrap();
    let got = sorted_rows(&scanned, &schema);
    assert_eq!(got.len(), expected.len(), "rows lost or duplicated");
    assert!(got == expected, "the table's rows differ from the bids");

    let mut epochs: Vec<u64> = Vec::new();
    let mut compactions = 0;
    for snapshot in table.metadata().snapshots() {
        let summary = &snapshot.summary().additional_properties;
        assert_eq!(summary[SINK_ID_PROPERTY], SINK_ID);
        match summary.get(EPOCH_PROPERTY) {
            Some(epoch) => epochs.push(epoch.parse().unwrap()),
            None => {
                assert!(
                    summary.contains_key(COMPACTED_EPOCH_PROPERTY),
                    "{summary:?}"
                );
                compactions += 1;
            }
        }
    }
    let appends = epochs.len();
    epochs.sort();
    epochs.dedup();
    assert_eq!(epochs.len(), appends, "an epoch was committed twice");
    assert!(appends > 1, "{appends} appends");
    assert!(compactions > 0, "no compaction in {appends} commits");
    let files = live_data_files(&table).await.unwrap().len();
    assert!(files < 2 * appends, "{files} files after {appends} commits");
    let snapshots = appends + compactions;

    // PyIceberg, through the same catalog file and name.
    let out = dir.path().join("pyiceberg.arrow");
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let output = Command::new(python)
        .arg(script("read_iceberg.py"))
        .arg(dir.path())
        .arg(CATALOG_NAME)
        .arg(format!("{NAMESPACE}.{TABLE}"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "read_iceberg.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["format_version"], 2);
    assert_eq!(report["snapshots"].as_array().unwrap().len(), snapshots);
    let file = std::fs::File::open(&out).unwrap();
    let read: Vec<RecordBatch> = arrow::ipc::reader::FileReader::try_new(file, None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let read_by_python = sorted_rows(&read, &schema);
    assert_eq!(read_by_python.len(), expected.len());
    assert!(read_by_python == expected, "PyIceberg read other rows");
}
