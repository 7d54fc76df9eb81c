//! The sink on the object-store catalog (a data root in S3; here in memory): the same
//! exactly-once commits, compaction through the pointer swap, and a commit that lost the
//! race for a version refused instead of overwriting.

use std::num::NonZeroUsize;

use iceberg::spec::Operation;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;

use super::*;
use crate::iceberg::compaction::Compaction;

fn catalog(store: &Arc<dyn ObjectStore>) -> IcebergCatalog {
    IcebergCatalog::on_object_store(
        store.clone(),
        Path::from("data"),
        "s3://bucket",
        runnel_runtime::Ambient::system(),
    )
}

async fn store_sink(store: &Arc<dyn ObjectStore>) -> IcebergSink {
    IcebergSink::new(catalog(store), "out", "job.sink", schema())
        .await
        .unwrap()
        .with_compaction(Some(Compaction {
            every_commits: NonZeroUsize::new(2).unwrap(),
            ..Compaction::default()
        }))
}

#[tokio::test]
async fn epochs_commit_once_and_compact_in_the_store() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let sink = store_sink(&store).await;
    let mut staged = Vec::new();
    for epoch in 1..=4u64 {
        let base = epoch as i64 * 10;
        let one = vec![stage(&sink, 0, epoch, vec![rows(base..base + 5)]).await];
        sink.commit(epoch, 0, one.clone()).await.unwrap();
        staged.push(one);
    }
    // A restart on the same store replays every epoch: nothing is added.
    let restarted = store_sink(&store).await;
    for (epoch, one) in (1..=4u64).zip(staged) {
        restarted.commit(epoch, 0, one).await.unwrap();
    }
    let table = restarted.table().await.unwrap();
    assert_eq!(epochs(&table), vec![1, 2, 3, 4]);
    let replaces = table
        .metadata()
        .snapshots()
        .filter(|s| s.summary().operation == Operation::Replace)
        .count();
    assert_eq!(replaces, 2);
    assert_eq!(
        read(&table).await,
        rows_in(&[10..15, 20..25, 30..35, 40..45])
    );

    // Everything is in the store, under the data root: pointers, metadata, data files.
    let listed: Vec<_> =
        futures::TryStreamExt::try_collect::<Vec<_>>(store.list(Some(&Path::from("data"))))
            .await
            .unwrap();
    let names: Vec<String> = listed.iter().map(|m| m.location.to_string()).collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("data/catalog/iceberg/default/out/"))
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("data/warehouse/default/out/metadata/"))
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("data/warehouse/default/out/data/"))
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("data/sinks/job.sink/committed/"))
    );
}

#[tokio::test]
async fn a_commit_on_an_old_version_is_refused_and_retried_on_the_new_one() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let catalog = catalog(&store);
    let sink = IcebergSink::new(catalog.clone(), "out", "job.sink", schema())
        .await
        .unwrap();
    let one = stage(&sink, 0, 1, vec![rows(0..3)]).await;
    let two = stage(&sink, 0, 2, vec![rows(3..6)]).await;
    // Two transactions planned on the same (empty) table: the second one to commit finds
    // its version taken, and iceberg's retry applies it on the newer table.
    let table = catalog.load_table("out").await.unwrap();
    let append = |staged: Staged| {
        let files = super::super::staged::decode(staged.pre_commit.meta, table.metadata()).unwrap();
        let transaction = Transaction::new(&table);
        transaction
            .fast_append()
            .add_data_files(files)
            .apply(Transaction::new(&table))
            .unwrap()
    };
    let (first, second) = (append(one), append(two));
    first.commit(catalog.catalog().as_ref()).await.unwrap();
    second.commit(catalog.catalog().as_ref()).await.unwrap();
    let table = catalog.load_table("out").await.unwrap();
    assert_eq!(table.metadata().snapshots().len(), 2);
    assert_eq!(read(&table).await, rows(0..6));

    // The raw swap of a version that moved on changes nothing.
    let ident = IcebergCatalog::table_ident("out");
    let stale = "s3://bucket/data/warehouse/default/out/metadata/stale.metadata.json";
    let swap = catalog.metadata_swap().unwrap();
    assert!(!swap.swap(&ident, stale, stale).await.unwrap());
    let after = catalog.load_table("out").await.unwrap();
    assert_eq!(after.metadata_location(), table.metadata_location());
}
