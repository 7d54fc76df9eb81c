//! The conditional-write probe against real stores and against stores that lie.

use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, PutMode, PutOptions, PutPayload, PutResult};

use super::probe::*;
use crate::storage::{Layered, StoreLayer};

/// `InMemory` with conditional modes turned into plain overwrites: what a store that
/// accepts the headers but ignores them does.
#[derive(Debug)]
struct Ignores {
    inner: Arc<dyn ObjectStore>,
    create: bool,
    update: bool,
}

impl Ignores {
    fn store(create: bool, update: bool) -> Layered<Ignores> {
        Layered::wrap(Ignores {
            inner: Arc::new(InMemory::new()),
            create,
            update,
        })
    }
}

#[async_trait]
impl StoreLayer for Ignores {
    fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let ignored = match opts.mode {
            PutMode::Create => self.create,
            PutMode::Update(_) => self.update,
            PutMode::Overwrite => false,
        };
        if ignored {
            opts.mode = PutMode::Overwrite;
        }
        self.inner.put_opts(location, payload, opts).await
    }
}

async fn probe_and_check_cleanup(store: &dyn ObjectStore) -> ProbeReport {
    let scratch = Path::from("scratch/probe");
    let report = probe_conditional_writes(store, &scratch).await.unwrap();
    let left: Vec<ObjectMeta> = store.list(Some(&scratch)).try_collect().await.unwrap();
    assert!(left.is_empty(), "probe objects left behind: {left:?}");
    report
}

#[tokio::test]
async fn in_memory_is_capable() {
    let report = probe_and_check_cleanup(&InMemory::new()).await;
    assert_eq!(report.create, CreateSupport::Atomic);
    assert_eq!(report.update, UpdateSupport::RefusedWhenStale);
    assert!(report.exactly_once_capable());
    report.require_exactly_once().unwrap();
}

#[tokio::test]
async fn local_file_system_is_capable_without_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    let report = probe_and_check_cleanup(&store).await;
    assert_eq!(report.create, CreateSupport::Atomic);
    assert_eq!(report.update, UpdateSupport::Unsupported);
    assert!(report.exactly_once_capable());
    // Probing twice works: the first probe cleaned up.
    assert_eq!(probe_and_check_cleanup(&store).await, report);
}

#[tokio::test]
async fn a_store_ignoring_create_is_refused_with_a_clear_message() {
    let store = Ignores::store(true, false);
    let report = probe_and_check_cleanup(&store).await;
    assert!(
        matches!(report.create, CreateSupport::NotAtomic { .. }),
        "{report:?}"
    );
    assert!(!report.exactly_once_capable());
    let err = report.require_exactly_once().unwrap_err().to_string();
    let expected = format!(
        "object store at {} does not honour conditional creates (two PutMode::Create on one \
         path both succeeded",
        report.root
    );
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("it cannot run exactly-once jobs"), "{err}");
    assert!(err.contains("scratch/probe"), "{err}");
}

#[tokio::test]
async fn a_store_ignoring_update_preconditions_is_refused() {
    let store = Ignores::store(false, true);
    let report = probe_and_check_cleanup(&store).await;
    assert_eq!(report.create, CreateSupport::Atomic);
    assert_eq!(report.update, UpdateSupport::NotHonoured);
    assert!(!report.exactly_once_capable());
    let err = report.require_exactly_once().unwrap_err().to_string();
    assert!(err.contains("stale version"), "{err}");
}

#[tokio::test]
async fn shared_arc_stores_probe_too() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let report = probe_conditional_writes(store.as_ref(), &Path::from("p"))
        .await
        .unwrap();
    assert!(report.exactly_once_capable());
}
