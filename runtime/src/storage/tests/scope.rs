//! Which calls get faults (switch, operation kinds), how streams fail, and naming.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{assert_injected, over_memory};
use crate::storage::*;

#[tokio::test]
async fn disabled_store_forwards_everything() {
    let store = over_memory(FaultConfig::failures(1.0).disabled(), 5);
    let faults = store.controller();
    assert!(!faults.is_enabled());
    for i in 0..50 {
        let path = Path::from(format!("h/{i}"));
        store.put(&path, "v".into()).await.unwrap();
        store.head(&path).await.unwrap();
    }
    assert_eq!(
        store
            .list(None)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len(),
        50
    );
    assert_eq!(store.stats().injected(), 0);
    assert_eq!(store.stats().calls, 101);

    store.set_enabled(true);
    assert!(store.head(&Path::from("h/0")).await.is_err());
    faults.set_enabled(false);
    store.head(&Path::from("h/0")).await.unwrap();
    assert_eq!(faults.stats().failures(), 1);
}

#[tokio::test]
async fn list_faults_fail_or_delay_the_whole_stream() {
    let store = over_memory(FaultConfig::none(), 2);
    for i in 0..5 {
        store
            .put(&Path::from(format!("l/{i}")), "v".into())
            .await
            .unwrap();
    }
    let (prefix, offset) = (Path::from("l"), Path::from("l/1"));
    for fault in [InjectedFault::FailBefore, InjectedFault::ApplyThenTimeout] {
        let config = match fault {
            InjectedFault::FailBefore => FaultConfig::none().with_fail_before(1.0),
            _ => FaultConfig::none().with_apply_then_timeout(1.0),
        };
        store.controller().set_config(config).unwrap();
        let all: Vec<_> = store.list(Some(&prefix)).collect().await;
        assert_eq!(all.len(), 1);
        let after: Vec<_> = store
            .list_with_offset(Some(&prefix), &offset)
            .collect()
            .await;
        assert_eq!(after.len(), 1);
        for res in all.into_iter().chain(after) {
            assert_injected(res, fault);
        }
        assert_injected(store.list_with_delimiter(Some(&prefix)).await, fault);
    }
    let slow = FaultConfig::none().with_latency(1.0, Duration::ZERO, Duration::from_millis(1));
    store.controller().set_config(slow).unwrap();
    let all: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
    assert_eq!(all.len(), 5);
    let after: Vec<_> = (store
        .list_with_offset(Some(&prefix), &offset)
        .try_collect()
        .await)
        .unwrap();
    assert_eq!(after.len(), 3);
    let listed = store.list_with_delimiter(Some(&prefix)).await.unwrap();
    assert_eq!(listed.objects.len(), 5);
    assert_eq!(store.stats().latency, 3);
}

#[tokio::test]
async fn latency_forwards_every_call() {
    let slow = FaultConfig::none().with_latency(1.0, Duration::ZERO, Duration::from_millis(1));
    let store = over_memory(slow, 4);
    for i in 0..20 {
        let path = Path::from(format!("s/{i}"));
        store.put(&path, "v".into()).await.unwrap();
        let ranges = store.get_ranges(&path, &[0..1, 0..1]).await.unwrap();
        assert_eq!(ranges.len(), 2);
        store.delete(&path).await.unwrap();
    }
    assert_eq!(store.stats().latency, 60);
    assert_eq!(store.stats().calls, 60);
}

#[tokio::test]
async fn only_configured_operations_fail() {
    let config = (FaultConfig::none().with_fail_before(1.0)).with_ops(OpKind::Put | OpKind::Delete);
    let store = over_memory(config, 6);
    let path = Path::from("o/x");
    store.inner().put(&path, "v".into()).await.unwrap();
    assert!(store.put(&path, "w".into()).await.is_err());
    assert!(store.delete(&path).await.is_err());
    store.get(&path).await.unwrap();
    store.head(&path).await.unwrap();
    store.list(None).try_collect::<Vec<_>>().await.unwrap();
    store.copy(&path, &Path::from("o/y")).await.unwrap();
    // get_ranges and rename make one decision each, not one per range / sub-call.
    store.get_ranges(&path, &[0..1, 0..1]).await.unwrap();
    store
        .rename(&Path::from("o/y"), &Path::from("o/z"))
        .await
        .unwrap();
    assert_eq!(store.stats().failures(), 2);
    assert_eq!(store.stats().calls, 8);
}

#[test]
fn display_and_debug_name_the_store_and_its_faults() {
    let store = over_memory(FaultConfig::failures(0.2), 42);
    let shown = store.to_string();
    assert!(
        shown.starts_with("FaultyStore(seed=42, fail_before=0.1"),
        "{shown}"
    );
    assert!(shown.contains("InMemory"), "{shown}");
    let debug = format!("{store:?}");
    assert!(
        debug.contains("stats") && debug.contains("enabled: true"),
        "{debug}"
    );
}
