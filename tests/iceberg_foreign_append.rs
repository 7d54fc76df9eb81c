//! Another engine writes the sink's table between two commits: PyIceberg appends rows
//! through the same SQL catalog after the sink staged an epoch and before it commits it.
//! The sink's commit lands on top of the foreign snapshot, a restart that replays both
//! epochs adds nothing, and the table holds the sink's rows and the foreign rows once each.

// Tests wait on and time real processes with the machine's clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::process::Command;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use runnel_connectors::iceberg::{
    CATALOG_NAME, EPOCH_PROPERTY, IcebergCatalog, IcebergSink, NAMESPACE, SINK_ID_PROPERTY,
    read_table,
};
use runnel_runtime::{Epoch, Sink, Staged};

use common::python::{python, script};

const TABLE: &str = "out";
const SINK_ID: &str = "job.sink";

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn rows(ids: std::ops::Range<i64>) -> RecordBatch {
    let names: Vec<String> = ids.clone().map(|i| format!("n{i}")).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

async fn sink(dir: &std::path::Path) -> IcebergSink {
    let catalog = IcebergCatalog::embedded(dir, runnel_runtime::Ambient::system())
        .await
        .unwrap();
    IcebergSink::new(catalog, TABLE, SINK_ID, schema())
        .await
        .unwrap()
}

async fn stage(sink: &IcebergSink, epoch: Epoch, batch: RecordBatch) -> Vec<Staged> {
    let mut writer = sink.open(0, 1).await.unwrap();
    writer.write(batch).await.unwrap();
    let pre_commit = writer.pre_commit(epoch).await.unwrap();
    vec![Staged {
        subtask: 0,
        pre_commit,
    }]
}

/// Appends `batch` to the table with PyIceberg; the summary of its snapshot.
fn pyiceberg_append(dir: &std::path::Path, batch: &RecordBatch) -> serde_json::Value {
    let file = dir.join("foreign.arrow");
    let mut writer =
        arrow::ipc::writer::FileWriter::try_new(std::fs::File::create(&file).unwrap(), &schema())
            .unwrap();
    writer.write(batch).unwrap();
    writer.finish().unwrap();
    let output = Command::new(python())
        .arg(script("append_iceberg.py"))
        .arg(dir)
        .arg(CATALOG_NAME)
        .arg(format!("{NAMESPACE}.{TABLE}"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "append_iceberg.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    report["summary"].clone()
}

/// The table's current rows, sorted by id, without field metadata.
async fn read(catalog: &IcebergCatalog) -> RecordBatch {
    let table = catalog.load_table(TABLE).await.unwrap();
    let batches: Vec<RecordBatch> = read_table(&table).await.unwrap();
    let stripped: Vec<RecordBatch> = batches
        .iter()
        .map(|b| RecordBatch::try_new(schema(), b.columns().to_vec()).unwrap())
        .collect();
    let all = concat_batches(&schema(), &stripped).unwrap();
    let order = sort_to_indices(all.column(0), None, None).unwrap();
    take_record_batch(&all, &order).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pyiceberg_append_between_two_commits_is_neither_duplicated_nor_lost() {
    let dir = tempfile::tempdir().unwrap();
    let first = sink(dir.path()).await;
    let one = stage(&first, 1, rows(0..3)).await;
    first.commit(1, 0, one.clone()).await.unwrap();
    // Epoch 2 is staged against the table as it was before the foreign append.
    let two = stage(&first, 2, rows(3..6)).await;

    let foreign = tokio::task::block_in_place(|| pyiceberg_append(dir.path(), &rows(100..104)));
    assert_eq!(foreign["operation"], "append");
    assert!(foreign.get(SINK_ID_PROPERTY).is_none());
    first.commit(2, 0, two.clone()).await.unwrap();

    // A restart replays both epochs; the newest snapshot is the sink's, the one before it
    // foreign.
    let restarted = sink(dir.path()).await;
    restarted.commit(1, 0, one).await.unwrap();
    restarted.commit(2, 0, two).await.unwrap();

    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    let table = catalog.load_table(TABLE).await.unwrap();
    let epochs: Vec<Option<String>> = table
        .metadata()
        .history()
        .iter()
        .map(|entry| {
            let snapshot = table.metadata().snapshot_by_id(entry.snapshot_id).unwrap();
            snapshot
                .summary()
                .additional_properties
                .get(EPOCH_PROPERTY)
                .cloned()
        })
        .collect();
    assert_eq!(
        epochs,
        vec![Some("1".to_string()), None, Some("2".to_string())],
        "snapshots in commit order"
    );
    let expected = concat_batches(&schema(), &[rows(0..6), rows(100..104)]).unwrap();
    let expected = take_record_batch(
        &expected,
        &sort_to_indices(expected.column(0), None, None).unwrap(),
    )
    .unwrap();
    assert_eq!(read(&catalog).await, expected);
}
