//! Snapshots another writer of the table forges with the sink's `runnel.*` summary keys:
//! a huge epoch skips nothing, a huge writer generation fences nothing, a missing table
//! is reported, never recreated empty.

use std::collections::HashMap;

use iceberg::spec::{
    MAIN_BRANCH, Operation, Snapshot, SnapshotReference, SnapshotRetention, Summary,
};
use iceberg::{TableRequirement, TableUpdate};

use super::*;

/// Commits, on top of the current snapshot, a snapshot with the same files whose summary
/// carries `properties` (what any client of the catalog can do).
async fn forge(dir: &TempDir, properties: &[(&str, &str)]) {
    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    let table = catalog.load_table("out").await.unwrap();
    let metadata = table.metadata();
    let current = metadata.current_snapshot().unwrap();
    let id = current.snapshot_id() + 1_000;
    let summary = Summary {
        operation: Operation::Append,
        additional_properties: properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    };
    let snapshot = Snapshot::builder()
        .with_snapshot_id(id)
        .with_parent_snapshot_id(Some(current.snapshot_id()))
        .with_sequence_number(metadata.next_sequence_number())
        .with_timestamp_ms(current.timestamp_ms() + 1)
        .with_manifest_list(current.manifest_list().to_string())
        .with_summary(summary)
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
    let done = commit_raw(&catalog, &ident, requirements, updates)
        .await
        .unwrap();
    assert!(matches!(done, RawCommit::Committed(_)), "{done:?}");
}

#[tokio::test]
async fn a_forged_huge_epoch_or_generation_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&dir, "job.sink").await;
    let first = vec![stage(&sink, 0, 1, vec![rows(0..2)]).await];
    sink.commit(1, 5, first).await.unwrap();
    let huge = u64::MAX.to_string();
    forge(
        &dir,
        &[
            (SINK_ID_PROPERTY, "job.sink"),
            (EPOCH_PROPERTY, &huge),
            (WRITER_GENERATION_PROPERTY, &huge),
            (COMPACTED_EPOCH_PROPERTY, &huge),
        ],
    )
    .await;
    // A forged generation on an epoch the ledger records with another one.
    forge(
        &dir,
        &[
            (SINK_ID_PROPERTY, "job.sink"),
            (EPOCH_PROPERTY, "1"),
            (WRITER_GENERATION_PROPERTY, &huge),
        ],
    )
    .await;
    for epoch in 2..=3 {
        let staged = vec![
            stage(
                &sink,
                0,
                epoch,
                vec![rows(epoch as i64 * 10..epoch as i64 * 10 + 1)],
            )
            .await,
        ];
        sink.commit(epoch, 5, staged).await.unwrap();
    }
    let table = sink.table().await.unwrap();
    let mut expected = rows(0..2);
    for id in [20, 30] {
        expected = concat_batches(&schema(), &[expected, rows(id..id + 1)]).unwrap();
    }
    assert_eq!(read(&table).await, expected);
}

#[tokio::test]
async fn a_dropped_table_is_an_error_not_a_restart_or_a_new_table() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&dir, "job.sink").await;
    let first = vec![stage(&sink, 0, 1, vec![rows(0..2)]).await];
    sink.commit(1, 1, first).await.unwrap();
    let second = vec![stage(&sink, 0, 2, vec![rows(2..3)]).await];
    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    catalog
        .catalog()
        .drop_table(&IcebergCatalog::table_ident("out"))
        .await
        .unwrap();
    let error = sink.commit(2, 1, second).await.unwrap_err();
    assert!(matches!(error, Error::NotFound(_)), "{error}");
    let error = IcebergSink::new(catalog, "out", "job.sink", schema())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::NotFound(m) if m.contains("dropped")),
        "{error}"
    );
}
