//! The Iceberg sink against the embedded catalog in a temporary directory: rows read back
//! through iceberg's scan, repeated and racing commits, crashes between the phases.

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use runnel_runtime::{Error, PreCommit, Sink, Staged};
use tempfile::TempDir;

use super::*;

mod compaction;
mod evolution;
mod faults;
mod forged;
mod store_catalog;
mod unreliable;

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

async fn sink(dir: &TempDir, sink_id: &str) -> IcebergSink {
    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    IcebergSink::new(catalog, "out", sink_id, schema())
        .await
        .unwrap()
}

/// Writes `batches` through a fresh writer of `subtask` and pre-commits `epoch`.
async fn stage(
    sink: &IcebergSink,
    subtask: usize,
    epoch: u64,
    batches: Vec<RecordBatch>,
) -> Staged {
    let mut writer = sink.open(subtask, 2).await.unwrap();
    for batch in batches {
        writer.write(batch).await.unwrap();
    }
    let pre_commit = writer.pre_commit(epoch).await.unwrap();
    Staged {
        subtask,
        pre_commit,
    }
}

/// Every row of the table's current snapshot, sorted by id, without field metadata.
async fn read(table: &Table) -> RecordBatch {
    let batches: Vec<RecordBatch> = read_table(table).await.unwrap();
    let all = concat_batches(&schema(), &batches.iter().map(strip).collect::<Vec<_>>()).unwrap();
    let order = sort_to_indices(all.column(0), None, None).unwrap();
    take_record_batch(&all, &order).unwrap()
}

fn strip(batch: &RecordBatch) -> RecordBatch {
    RecordBatch::try_new(schema(), batch.columns().to_vec()).unwrap()
}

/// The rows of several id ranges, in order.
fn rows_in(ranges: &[std::ops::Range<i64>]) -> RecordBatch {
    let batches: Vec<RecordBatch> = ranges.iter().cloned().map(rows).collect();
    concat_batches(&schema(), &batches).unwrap()
}

/// The epochs of the table's snapshots that a sink committed (others have none).
fn epochs(table: &Table) -> Vec<u64> {
    let mut epochs: Vec<u64> = table
        .metadata()
        .snapshots()
        .filter_map(|s| {
            let epoch = s.summary().additional_properties.get(EPOCH_PROPERTY)?;
            Some(epoch.parse().unwrap())
        })
        .collect();
    epochs.sort();
    epochs
}

#[tokio::test]
async fn committed_rows_read_back_and_repeats_add_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&dir, "job.sink").await;
    let a = stage(&sink, 0, 1, vec![rows(0..3), rows(3..5)]).await;
    let b = stage(&sink, 1, 1, vec![rows(5..8)]).await;
    assert!(
        sink.table()
            .await
            .unwrap()
            .metadata()
            .current_snapshot()
            .is_none()
    );

    let staged = vec![a, b];
    sink.commit(1, 0, staged.clone()).await.unwrap();
    sink.commit(1, 0, staged).await.unwrap();
    let table = sink.table().await.unwrap();
    assert_eq!(epochs(&table), vec![1]);
    assert_eq!(read(&table).await, rows(0..8));
    let summary = &table.metadata().current_snapshot().unwrap().summary();
    assert_eq!(summary.additional_properties[SINK_ID_PROPERTY], "job.sink");
    assert_eq!(
        table.metadata().format_version(),
        iceberg::spec::FormatVersion::V2
    );

    let c = stage(&sink, 0, 2, vec![rows(8..10)]).await;
    sink.commit(2, 0, vec![c]).await.unwrap();
    let table = sink.table().await.unwrap();
    assert_eq!(epochs(&table), vec![1, 2]);
    assert_eq!(read(&table).await, rows(0..10));
}

#[tokio::test]
async fn a_crash_between_the_phases_commits_each_epoch_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = sink(&dir, "job.sink").await;
    let staged = vec![stage(&first, 0, 1, vec![rows(0..4)]).await];
    // The writer is gone and the process dies before phase 2; the checkpoint kept `staged`.
    drop(first);
    let restarted = sink(&dir, "job.sink").await;
    restarted.commit(1, 0, staged.clone()).await.unwrap();
    // A crash right after the commit, before the runtime noted it: committed again.
    let again = sink(&dir, "job.sink").await;
    again.commit(1, 0, staged).await.unwrap();
    let next = vec![stage(&again, 0, 2, vec![rows(4..6)]).await];
    again.commit(2, 0, next).await.unwrap();
    let table = again.table().await.unwrap();
    assert_eq!(epochs(&table), vec![1, 2]);
    assert_eq!(read(&table).await, rows(0..6));
}

#[tokio::test]
async fn the_snapshot_log_alone_prevents_a_second_commit() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&dir, "job.sink").await;
    let staged = vec![stage(&sink, 0, 1, vec![rows(0..2)]).await];
    sink.commit(1, 0, staged.clone()).await.unwrap();
    // Lose the ledger: the table's snapshots still know epoch 1.
    std::fs::remove_dir_all(dir.path().join("sinks")).unwrap();
    sink.commit(1, 0, staged).await.unwrap();
    assert_eq!(epochs(&sink.table().await.unwrap()), vec![1]);
    // ... and the ledger was written again from them.
    let ledger = dir
        .path()
        .join("sinks/job.sink/committed/00000000000000000001");
    assert!(ledger.exists());
}

#[tokio::test]
async fn the_ledger_alone_prevents_a_second_commit_after_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let first = sink(&dir, "job.sink").await;
    let one = vec![stage(&first, 0, 1, vec![rows(0..2)]).await];
    let two = vec![stage(&first, 0, 2, vec![rows(2..4)]).await];
    first.commit(1, 0, one.clone()).await.unwrap();
    first.commit(2, 0, two.clone()).await.unwrap();
    // Another writer appends, then every snapshot but the current (foreign) one expires:
    // the metadata no longer knows any epoch of the sink.
    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    foreign_append(&catalog, rows(100..102)).await;
    let table = expire_all_but_current(&catalog).await;
    assert_eq!(table.metadata().snapshots().len(), 1);
    assert!(epochs(&table).is_empty());
    // A restart replays both epochs.
    let restarted = sink(&dir, "job.sink").await;
    restarted.commit(1, 0, one).await.unwrap();
    restarted.commit(2, 0, two).await.unwrap();
    let table = restarted.table().await.unwrap();
    assert_eq!(table.metadata().snapshots().len(), 1);
    assert_eq!(read(&table).await, rows_in(&[0..4, 100..102]));
}

#[tokio::test]
async fn a_stale_instance_cannot_commit_an_older_epoch_late() {
    let dir = tempfile::tempdir().unwrap();
    let zombie = sink(&dir, "job.sink").await;
    let late = vec![stage(&zombie, 0, 3, vec![rows(100..101)]).await];
    let successor = sink(&dir, "job.sink").await;
    let newer = vec![stage(&successor, 0, 4, vec![rows(0..2)]).await];
    successor.commit(4, 0, newer).await.unwrap();
    zombie.commit(3, 0, late).await.unwrap();
    let table = successor.table().await.unwrap();
    assert_eq!(epochs(&table), vec![4]);
    assert_eq!(read(&table).await, rows(0..2));
}

#[tokio::test]
async fn an_older_writer_generation_is_fenced_and_the_summary_names_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let successor = sink(&dir, "job.sink").await;
    let first = vec![stage(&successor, 0, 1, vec![rows(0..2)]).await];
    successor.commit(1, 3, first).await.unwrap();
    // A zombie of generation 2 reaching phase 2 of a newer epoch is refused.
    let zombie = sink(&dir, "job.sink").await;
    let late = vec![stage(&zombie, 0, 2, vec![rows(100..101)]).await];
    let refused = zombie.commit(2, 2, late).await.unwrap_err();
    assert!(refused.is_fenced(), "{refused}");
    let second = vec![stage(&successor, 0, 2, vec![rows(2..3)]).await];
    successor.commit(2, 3, second).await.unwrap();
    let table = successor.table().await.unwrap();
    assert_eq!(epochs(&table), vec![1, 2]);
    assert_eq!(read(&table).await, rows(0..3));
    let generations: Vec<String> = table
        .metadata()
        .snapshots()
        .map(|s| s.summary().additional_properties[WRITER_GENERATION_PROPERTY].clone())
        .collect();
    assert_eq!(generations, ["3", "3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_commits_of_one_epoch_append_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&dir, "job.sink").await;
    let staged = vec![stage(&sink, 0, 1, vec![rows(0..3)]).await];
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let (sink, staged) = (sink.clone(), staged.clone());
            tokio::spawn(async move { sink.commit(1, 0, staged).await })
        })
        .collect();
    let mut failures = 0;
    for racer in racers {
        // A racer that loses may report the conflict; it must never append twice.
        if racer.await.unwrap().is_err() {
            failures += 1;
        }
    }
    assert!(failures < 4, "no racer committed");
    let table = sink.table().await.unwrap();
    assert_eq!(epochs(&table), vec![1]);
    assert_eq!(read(&table).await, rows(0..3));
}

#[tokio::test]
async fn other_sinks_and_empty_epochs_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let a = sink(&dir, "job-a.sink").await;
    let b = sink(&dir, "job-b.sink").await;
    a.commit(1, 0, vec![stage(&a, 0, 1, vec![rows(0..1)]).await])
        .await
        .unwrap();
    b.commit(1, 0, vec![stage(&b, 0, 1, vec![rows(1..2)]).await])
        .await
        .unwrap();
    let idle = stage(&a, 0, 2, vec![]).await;
    assert_eq!(idle.pre_commit, PreCommit::default());
    a.commit(2, 0, vec![idle]).await.unwrap();
    let table = a.table().await.unwrap();
    assert_eq!(epochs(&table), vec![1, 1]);
    assert_eq!(read(&table).await, rows(0..2));
}

#[tokio::test]
async fn foreign_or_damaged_descriptions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&dir, "job.sink").await;
    let mut staged = stage(&sink, 0, 1, vec![rows(0..1)]).await;
    let meta = staged.pre_commit.meta.to_string();
    let location = sink
        .table()
        .await
        .unwrap()
        .metadata()
        .location()
        .to_string();
    let elsewhere = meta.replace(&location, "file:///tmp/elsewhere");
    staged.pre_commit.meta = serde_json::from_str(&elsewhere).unwrap();
    let err = sink.commit(1, 0, vec![staged]).await.unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err}");
    let damaged = Staged {
        subtask: 0,
        pre_commit: PreCommit {
            meta: serde_json::json!({"files": [{"file_path": 1}]}),
            batches: vec![],
        },
    };
    assert!(sink.commit(1, 0, vec![damaged]).await.is_err());
    assert!(epochs(&sink.table().await.unwrap()).is_empty());
}

#[tokio::test]
async fn an_existing_table_must_fit_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    sink(&dir, "job.sink").await;
    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    let other = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
    let err = IcebergSink::new(catalog.clone(), "out", "job.other", other)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Plan(_)), "{err}");
    let err = IcebergSink::new(catalog, "../out", "job.sink", schema())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Plan(_)), "{err}");
}

/// Appends `batch` as another writer would: a snapshot without the sink's properties.
async fn foreign_append(catalog: &IcebergCatalog, batch: RecordBatch) -> Table {
    let writer = IcebergSink::new(catalog.clone(), "out", "foreign.writer", schema())
        .await
        .unwrap();
    let staged = stage(&writer, 0, 1, vec![batch]).await;
    let table = catalog.load_table("out").await.unwrap();
    let files = super::staged::decode(staged.pre_commit.meta, table.metadata()).unwrap();
    let transaction = Transaction::new(&table);
    let append = transaction.fast_append().add_data_files(files);
    let transaction = append.apply(transaction).unwrap();
    transaction
        .commit(catalog.catalog().as_ref())
        .await
        .unwrap()
}

/// Expires every snapshot of the table but the current one.
async fn expire_all_but_current(catalog: &IcebergCatalog) -> Table {
    let table = catalog.load_table("out").await.unwrap();
    let transaction = Transaction::new(&table);
    let expire = transaction
        .expire_snapshots()
        .retain_last(1)
        .expire_older_than_ms(i64::MAX);
    let transaction = expire.apply(transaction).unwrap();
    transaction
        .commit(catalog.catalog().as_ref())
        .await
        .unwrap()
}
