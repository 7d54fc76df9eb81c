//! Compaction: the sink's small files merged into a `replace` snapshot that readers and
//! the sink's own idempotence check understand, and that never overwrites a concurrent
//! commit.

use std::num::NonZeroUsize;

use iceberg::spec::Operation;

use super::*;
use crate::iceberg::compaction::{Compaction, commits_since_compaction};

fn every(commits: usize) -> Option<Compaction> {
    Some(Compaction {
        every_commits: NonZeroUsize::new(commits).unwrap(),
        ..Compaction::default()
    })
}

/// Commits epochs `epochs` of two subtasks, ten rows each, and returns what was staged.
async fn commit_epochs(
    sink: &IcebergSink,
    epochs: std::ops::RangeInclusive<u64>,
) -> Vec<Vec<Staged>> {
    let mut all = Vec::new();
    for epoch in epochs {
        let base = epoch as i64 * 100;
        let staged = vec![
            stage(sink, 0, epoch, vec![rows(base..base + 10)]).await,
            stage(sink, 1, epoch, vec![rows(base + 10..base + 20)]).await,
        ];
        sink.commit(epoch, 0, staged.clone()).await.unwrap();
        all.push(staged);
    }
    all
}

fn expected(epochs: std::ops::RangeInclusive<u64>) -> RecordBatch {
    let ranges: Vec<_> = epochs
        .map(|e| e as i64 * 100)
        .map(|base| base..base + 20)
        .collect();
    rows_in(&ranges)
}

fn operations(table: &Table) -> Vec<Operation> {
    let mut snapshots: Vec<_> = table.metadata().snapshots().collect();
    snapshots.sort_by_key(|s| s.sequence_number());
    snapshots
        .iter()
        .map(|s| s.summary().operation.clone())
        .collect()
}

#[tokio::test]
async fn every_n_commits_the_small_files_become_one_replace_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&dir, "job.sink").await.with_compaction(every(3));
    commit_epochs(&sink, 1..=7).await;
    let table = sink.table().await.unwrap();

    // Appends 1-3, replace, appends 4-6, replace, append 7.
    use Operation::{Append, Replace};
    assert_eq!(
        operations(&table),
        [
            Append, Append, Append, Replace, Append, Append, Append, Replace, Append
        ]
    );
    // One snapshot per epoch still, and the compactions name the newest epoch they hold.
    assert_eq!(epochs(&table), (1..=7).collect::<Vec<_>>());
    let compacted: Vec<&str> = table
        .metadata()
        .snapshots()
        .filter_map(|s| {
            s.summary()
                .additional_properties
                .get(COMPACTED_EPOCH_PROPERTY)
        })
        .map(String::as_str)
        .collect();
    assert!(
        compacted.contains(&"3") && compacted.contains(&"6"),
        "{compacted:?}"
    );
    // 14 files were appended: epochs 1-3 became one file, epochs 4-6 another (a
    // compaction's output waits until there are 3 of them), epoch 7 added 2.
    let files = live_data_files(&table).await.unwrap();
    assert_eq!(files.len(), 4, "{files:?}");
    assert_eq!(read(&table).await, expected(1..=7));
    assert_eq!(commits_since_compaction(table.metadata(), "job.sink"), 1);

    // Epochs 7-9 become a third compacted file; at epoch 12 the three are merged with
    // epochs 10-12 into one.
    commit_epochs(&sink, 8..=9).await;
    let table = sink.table().await.unwrap();
    assert_eq!(live_data_files(&table).await.unwrap().len(), 3);
    commit_epochs(&sink, 10..=12).await;
    let table = sink.table().await.unwrap();
    assert_eq!(live_data_files(&table).await.unwrap().len(), 1);
    assert_eq!(read(&table).await, expected(1..=12));
    assert_eq!(epochs(&table), (1..=12).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_replayed_epoch_is_skipped_when_only_the_compaction_remembers_it() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&dir, "job.sink").await.with_compaction(every(3));
    let staged = commit_epochs(&sink, 1..=3).await;
    // The appends expire, the ledger is lost: only the replace snapshot knows epochs 1-3.
    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    let table = expire_all_but_current(&catalog).await;
    assert_eq!(operations(&table), [Operation::Replace]);
    std::fs::remove_dir_all(dir.path().join("sinks")).unwrap();

    // A restart replays its newest checkpoint's epoch, the one the compaction names.
    let restarted = super::sink(&dir, "job.sink")
        .await
        .with_compaction(every(3));
    let newest = staged.into_iter().last().unwrap();
    restarted.commit(3, 0, newest).await.unwrap();
    let table = restarted.table().await.unwrap();
    assert_eq!(operations(&table), [Operation::Replace]);
    assert_eq!(read(&table).await, expected(1..=3));
}

#[tokio::test]
async fn foreign_files_are_kept_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&dir, "job.sink").await.with_compaction(None);
    commit_epochs(&sink, 1..=2).await;
    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    foreign_append(&catalog, rows(5000..5005)).await;
    commit_epochs(&sink, 3..=3).await;

    let done = compact(&catalog, "out", "job.sink", &Compaction::default())
        .await
        .unwrap()
        .expect("six small files of the sink");
    assert_eq!(
        (done.files_removed, done.files_added, done.rows),
        (6, 1, 60)
    );
    let table = catalog.load_table("out").await.unwrap();
    let files = live_data_files(&table).await.unwrap();
    assert_eq!(files.len(), 2);
    assert!(
        files
            .iter()
            .any(|f| f.file_path().contains("foreign.writer-"))
    );
    let all = concat_batches(&schema(), &[expected(1..=3), rows(5000..5005)]).unwrap();
    let order = sort_to_indices(all.column(0), None, None).unwrap();
    assert_eq!(read(&table).await, take_record_batch(&all, &order).unwrap());
    // Nothing left to merge: a second pass does nothing.
    assert!(
        compact(&catalog, "out", "job.sink", &Compaction::default())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_swap_planned_on_old_metadata_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&dir, "job.sink").await.with_compaction(None);
    commit_epochs(&sink, 1..=1).await;
    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    let before = catalog.load_table("out").await.unwrap();
    let stale = before.metadata_location().unwrap().to_string();
    commit_epochs(&sink, 2..=2).await;
    let now = catalog.load_table("out").await.unwrap();
    let current = now.metadata_location().unwrap().to_string();

    // A compaction planned on the metadata of epoch 1 must not replace epoch 2's commit.
    let swap = catalog.metadata_swap().unwrap();
    let ident = IcebergCatalog::table_ident("out");
    assert!(!swap.swap(&ident, &stale, &stale).await.unwrap());
    let after = catalog.load_table("out").await.unwrap();
    assert_eq!(after.metadata_location().unwrap(), current);
    assert_eq!(read(&after).await, expected(1..=2));
}

/// Commits a snapshot that adds a position delete file (as another engine's row-level
/// delete would) on top of the current one; the file itself is never read here.
async fn add_position_delete(catalog: &IcebergCatalog) {
    use iceberg::spec::{
        DataContentType, DataFileBuilder, DataFileFormat, MAIN_BRANCH, ManifestListWriter,
        ManifestWriterBuilder, Snapshot, SnapshotReference, SnapshotRetention, Struct, Summary,
    };
    use iceberg::{TableRequirement, TableUpdate};

    let table = catalog.load_table("out").await.unwrap();
    let metadata = table.metadata();
    let current = metadata.current_snapshot().unwrap();
    let (id, sequence) = (
        current.snapshot_id() + 1_000,
        metadata.next_sequence_number(),
    );
    let location = metadata.location();
    let delete = DataFileBuilder::default()
        .content(DataContentType::PositionDeletes)
        .file_path(format!("{location}/data/foreign-deletes.parquet"))
        .file_format(DataFileFormat::Parquet)
        .partition(Struct::empty())
        .record_count(1)
        .file_size_in_bytes(100)
        .partition_spec_id(metadata.default_partition_spec_id())
        .build()
        .unwrap();
    let output = table
        .file_io()
        .new_output(format!("{location}/metadata/foreign-deletes-m0.avro"))
        .unwrap();
    let mut writer = ManifestWriterBuilder::new(
        output,
        Some(id),
        metadata.current_schema().clone(),
        metadata.default_partition_spec().as_ref().clone(),
    )
    .build_v2_deletes();
    writer.add_file(delete, sequence).unwrap();
    let manifest = writer.write_manifest_file().await.unwrap();
    let mut manifests = table
        .manifest_list_reader(current)
        .load()
        .await
        .unwrap()
        .entries()
        .to_vec();
    manifests.push(manifest);
    let list_path = format!("{location}/metadata/snap-{id}-foreign.avro");
    let output = table.file_io().new_output(list_path.clone()).unwrap();
    let output = output.writer().await.unwrap();
    let mut list = ManifestListWriter::v2(output, id, Some(current.snapshot_id()), sequence);
    list.add_manifests(manifests.into_iter()).unwrap();
    list.close().await.unwrap();
    let snapshot = Snapshot::builder()
        .with_snapshot_id(id)
        .with_parent_snapshot_id(Some(current.snapshot_id()))
        .with_sequence_number(sequence)
        .with_timestamp_ms(current.timestamp_ms() + 1)
        .with_manifest_list(list_path)
        .with_summary(Summary {
            operation: Operation::Delete,
            additional_properties: Default::default(),
        })
        .with_schema_id(metadata.current_schema_id())
        .build();
    let updates = vec![
        TableUpdate::AddSnapshot { snapshot },
        TableUpdate::SetSnapshotRef {
            ref_name: MAIN_BRANCH.to_string(),
            reference: SnapshotReference::new(id, SnapshotRetention::branch(None, None, None)),
        },
    ];
    let requirements = vec![TableRequirement::RefSnapshotIdMatch {
        r#ref: MAIN_BRANCH.to_string(),
        snapshot_id: Some(current.snapshot_id()),
    }];
    let ident = IcebergCatalog::table_ident("out");
    let done = commit_raw(catalog, &ident, requirements, updates)
        .await
        .unwrap();
    assert!(matches!(done, RawCommit::Committed(_)), "{done:?}");
}

#[tokio::test]
async fn files_a_delete_file_may_apply_to_are_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&dir, "job.sink").await.with_compaction(None);
    commit_epochs(&sink, 1..=3).await;
    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    add_position_delete(&catalog).await;
    let policy = Compaction {
        every_commits: NonZeroUsize::MIN,
        ..Compaction::default()
    };
    let done = compact(&catalog, "out", "job.sink", &policy).await.unwrap();
    assert_eq!(done, None, "files older than a delete file were rewritten");

    // Files newer than every delete file are compacted as usual; the older ones stay.
    commit_epochs(&sink, 4..=5).await;
    let before = live_data_files(&sink.table().await.unwrap()).await.unwrap();
    let done = compact(&catalog, "out", "job.sink", &policy)
        .await
        .unwrap()
        .expect("the newer files to merge");
    assert_eq!(done.files_removed, 4);
    let after = live_data_files(&sink.table().await.unwrap()).await.unwrap();
    assert_eq!(after.len(), before.len() - 4 + done.files_added);
}
