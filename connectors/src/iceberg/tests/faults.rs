//! Crash points inside phase 2 and other writers of the same table: a commit whose reply
//! is lost, a ledger write that fails, foreign appends between and inside commits, a rival
//! whose snapshot expired, and the sink's snapshot retention. Each ends with one snapshot
//! per epoch and exactly the rows that were written.

use std::num::NonZeroUsize;

use object_store::path::Path;
use runnel_runtime::storage::{FaultConfig, FaultyStore, OpKind};

use super::unreliable::{Fault, UnreliableCatalog};
use super::*;
use crate::iceberg::layer::Layered;

/// The embedded catalog of `dir`, with its Iceberg catalog wrapped in an
/// [`UnreliableCatalog`].
async fn unreliable(dir: &TempDir) -> (IcebergCatalog, Arc<Layered<UnreliableCatalog>>) {
    let healthy = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    let wrapper = Arc::new(Layered(UnreliableCatalog::new(healthy.catalog().clone())));
    let catalog = IcebergCatalog::new(
        wrapper.clone(),
        healthy.store().clone(),
        Path::from(""),
        healthy.ambient().clone(),
    );
    (catalog, wrapper)
}

#[tokio::test]
async fn a_lost_commit_reply_is_resolved_from_the_table_without_committing_again() {
    for retryable in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, wrapper) = unreliable(&dir).await;
        let sink = IcebergSink::new(catalog, "out", "job.sink", schema())
            .await
            .unwrap();
        let staged = vec![stage(&sink, 0, 1, vec![rows(0..3)]).await];
        wrapper.0.arm(Fault::ApplyThenTimeout { retryable });
        // The catalog applied the commit and the reply was lost: the sink reloads the
        // table, finds the epoch and neither commits again nor fails.
        sink.commit(1, 0, staged.clone()).await.unwrap();
        assert_eq!(wrapper.0.updates(), 1, "retryable: {retryable}");
        let ledger = dir
            .path()
            .join("sinks/job.sink/committed/00000000000000000001");
        assert!(ledger.exists(), "the resolved epoch is recorded");
        // A retry, then a restart on a healthy catalog: nothing is committed twice.
        sink.commit(1, 0, staged.clone()).await.unwrap();
        let restarted = super::sink(&dir, "job.sink").await;
        restarted.commit(1, 0, staged).await.unwrap();
        assert_eq!(wrapper.0.updates(), 1, "retryable: {retryable}");
        let next = vec![stage(&restarted, 0, 2, vec![rows(3..5)]).await];
        restarted.commit(2, 0, next).await.unwrap();
        let table = restarted.table().await.unwrap();
        assert_eq!(epochs(&table), vec![1, 2], "retryable: {retryable}");
        assert_eq!(read(&table).await, rows(0..5));
    }
}

#[tokio::test]
async fn a_failed_ledger_write_is_made_good_from_the_snapshot_log() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    // Every ledger write fails before it reaches storage: the process "dies" after the
    // catalog's reply and before its own bookkeeping.
    let config = FaultConfig::none()
        .with_fail_before(1.0)
        .with_ops(OpKind::Put);
    let broken = FaultyStore::new(healthy.store().clone(), config, 1).unwrap();
    let catalog = IcebergCatalog::new(
        healthy.catalog().clone(),
        Arc::new(broken),
        Path::from(""),
        healthy.ambient().clone(),
    );
    let sink = IcebergSink::new(catalog, "out", "job.sink", schema())
        .await
        .unwrap();
    let staged = vec![stage(&sink, 0, 1, vec![rows(0..3)]).await];
    assert!(sink.commit(1, 0, staged.clone()).await.is_err());
    assert_eq!(epochs(&sink.table().await.unwrap()), vec![1]);
    // Retried while the ledger is still broken: the snapshot log alone skips it.
    assert!(sink.commit(1, 0, staged.clone()).await.is_err());
    assert_eq!(epochs(&sink.table().await.unwrap()), vec![1]);
    // Restarted with a working store: skipped, and the ledger learns the epoch.
    let restarted = super::sink(&dir, "job.sink").await;
    restarted.commit(1, 0, staged).await.unwrap();
    let ledger = dir
        .path()
        .join("sinks/job.sink/committed/00000000000000000001");
    assert!(ledger.exists());
    let table = restarted.table().await.unwrap();
    assert_eq!(epochs(&table), vec![1]);
    assert_eq!(read(&table).await, rows(0..3));
}

#[tokio::test]
async fn a_foreign_append_between_commits_neither_duplicates_nor_loses_one() {
    let dir = tempfile::tempdir().unwrap();
    let sink = super::sink(&dir, "job.sink").await;
    let one = vec![stage(&sink, 0, 1, vec![rows(0..2)]).await];
    let two = vec![stage(&sink, 0, 2, vec![rows(2..4)]).await];
    sink.commit(1, 0, one.clone()).await.unwrap();
    let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    foreign_append(&catalog, rows(100..103)).await;
    sink.commit(2, 0, two.clone()).await.unwrap();
    foreign_append(&catalog, rows(200..201)).await;
    // The newest snapshot is foreign: a restart still finds both epochs.
    let restarted = super::sink(&dir, "job.sink").await;
    restarted.commit(1, 0, one).await.unwrap();
    restarted.commit(2, 0, two).await.unwrap();
    let table = restarted.table().await.unwrap();
    assert_eq!(table.metadata().snapshots().len(), 4);
    assert_eq!(epochs(&table), vec![1, 2]);
    assert_eq!(read(&table).await, rows_in(&[0..4, 100..103, 200..201]));
}

#[tokio::test]
async fn a_foreign_append_inside_a_commit_makes_it_retry_on_the_new_table_once() {
    let dir = tempfile::tempdir().unwrap();
    let (catalog, wrapper) = unreliable(&dir).await;
    let sink = IcebergSink::new(catalog, "out", "job.sink", schema())
        .await
        .unwrap();
    let staged = vec![stage(&sink, 0, 1, vec![rows(0..3)]).await];
    let healthy = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    // Another writer commits after the sink loaded the table and before its commit lands.
    wrapper.0.arm(Fault::Interleave(Box::pin(async move {
        foreign_append(&healthy, rows(100..102)).await;
    })));
    sink.commit(1, 0, staged.clone()).await.unwrap();
    assert_eq!(
        wrapper.0.updates(),
        2,
        "the conflicting commit is retried once"
    );
    sink.commit(1, 0, staged).await.unwrap();
    let table = sink.table().await.unwrap();
    assert_eq!(table.metadata().snapshots().len(), 2);
    assert_eq!(epochs(&table), vec![1]);
    assert_eq!(read(&table).await, rows_in(&[0..3, 100..102]));
}

#[tokio::test]
async fn a_rival_commit_whose_snapshot_expired_is_found_in_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let (catalog, wrapper) = unreliable(&dir).await;
    let slow = IcebergSink::new(catalog, "out", "job.sink", schema())
        .await
        .unwrap();
    let rival = super::sink(&dir, "job.sink").await;
    let late = vec![stage(&slow, 0, 1, vec![rows(50..53)]).await];
    let first = vec![stage(&rival, 0, 1, vec![rows(0..3)]).await];
    // While the slow instance commits epoch 1, a rival instance of the same sink commits
    // it first; a foreign append follows and expiry removes the rival's snapshot, so the
    // table the slow instance reloads holds no trace of epoch 1, only the ledger does.
    let healthy = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
        .await
        .unwrap();
    wrapper.0.arm(Fault::Interleave(Box::pin(async move {
        rival.commit(1, 0, first).await.unwrap();
        foreign_append(&healthy, rows(100..102)).await;
        assert!(epochs(&expire_all_but_current(&healthy).await).is_empty());
    })));
    slow.commit(1, 0, late).await.unwrap();
    let table = slow.table().await.unwrap();
    assert_eq!(table.metadata().snapshots().len(), 1);
    assert_eq!(read(&table).await, rows_in(&[0..3, 100..102]));
}

#[tokio::test]
async fn retention_keeps_the_newest_snapshots_and_replayed_epochs_add_none() {
    let dir = tempfile::tempdir().unwrap();
    let keep = NonZeroUsize::new(2).unwrap();
    let sink = super::sink(&dir, "job.sink")
        .await
        .with_snapshot_retention(keep);
    let mut staged = Vec::new();
    for epoch in 1..=5 {
        let ids = (epoch as i64 - 1) * 2..epoch as i64 * 2;
        staged.push(vec![stage(&sink, 0, epoch, vec![rows(ids)]).await]);
        sink.commit(epoch, 0, staged.last().unwrap().clone())
            .await
            .unwrap();
        let table = sink.table().await.unwrap();
        assert_eq!(
            table.metadata().snapshots().len(),
            (epoch as usize).min(keep.get()),
            "after epoch {epoch}"
        );
    }
    let table = sink.table().await.unwrap();
    assert_eq!(epochs(&table), vec![4, 5]);
    assert_eq!(read(&table).await, rows(0..10));
    // A restart replays every epoch, the expired ones included: none is appended again.
    let restarted = super::sink(&dir, "job.sink")
        .await
        .with_snapshot_retention(keep);
    for (epoch, staged) in (1..).zip(staged) {
        restarted.commit(epoch, 0, staged).await.unwrap();
    }
    let table = restarted.table().await.unwrap();
    assert_eq!(epochs(&table), vec![4, 5]);
    assert_eq!(read(&table).await, rows(0..10));
}
