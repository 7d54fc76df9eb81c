//! Crash points: the named call is applied, nothing after it reaches the store.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{assert_injected, create, over_memory, read};
use crate::storage::*;

fn point(op: OpKind, path: &str, occurrence: u64) -> CrashPoint {
    CrashPoint::new(op, path, occurrence).unwrap()
}

async fn check_put_crash(inner: Arc<dyn ObjectStore>) {
    let store = FaultyStore::new(Arc::clone(&inner), FaultConfig::none(), 1).unwrap();
    store.arm_crash(point(OpKind::Put, "/m/", 2));
    let (m1, m2, s1) = (
        Path::from("j/m/1"),
        Path::from("j/m/2"),
        Path::from("j/s/1"),
    );
    store.put_opts(&m1, "one".into(), create()).await.unwrap();
    store.put(&s1, "state".into()).await.unwrap();
    store.get(&m1).await.unwrap();
    assert_eq!(store.crash(), None);

    // The second put under `/m/` lands, but its caller sees an error.
    let res = store.put_opts(&m2, "two".into(), create()).await;
    assert_injected(res, InjectedFault::Crash);
    assert_eq!(read(inner.as_ref(), &m2).await, Some(Bytes::from("two")));
    let crash = store.crash().expect("the crash point fired");
    assert_eq!(crash.location, "j/m/2");
    assert_eq!(crash.calls, 4);

    // Every later call of any kind fails without reaching the store.
    let m3 = Path::from("j/m/3");
    assert_injected(store.put(&m3, "three".into()).await, InjectedFault::Down);
    assert_injected(store.get(&m1).await, InjectedFault::Down);
    assert_injected(store.head(&m1).await, InjectedFault::Down);
    assert_injected(store.delete(&s1).await, InjectedFault::Down);
    assert_injected(store.copy(&m1, &m3).await, InjectedFault::Down);
    let listed: Vec<_> = store.list(None).collect().await;
    assert!(matches!(&listed[..], [Err(e)] if injected_fault(e) == Some(InjectedFault::Down)));
    let mut upload = store.put_multipart(&m3).await.unwrap();
    upload.put_part("x".into()).await.unwrap();
    assert_injected(upload.complete().await, InjectedFault::Down);
    assert_eq!(read(inner.as_ref(), &m3).await, None);
    assert_eq!(read(inner.as_ref(), &s1).await, Some(Bytes::from("state")));

    let stats = store.stats();
    assert_eq!(stats.crashed, 8, "{stats:?}");
    assert_eq!(stats.failures(), 8);
    assert_eq!(stats.calls, 11);
    assert!(InjectedFault::Crash.was_applied() && !InjectedFault::Down.was_applied());
}

#[tokio::test]
async fn a_put_crash_applies_the_put_and_refuses_everything_after_it() {
    check_put_crash(Arc::new(InMemory::new())).await;
    let dir = tempfile::tempdir().unwrap();
    check_put_crash(Arc::new(
        LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn a_delete_crash_can_cut_a_batch_after_its_first_path() {
    let store = over_memory(FaultConfig::none(), 2);
    let paths: Vec<Path> = (0..4).map(|i| Path::from(format!("gc/{i}"))).collect();
    for path in &paths {
        store.put(path, "v".into()).await.unwrap();
    }
    // A single delete counts as one match, a batch as one per path.
    store.arm_crash(point(OpKind::Delete, "gc/", 2));
    store.delete(&paths[0]).await.unwrap();
    let batch = stream::iter(paths.clone().into_iter().skip(1).map(Ok)).boxed();
    let results: Vec<_> = store.delete_stream(batch).collect().await;
    assert_eq!(results.len(), 3);
    let faults: Vec<_> = results
        .iter()
        .map(|r| injected_fault(r.as_ref().unwrap_err()))
        .collect();
    assert_eq!(
        faults,
        [
            Some(InjectedFault::Crash),
            Some(InjectedFault::Down),
            Some(InjectedFault::Down)
        ]
    );
    let left: Vec<_> = (store.inner().list(None).map_ok(|m| m.location))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(left, paths[2..]);
    assert_eq!(store.crash().unwrap().location, "gc/1");
    // A delete stream started after the crash is refused as a whole.
    let later = stream::iter([Ok(paths[2].clone())]).boxed();
    let results: Vec<_> = store.delete_stream(later).collect().await;
    assert!(matches!(&results[..], [Err(e)] if injected_fault(e) == Some(InjectedFault::Down)));
    assert_eq!(store.stats().crashed, 4);
}

#[tokio::test]
async fn a_list_crash_runs_the_listing_and_loses_it() {
    let store = over_memory(FaultConfig::none(), 3);
    store.put(&Path::from("l/a"), "v".into()).await.unwrap();
    store.arm_crash(point(OpKind::List, "l", 1));
    store
        .list(Some(&Path::from("other")))
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let listed: Vec<_> = store.list(Some(&Path::from("l"))).collect().await;
    assert!(matches!(&listed[..], [Err(e)] if injected_fault(e) == Some(InjectedFault::Crash)));
    assert_eq!(store.crash().unwrap().point.op(), OpKind::List);
}

#[tokio::test]
async fn disabling_revives_and_rearming_starts_over() {
    let store = over_memory(FaultConfig::none().disabled(), 4);
    let faults = store.controller();
    let path = Path::from("r/x");
    faults.arm_crash(point(OpKind::Put, "r/", 1));
    // While disabled, the point neither counts nor fires.
    store.put(&path, "v".into()).await.unwrap();
    assert_eq!(faults.crash(), None);
    faults.set_enabled(true);
    assert_injected(store.put(&path, "w".into()).await, InjectedFault::Crash);
    assert_injected(store.get(&path).await, InjectedFault::Down);
    faults.set_enabled(false);
    assert_eq!(store.get(&path).await.unwrap().bytes().await.unwrap(), "w");
    faults.set_enabled(true);
    assert_injected(store.get(&path).await, InjectedFault::Down);
    faults.arm_crash(point(OpKind::Put, "r/", 2));
    assert_eq!(faults.crash(), None);
    store.put(&path, "y".into()).await.unwrap();
    assert_injected(store.put(&path, "z".into()).await, InjectedFault::Crash);
    faults.disarm_crash();
    store.put(&path, "after".into()).await.unwrap();
    assert_eq!(faults.crash(), None);
}

#[tokio::test]
async fn random_faults_keep_their_draws_when_a_crash_point_is_armed() {
    // The crash check consumes no randomness: up to the crash, an armed store injects
    // exactly the faults an unarmed one does.
    let outcomes = |armed: bool| async move {
        let store = over_memory(FaultConfig::failures(0.5), 7);
        if armed {
            store.arm_crash(point(OpKind::Put, "p/", 30));
        }
        let mut out = Vec::new();
        for i in 0..29 {
            let res = store.put(&Path::from(format!("p/{i}")), "v".into()).await;
            out.push(res.err().and_then(|e| injected_fault(&e)));
        }
        out
    };
    let (plain, armed) = (outcomes(false).await, outcomes(true).await);
    assert_eq!(plain, armed);
    assert!(plain.iter().any(Option::is_some) && plain.iter().any(Option::is_none));
}
