//! Tests of [`RetryingStore`] over a [`FaultyStore`]. The oracle is a map of what each
//! successful (or recognised) operation must have left behind, checked against the inner
//! store read directly, bypassing both wrappers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{create, read};
use crate::storage::*;

mod streams;

/// The default number of attempts, with backoffs short enough for tests.
pub(super) fn quick() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_micros(10),
        max_backoff: Duration::from_micros(100),
        ..RetryPolicy::default()
    }
}

/// `RetryingStore(FaultyStore(inner))`, plus the faulty store to read its counters.
pub(super) fn stack(
    inner: Arc<dyn ObjectStore>,
    faults: FaultConfig,
    seed: u64,
) -> (RetryingStore, Arc<FaultyStore>) {
    let faulty = Arc::new(FaultyStore::new(inner, faults, seed).unwrap());
    let store = RetryingStore::new(Arc::clone(&faulty) as _, quick()).unwrap();
    (store, faulty)
}

fn is_not_found<T>(res: &object_store::Result<T>) -> bool {
    matches!(res, Err(object_store::Error::NotFound { .. }))
}

pub(super) async fn sorted_locations(
    stream: BoxStream<'_, object_store::Result<ObjectMeta>>,
) -> Vec<String> {
    let mut got: Vec<String> = stream
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    got.sort();
    got
}

/// 500 random create-only puts (distinct paths), gets, heads, lists and deletes through
/// 20% failures. Nothing may fail except as the model predicts: a create or delete
/// whose response was lost after it applied is reported as `AlreadyExists` (resp.
/// `NotFound` on stores that report deleting a missing object).
async fn random_workload(inner: Arc<dyn ObjectStore>, seed: u64) {
    let (store, faulty) = stack(Arc::clone(&inner), FaultConfig::failures(0.2), seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut oracle: BTreeMap<String, Bytes> = BTreeMap::new();
    let (mut lost_creates, mut deleted) = (0, 0);
    for step in 0..500u32 {
        let lost_before = faulty.stats().apply_then_timeout;
        let lost = || faulty.stats().apply_then_timeout > lost_before;
        let existing: Vec<String> = oracle.keys().cloned().collect();
        let pick =
            (!existing.is_empty()).then(|| existing[rng.random_range(0..existing.len())].clone());
        match (rng.random_range(0..10), pick) {
            (0..=3, _) | (_, None) => {
                let path = format!("w/{}/{step:03}", rng.random_range(0..5));
                let len = rng.random_range(1..64);
                let bytes: Bytes = (0..len).map(|_| rng.random::<u8>()).collect();
                let res = store
                    .put_opts(&Path::from(path.as_str()), bytes.clone().into(), create())
                    .await;
                match res {
                    Ok(_) => assert!(!lost(), "step {step}: lost create reported Ok"),
                    Err(object_store::Error::AlreadyExists { .. }) if lost() => lost_creates += 1,
                    Err(e) => panic!("step {step}: put {path}: {e}"),
                }
                // Either way the object holds exactly the intended bytes.
                assert_eq!(
                    read(inner.as_ref(), &Path::from(path.as_str())).await,
                    Some(bytes.clone())
                );
                oracle.insert(path, bytes);
            }
            (4..=5, Some(path)) => {
                let got = store.get(&Path::from(path.as_str())).await.unwrap();
                assert_eq!(got.bytes().await.unwrap(), oracle[&path], "step {step}");
                let missing = Path::from(format!("w/missing/{step}"));
                assert!(is_not_found(&store.get(&missing).await), "step {step}");
            }
            (6, Some(path)) => {
                let bytes = store.get_bytes(&Path::from(path.as_str())).await.unwrap();
                assert_eq!(bytes, oracle[&path], "step {step}");
                let meta = store.head(&Path::from(path.as_str())).await.unwrap();
                assert_eq!(meta.size, oracle[&path].len() as u64, "step {step}");
            }
            (7..=8, Some(path)) => {
                let prefix = format!("w/{}", rng.random_range(0..5));
                let under = |k: &&String| k.starts_with(&format!("{prefix}/"));
                let expected: Vec<String> = oracle.keys().filter(under).cloned().collect();
                let got = sorted_locations(store.list(Some(&Path::from(prefix.as_str())))).await;
                assert_eq!(got, expected, "step {step}");
                let after: Vec<String> = expected.into_iter().filter(|k| *k > path).collect();
                let offset = Path::from(path.as_str());
                let got = store.list_with_offset(Some(&Path::from(prefix.as_str())), &offset);
                assert_eq!(sorted_locations(got).await, after, "step {step}");
            }
            (_, Some(path)) => {
                let res = store.delete(&Path::from(path.as_str())).await;
                assert!(
                    res.is_ok() || (is_not_found(&res) && lost()),
                    "step {step}: {res:?}"
                );
                assert_eq!(read(inner.as_ref(), &Path::from(path.as_str())).await, None);
                oracle.remove(&path);
                deleted += 1;
            }
        }
    }
    assert_outcome(inner.as_ref(), &oracle, &store, &faulty).await;
    assert!(
        lost_creates > 0 && deleted > 0,
        "the workload must hit the lost-create case"
    );
}

#[tokio::test]
async fn random_workload_over_memory_succeeds_despite_faults() {
    for seed in [1, 2, 3] {
        random_workload(Arc::new(InMemory::new()), seed).await;
    }
}

#[tokio::test]
async fn random_workload_over_local_files_succeeds_despite_faults() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    random_workload(Arc::new(local), 4).await;
}

#[tokio::test]
async fn definitive_errors_are_returned_after_one_attempt() {
    let (store, faulty) = stack(Arc::new(InMemory::new()), FaultConfig::none(), 0);
    let path = Path::from("d/a");
    let put = store.put_opts(&path, "v1".into(), create()).await.unwrap();
    let mut calls = 1;
    // Each definitive error costs exactly one attempt, on both wrappers.
    let mut check = |what: &str, res: object_store::Result<()>| {
        let err = res.expect_err(what);
        assert!(!is_retryable(&err), "{what}: {err}");
        calls += 1;
        let once = RetryStats {
            attempts: calls,
            retries: 0,
            gave_up: 0,
        };
        assert_eq!(store.stats(), once, "{what}");
        assert_eq!(faulty.stats().calls, calls, "{what}");
    };
    let missing = Path::from("d/none");
    check("get missing", store.get(&missing).await.map(drop));
    check("head missing", store.head(&missing).await.map(drop));
    let again = store.put_opts(&path, "v2".into(), create()).await;
    check("second create", again.map(drop));
    let stale = UpdateVersion {
        e_tag: Some("stale".into()),
        version: None,
    };
    let update = PutOptions::from(PutMode::Update(stale));
    let res = store.put_opts(&path, "v2".into(), update).await;
    check("stale update", res.map(drop));
    let unmodified = GetOptions::new().with_if_none_match(put.e_tag);
    check(
        "unmodified get",
        store.get_opts(&path, unmodified).await.map(drop),
    );
    check(
        "copy onto existing",
        store.copy_if_not_exists(&path, &path).await,
    );
    assert_eq!(
        read(faulty.inner().as_ref(), &path).await,
        Some(Bytes::from("v1"))
    );
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let (store, faulty) = stack(Arc::new(InMemory::new()), FaultConfig::failures(1.0), 9);
    let path = Path::from("g/a");
    let err = store
        .put_opts(&path, "v".into(), create())
        .await
        .unwrap_err();
    assert!(
        is_injected(&err),
        "the last error is returned unchanged: {err}"
    );
    assert_eq!(
        store.stats(),
        RetryStats {
            attempts: 8,
            retries: 7,
            gave_up: 1
        }
    );
    assert_eq!(faulty.stats().calls, 8);

    let listed: Vec<_> = store.list(None).collect().await;
    assert!(
        matches!(&listed[..], [Err(e)] if is_injected(e)),
        "{listed:?}"
    );
    assert!(store.delete(&path).await.is_err());
    assert!(store.get_bytes(&path).await.is_err());
    assert_eq!(
        store.stats(),
        RetryStats {
            attempts: 32,
            retries: 28,
            gave_up: 4
        }
    );

    faulty.set_enabled(false);
    store.put_opts(&path, "v".into(), create()).await.ok(); // may have applied before
    assert_eq!(store.get_bytes(&path).await.unwrap(), Bytes::from("v"));
    let once = RetryPolicy {
        max_attempts: 1,
        ..quick()
    };
    faulty.set_enabled(true);
    let store = RetryingStore::new(Arc::clone(&faulty) as _, once).unwrap();
    assert!(store.head(&path).await.is_err());
    assert_eq!(
        store.stats(),
        RetryStats {
            attempts: 1,
            retries: 0,
            gave_up: 1
        }
    );
}

/// The inner store holds exactly the model's objects, and every injected failure cost
/// exactly one retry (every attempt one faulty call).
async fn assert_outcome(
    inner: &dyn ObjectStore,
    oracle: &BTreeMap<String, Bytes>,
    store: &RetryingStore,
    faulty: &FaultyStore,
) {
    let mut contents = BTreeMap::new();
    for location in sorted_locations(inner.list(None)).await {
        let bytes = read(inner, &Path::from(location.as_str())).await.unwrap();
        contents.insert(location, bytes);
    }
    assert_eq!(&contents, oracle);
    let (retries, faults) = (store.stats(), faulty.stats());
    assert_eq!(retries.gave_up, 0, "{retries:?}");
    assert_eq!(retries.retries, faults.failures(), "{retries:?} {faults:?}");
    assert_eq!(retries.attempts, faults.calls, "{retries:?} {faults:?}");
    assert!(
        faults.fail_before > 20 && faults.apply_then_timeout > 20,
        "{faults:?}"
    );
}
