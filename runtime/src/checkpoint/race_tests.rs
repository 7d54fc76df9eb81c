//! Races and faults at the edge: a zombie's checkpoint landing between a successor's
//! read and its fence, a zombie whose next number was garbage-collected, creates whose
//! outcome is lost, and the whole protocol on `LocalFileSystem`.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use tokio::sync::oneshot;

use super::driver_tests::{chain_of, check_restorable, job_store, write_epoch};
use super::*;
use crate::error::{Error, Result};

/// How [`Hooked::create_manifest`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// The manifest is written, then the call fails: the caller cannot tell.
    ApplyThenFail,
    /// The client retried after a lost response: the retry finds the object it wrote.
    RetryAfterLanding,
}

/// Wraps a store; can pause before the next manifest create and inject create faults.
#[derive(Debug)]
struct Hooked {
    inner: ObjectStoreCheckpoints,
    /// The fault and how many more creates it applies to.
    fault: Mutex<(Fault, usize)>,
    #[allow(clippy::type_complexity)]
    gate: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl Hooked {
    fn new(inner: ObjectStoreCheckpoints) -> Self {
        Hooked {
            inner,
            fault: Mutex::new((Fault::None, 0)),
            gate: Mutex::new(None),
        }
    }

    fn set_fault(&self, fault: Fault, times: usize) {
        *self.fault.lock().unwrap() = (fault, times);
    }

    fn next_fault(&self) -> Fault {
        let mut fault = self.fault.lock().unwrap();
        if fault.1 == 0 {
            return Fault::None;
        }
        fault.1 -= 1;
        fault.0
    }
}

#[async_trait]
impl CheckpointStore for Hooked {
    fn job(&self) -> &str {
        self.inner.job()
    }
    async fn list_manifests(&self, after: Option<u64>) -> Result<Vec<u64>> {
        self.inner.list_manifests(after).await
    }
    async fn read_manifest(&self, seq: u64) -> Result<Result<Manifest, CorruptManifest>> {
        self.inner.read_manifest(seq).await
    }
    async fn create_manifest(&self, manifest: &Manifest) -> Result<CreateOutcome> {
        let gate = self.gate.lock().unwrap().take();
        if let Some((reached, release)) = gate {
            reached.send(()).unwrap();
            release.await.unwrap();
        }
        let fault = self.next_fault();
        let outcome = self.inner.create_manifest(manifest).await?;
        match fault {
            Fault::None => Ok(outcome),
            Fault::ApplyThenFail => Err(Error::external("creating manifest", "timed out")),
            Fault::RetryAfterLanding => self.inner.create_manifest(manifest).await,
        }
    }
    async fn delete_manifest(&self, seq: u64) -> Result<()> {
        self.inner.delete_manifest(seq).await
    }
    async fn put_state_file(
        &self,
        key: &StateFileKey,
        data: Bytes,
        rows: u64,
    ) -> Result<StateFile> {
        self.inner.put_state_file(key, data, rows).await
    }
    async fn read_state_file(&self, file: &StateFile) -> Result<Bytes> {
        self.inner.read_state_file(file).await
    }
    async fn list_state_files(&self) -> Result<Vec<String>> {
        self.inner.list_state_files().await
    }
    async fn delete_state_file(&self, path: &str) -> Result<()> {
        self.inner.delete_state_file(path).await
    }
}

fn memory() -> ObjectStoreCheckpoints {
    job_store(Arc::new(InMemory::new()))
}

async fn commit_epoch(
    store: &dyn CheckpointStore,
    pos: &mut ChainPosition,
    epoch: u64,
) -> Result<CommitOutcome> {
    let meta = write_epoch(store, pos.generation(), epoch).await;
    commit_checkpoint(store, pos, meta).await
}

#[tokio::test]
async fn a_zombie_checkpoint_landing_before_the_fence_is_restored_from() {
    let base = memory();
    let mut zombie = start(&base, CorruptPolicy::FailClosed)
        .await
        .unwrap()
        .position;
    commit_epoch(&base, &mut zombie, 1).await.unwrap();

    let (reached_tx, reached_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    let hooked = Arc::new(Hooked::new(base.clone()));
    *hooked.gate.lock().unwrap() = Some((reached_tx, release_rx));
    let successor = {
        let hooked = hooked.clone();
        tokio::spawn(async move { start(hooked.as_ref(), CorruptPolicy::FailClosed).await })
    };
    // The successor read the chain (newest: epoch 1) and is about to write its fence at
    // number 2; the zombie completes epoch 2 and takes that number first.
    reached_rx.await.unwrap();
    let outcome = commit_epoch(&base, &mut zombie, 2).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed { seq: 2 });
    release_tx.send(()).unwrap();

    let started = successor.await.unwrap().unwrap();
    let restored = started.restore.as_ref().unwrap();
    assert_eq!((restored.epoch, restored.generation), (2, 1));
    assert_eq!((started.seq, started.generation), (3, 2));
    check_restorable(&base, restored).await;
    let outcome = commit_epoch(&base, &mut zombie, 3).await.unwrap();
    assert_eq!(
        outcome,
        CommitOutcome::Fenced {
            by_generation: Some(2)
        }
    );
}

#[tokio::test]
async fn a_create_with_a_lost_outcome_retires_the_position_and_restart_finds_it() {
    let store = Hooked::new(memory());
    let mut pos = start(&store, CorruptPolicy::FailClosed)
        .await
        .unwrap()
        .position;
    commit_epoch(&store, &mut pos, 1).await.unwrap();
    store.set_fault(Fault::ApplyThenFail, 1);
    let err = commit_epoch(&store, &mut pos, 2).await.unwrap_err();
    assert!(matches!(err, Error::External { .. }), "{err}");
    assert!(!pos.is_usable());
    let err = commit_epoch(&store, &mut pos, 3).await.unwrap_err();
    assert!(err.to_string().contains("restart the job"), "{err}");
    let started = start(&store, CorruptPolicy::FailClosed).await.unwrap();
    assert_eq!(started.restore.map(|m| m.epoch), Some(2));
}

#[tokio::test]
async fn a_client_retry_that_finds_its_own_manifest_is_a_commit() {
    let store = Hooked::new(memory());
    let mut pos = start(&store, CorruptPolicy::FailClosed)
        .await
        .unwrap()
        .position;
    store.set_fault(Fault::RetryAfterLanding, 2);
    for epoch in 1..=3 {
        let outcome = commit_epoch(&store, &mut pos, epoch).await.unwrap();
        assert_eq!(outcome, CommitOutcome::Committed { seq: epoch });
    }
    assert!(pos.is_usable());
}

#[tokio::test]
async fn a_starting_instance_does_not_trust_a_fence_identical_to_its_own() {
    // The fence lands but the client sees it taken: it cannot tell its own write from
    // a twin's identical decision, so it re-reads and fences again above it.
    let store = Hooked::new(memory());
    store.set_fault(Fault::RetryAfterLanding, 1);
    let started = start(&store, CorruptPolicy::FailClosed).await.unwrap();
    assert_eq!((started.seq, started.generation), (1, 2));
    assert_eq!(store.list_manifests(None).await.unwrap(), vec![0, 1]);
    // Twins: both read the empty chain, both build the same fence; one wins, the
    // other re-reads, so each generation has exactly one owner.
    let twin = protocol::fence_manifest("q5", 1, 2, None);
    let winner = store.read_manifest(1).await.unwrap();
    assert_eq!(
        on_create_conflict(&twin, &winner, Phase::Starting),
        ConflictDecision::RereadAndRetry
    );
}

#[tokio::test]
async fn fenced_at_start_by_a_newer_instance_is_an_error_that_says_so() {
    let base = memory();
    start(&base, CorruptPolicy::FailClosed).await.unwrap();
    // A newer generation's fence sits at the number this instance will pick.
    let newer = protocol::fence_manifest("q5", 1, 5, None);
    let (reached_tx, reached_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    let hooked = Arc::new(Hooked::new(base.clone()));
    *hooked.gate.lock().unwrap() = Some((reached_tx, release_rx));
    let starting = {
        let hooked = hooked.clone();
        tokio::spawn(async move { start(hooked.as_ref(), CorruptPolicy::FailClosed).await })
    };
    reached_rx.await.unwrap();
    base.create_manifest(&newer).await.unwrap();
    release_tx.send(()).unwrap();
    let err = starting.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Fenced(_)), "{err}");
    assert!(
        err.to_string()
            .contains("owned by a newer instance (generation 5)"),
        "{err}"
    );
}

#[tokio::test]
async fn the_protocol_runs_on_the_local_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let store = job_store(raw);
    let mut zombie = start(&store, CorruptPolicy::FailClosed)
        .await
        .unwrap()
        .position;
    for epoch in 1..=4 {
        commit_epoch(&store, &mut zombie, epoch).await.unwrap();
    }
    let started = start(&store, CorruptPolicy::FailClosed).await.unwrap();
    let restored = started.restore.clone().unwrap();
    assert_eq!((restored.epoch, started.generation, started.seq), (4, 2, 5));
    check_restorable(&store, &restored).await;
    let mut pos = started.position;
    commit_epoch(&store, &mut pos, 5).await.unwrap();
    let fenced = commit_epoch(&store, &mut zombie, 5).await.unwrap();
    assert_eq!(
        fenced,
        CommitOutcome::Fenced {
            by_generation: Some(2)
        }
    );
    let GcOutcome::Collected(plan) = collect_garbage(&store, &pos, 2).await.unwrap() else {
        panic!("head owner collects");
    };
    assert_eq!(plan.delete_manifests, vec![0, 1, 2, 3]);
    assert_eq!(store.list_manifests(None).await.unwrap(), vec![4, 5, 6]);
    let mut left = store.list_state_files().await.unwrap();
    left.sort();
    let epochs: Vec<u64> = left
        .iter()
        .map(|f| layout::parse_state_path(f).unwrap().epoch)
        .collect();
    assert_eq!(epochs, vec![4, 4, 5, 5]);
    assert!(dir.path().join("root/jobs/q5/manifests").is_dir());
}

#[tokio::test]
async fn a_zombie_finding_a_collected_number_is_still_fenced() {
    let store = memory();
    let mut zombie = chain_of(&store, 1).await; // fence 0, checkpoint 1
    let mut successor = start(&store, CorruptPolicy::FailClosed)
        .await
        .unwrap()
        .position;
    for epoch in 2..=5 {
        let meta = write_epoch(&store, successor.generation(), epoch).await;
        commit_checkpoint(&store, &mut successor, meta)
            .await
            .unwrap();
    }
    // The successor's GC deletes every manifest but the newest, the zombie's next
    // number (the successor's fence) included.
    collect_garbage(&store, &successor, 1).await.unwrap();
    assert_eq!(store.list_manifests(None).await.unwrap(), vec![6]);
    let gone = zombie.next_seq();
    let meta = write_epoch(&store, zombie.generation(), 2).await;
    let outcome = commit_checkpoint(&store, &mut zombie, meta).await.unwrap();
    assert_eq!(
        outcome,
        CommitOutcome::Fenced {
            by_generation: Some(2)
        }
    );
    // Its stray manifest is never restored from, and the next GC removes it.
    assert_eq!(store.list_manifests(None).await.unwrap(), vec![gone, 6]);
    let GcOutcome::Collected(plan) = collect_garbage(&store, &successor, 1).await.unwrap() else {
        panic!("successor is the head");
    };
    assert_eq!(plan.delete_manifests, vec![gone]);
    assert!(matches!(
        collect_garbage(&store, &zombie, 1).await,
        Err(Error::Internal(_))
    ));
    drop(successor);
    let started = start(&store, CorruptPolicy::FailClosed).await.unwrap();
    assert_eq!(
        started.restore.map(|m| (m.epoch, m.generation)),
        Some((5, 2))
    );
}
