//! What each fault does to writes: applied or not, torn, and create-only preconditions.

use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{assert_injected, create, over_memory, read};
use crate::storage::*;

async fn check_write_faults(inner: Arc<dyn ObjectStore>) {
    let store = FaultyStore::new(Arc::clone(&inner), FaultConfig::none(), 1).unwrap();
    let faults = store.controller();
    let (a, b) = (Path::from("x/a"), Path::from("x/b"));
    let data = Bytes::from_static(b"0123456789abcdef");

    // FailBefore: nothing reaches the inner store.
    faults
        .set_config(FaultConfig::none().with_fail_before(1.0))
        .unwrap();
    assert_injected(
        store.put(&a, data.clone().into()).await,
        InjectedFault::FailBefore,
    );
    assert_eq!(read(inner.as_ref(), &a).await, None);
    inner.put(&a, data.clone().into()).await.unwrap();
    assert_injected(store.delete(&a).await, InjectedFault::FailBefore);
    assert_injected(store.copy(&a, &b).await, InjectedFault::FailBefore);
    assert_injected(store.rename(&a, &b).await, InjectedFault::FailBefore);
    assert_eq!(read(inner.as_ref(), &a).await, Some(data.clone()));
    assert_eq!(read(inner.as_ref(), &b).await, None);
    let mut upload = store.put_multipart(&b).await.unwrap();
    upload.put_part(data.clone().into()).await.unwrap();
    assert_injected(upload.complete().await, InjectedFault::FailBefore);
    assert_eq!(read(inner.as_ref(), &b).await, None);
    faults.set_enabled(false);
    upload.complete().await.unwrap();
    assert_eq!(read(inner.as_ref(), &b).await, Some(data.clone()));
    inner.delete(&b).await.unwrap();

    // ApplyThenTimeout: every call errors, yet took effect.
    let lost = InjectedFault::ApplyThenTimeout;
    faults
        .set_config(FaultConfig::none().with_apply_then_timeout(1.0))
        .unwrap();
    assert_injected(store.copy(&a, &b).await, lost);
    assert_eq!(read(inner.as_ref(), &b).await, Some(data.clone()));
    assert_injected(store.delete(&a).await, lost);
    assert_eq!(read(inner.as_ref(), &a).await, None);
    assert_injected(store.rename(&b, &a).await, lost);
    assert_eq!(read(inner.as_ref(), &a).await, Some(data.clone()));
    assert_eq!(read(inner.as_ref(), &b).await, None);
    assert_injected(
        store.put_opts(&b, data.clone().into(), create()).await,
        lost,
    );
    assert_eq!(read(inner.as_ref(), &b).await, Some(data.clone()));
    // The retry of a lost create sees its own object as AlreadyExists.
    faults.set_enabled(false);
    let retry = store.put_opts(&b, data.clone().into(), create()).await;
    assert!(matches!(
        retry,
        Err(object_store::Error::AlreadyExists { .. })
    ));
    faults.set_enabled(true);
    let c = Path::from("x/c");
    let mut upload = store.put_multipart(&c).await.unwrap();
    upload.put_part(data.clone().into()).await.unwrap();
    assert_injected(upload.complete().await, lost);
    assert_eq!(read(inner.as_ref(), &c).await, Some(data.clone()));

    // TruncateWrite: the put succeeds but stores a strict prefix.
    faults
        .set_config(FaultConfig::none().with_truncate_write(1.0))
        .unwrap();
    let d = Path::from("x/d");
    store.put(&d, data.clone().into()).await.unwrap();
    let torn = read(inner.as_ref(), &d).await.unwrap();
    assert!(
        torn.len() < data.len() && data.starts_with(&torn),
        "{torn:?}"
    );

    let stats = store.stats();
    assert_eq!((stats.fail_before, stats.apply_then_timeout), (5, 5));
    assert_eq!(stats.truncate_write, 1);
}

#[tokio::test]
async fn write_faults_over_in_memory() {
    check_write_faults(Arc::new(InMemory::new())).await;
}

#[tokio::test]
async fn write_faults_over_local_file_system() {
    let dir = tempfile::tempdir().unwrap();
    check_write_faults(Arc::new(
        LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn truncated_writes_are_strict_prefixes_of_chunked_payloads() {
    let store = over_memory(FaultConfig::none().with_truncate_write(1.0), 3);
    let chunks: Vec<Bytes> = (0..5u8).map(|i| Bytes::from(vec![i; 7])).collect();
    let whole: Vec<u8> = chunks.iter().flatten().copied().collect();
    let mut lengths = std::collections::BTreeSet::new();
    for i in 0..50 {
        let path = Path::from(format!("t/{i}"));
        let payload: PutPayload = chunks.iter().cloned().collect();
        store.put(&path, payload).await.unwrap();
        let stored = read(store.inner().as_ref(), &path).await.unwrap();
        assert!(stored.len() < whole.len());
        assert_eq!(&stored[..], &whole[..stored.len()]);
        lengths.insert(stored.len());
    }
    assert!(lengths.len() > 5, "{lengths:?}");
    // An empty payload has no strict prefix: it is stored as is and not counted.
    store
        .put(&Path::from("t/empty"), PutPayload::new())
        .await
        .unwrap();
    assert_eq!(store.stats().truncate_write, 50);
    assert_eq!(store.stats().calls, 51);
}

#[tokio::test]
async fn create_mode_conflicts_pass_through() {
    let store = over_memory(FaultConfig::failures(0.5), 9);
    let (path, other) = (Path::from("m/0"), Path::from("m/1"));
    store.set_enabled(false);
    store
        .put_opts(&path, "first".into(), create())
        .await
        .unwrap();
    store.put(&other, "other".into()).await.unwrap();
    let conflict = store.put_opts(&path, "second".into(), create()).await;
    assert!(matches!(
        conflict,
        Err(object_store::Error::AlreadyExists { .. })
    ));

    store.set_enabled(true);
    let (mut conflicts, mut injected) = (0, 0);
    for _ in 0..200 {
        let put = store.put_opts(&path, "again".into(), create()).await;
        let copy = store.copy_if_not_exists(&other, &path).await;
        for res in [put.map(|_| ()), copy] {
            match res {
                Err(object_store::Error::AlreadyExists { .. }) => conflicts += 1,
                Err(e) if is_injected(&e) => injected += 1,
                other => panic!("create over an existing object must fail: {other:?}"),
            }
        }
    }
    assert!(conflicts > 0 && injected > 0, "{conflicts} {injected}");
    let kept = read(store.inner().as_ref(), &path).await;
    assert_eq!(kept, Some(Bytes::from_static(b"first")));

    // A torn create still honours the precondition.
    let faults = store.controller();
    faults
        .set_config(FaultConfig::none().with_truncate_write(1.0))
        .unwrap();
    let torn = store.put_opts(&path, "third".into(), create()).await;
    assert!(matches!(
        torn,
        Err(object_store::Error::AlreadyExists { .. })
    ));
}
