//! Tests of [`FaultyStore`] against `InMemory` and `LocalFileSystem`. The oracle is the
//! inner store itself, read directly (bypassing faults) after each faulty call.

mod crash;
mod retry;
mod scope;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::*;
use crate::Error;

pub(super) fn over_memory(config: FaultConfig, seed: u64) -> FaultyStore {
    FaultyStore::new(Arc::new(InMemory::new()), config, seed).unwrap()
}

pub(super) fn create() -> PutOptions {
    PutOptions::from(PutMode::Create)
}

pub(super) async fn read(store: &dyn ObjectStore, path: &Path) -> Option<Bytes> {
    match store.get(path).await {
        Ok(got) => Some(got.bytes().await.unwrap()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("unexpected error reading {path}: {e}"),
    }
}

pub(super) fn assert_injected<T: std::fmt::Debug>(
    res: object_store::Result<T>,
    fault: InjectedFault,
) {
    let err = res.expect_err("expected an injected fault");
    assert_eq!(injected_fault(&err), Some(fault), "{err}");
    assert!(matches!(
        err,
        object_store::Error::Generic {
            store: "faulty",
            ..
        }
    ));
}

/// A fixed mix of every operation kind; records each outcome as a string.
async fn script(store: &FaultyStore) -> Vec<String> {
    let mut log = Vec::new();
    for i in 0..240u32 {
        let path = Path::from(format!("d/{}", i % 13));
        let out = match i % 6 {
            0 => store
                .put(&path, PutPayload::from(vec![i as u8; 64]))
                .await
                .map(|_| String::new()),
            1 => match store.get(&path).await {
                Ok(got) => got.bytes().await.map(|b| b.len().to_string()),
                Err(e) => Err(e),
            },
            2 => store.head(&path).await.map(|m| m.size.to_string()),
            3 => (store
                .list(Some(&Path::from("d")))
                .try_collect::<Vec<_>>()
                .await)
                .map(|all| all.len().to_string()),
            4 => store.delete(&path).await.map(|_| String::new()),
            _ => (store.copy(&path, &Path::from(format!("c/{i}"))).await).map(|_| String::new()),
        };
        log.push(match out {
            Ok(s) => format!("ok {s}"),
            Err(e) => format!("err {e}"),
        });
    }
    let mut contents: Vec<String> = store
        .inner()
        .list(None)
        .map_ok(|meta| format!("{}={}", meta.location, meta.size))
        .try_collect()
        .await
        .unwrap();
    contents.sort();
    log.extend(contents);
    log
}

fn mixed() -> FaultConfig {
    FaultConfig::failures(0.2)
        .with_latency(0.1, Duration::ZERO, Duration::from_micros(200))
        .with_truncate_write(0.1)
}

#[tokio::test]
async fn same_seed_and_calls_give_the_same_faults() {
    let (a, b, c) = (
        over_memory(mixed(), 7),
        over_memory(mixed(), 7),
        over_memory(mixed(), 8),
    );
    let (log_a, log_b, log_c) = (script(&a).await, script(&b).await, script(&c).await);
    assert_eq!(log_a, log_b);
    assert_eq!(a.stats(), b.stats());
    assert_ne!(log_a, log_c, "another seed should inject other faults");
    let stats = a.stats();
    assert_eq!(stats.calls, 240);
    assert!(stats.fail_before > 0 && stats.apply_then_timeout > 0 && stats.latency > 0);
    assert!(stats.truncate_write > 0, "{stats:?}");
}

/// Checks what each fault does to every write operation, with the inner store as oracle.
#[tokio::test]
async fn failure_preset_fails_about_the_configured_fraction() {
    let store = over_memory(FaultConfig::failures(0.2), 11);
    let path = Path::from("r/x");
    store.inner().put(&path, "seed".into()).await.unwrap();
    let mut errors = 0;
    for i in 0..2000 {
        let res = if i % 2 == 0 {
            store.put(&path, "v".into()).await.map(|_| ())
        } else {
            store.head(&path).await.map(|_| ())
        };
        if let Err(e) = res {
            assert!(is_injected(&e), "{e}");
            errors += 1;
        }
    }
    let stats = store.stats();
    assert_eq!(stats.calls, 2000);
    assert_eq!(stats.failures(), errors);
    // Expected 400 (sd ~18) and 200 per kind (sd ~13): loose bounds.
    assert!((300..=500).contains(&errors), "{stats:?}");
    assert!((130..=270).contains(&stats.fail_before), "{stats:?}");
    assert!((130..=270).contains(&stats.apply_then_timeout), "{stats:?}");
}

#[test]
fn invalid_configs_are_rejected() {
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let res = FaultyStore::new(Arc::clone(&inner), FaultConfig::failures(1.5), 0);
    assert!(matches!(res, Err(Error::Plan(_))));
    let store = FaultyStore::new(inner, FaultConfig::failures(0.2), 0).unwrap();
    let bad = store.controller().set_config(FaultConfig::failures(3.0));
    assert!(matches!(bad, Err(Error::Plan(_))));
    assert_eq!(store.config(), FaultConfig::failures(0.2));
}
