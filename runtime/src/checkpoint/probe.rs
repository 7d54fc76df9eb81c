//! Checks that an object store honours the conditional writes exactly-once relies on.
//!
//! The checkpoint chain is only a fence if `PutMode::Create` is atomic: of two writers
//! creating one path, exactly one may succeed. Some S3-compatible servers accept the
//! header and ignore it, or check and then write without a lock; a job on such a store
//! would silently lose exactly-once. So before running exactly-once jobs on a store we
//! probe it, under a scratch path:
//!
//! * **create**: a second create of an existing object must fail with `AlreadyExists`,
//!   and of [`RACERS`] concurrent creates of one path exactly one may succeed;
//! * **update**: a `PutMode::Update` with a version that is no longer current must fail
//!   with `Precondition`. `LocalFileSystem` does not implement `Update` at all; that is
//!   fine, because the protocol is create-only. It is reported, not held against it.
//!
//! A probe can show a store is broken, never prove it correct: a racy store may win one
//! race by luck. The sequential check catches stores that ignore the mode outright.

use futures::future::join_all;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use crate::error::{Error, Result};

/// Concurrent creates in the race check.
pub const RACERS: usize = 8;

/// How a store handles `PutMode::Create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateSupport {
    /// Exactly one create of a path succeeds.
    Atomic,
    /// More than one create of a path succeeded (`successes` of the race, or 2 when the
    /// sequential check already failed).
    NotAtomic { successes: usize },
    /// The store refuses `PutMode::Create`.
    Unsupported,
}

/// How a store handles `PutMode::Update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateSupport {
    /// A stale version is refused with `Precondition`.
    RefusedWhenStale,
    /// The store does not implement conditional updates (`LocalFileSystem`).
    Unsupported,
    /// A stale update was applied.
    NotHonoured,
}

/// What [`probe_conditional_writes`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The store and scratch path probed, for messages.
    pub root: String,
    pub create: CreateSupport,
    pub update: UpdateSupport,
}

impl ProbeReport {
    /// Whether the create-only checkpoint protocol is safe on this store. A store that
    /// implements `Update` must implement it correctly: something else may rely on it.
    pub fn exactly_once_capable(&self) -> bool {
        self.create == CreateSupport::Atomic
            && matches!(
                self.update,
                UpdateSupport::RefusedWhenStale | UpdateSupport::Unsupported
            )
    }

    /// `Ok` if [`Self::exactly_once_capable`], otherwise an error that says why.
    pub fn require_exactly_once(&self) -> Result<()> {
        let root = &self.root;
        let why = match (self.create, self.update) {
            (CreateSupport::Atomic, UpdateSupport::NotHonoured) => format!(
                "object store at {root} applied a PutMode::Update with a stale version; \
                 it cannot run exactly-once jobs"
            ),
            (CreateSupport::Atomic, _) => return Ok(()),
            (CreateSupport::NotAtomic { successes }, _) => format!(
                "object store at {root} does not honour conditional creates (two \
                 PutMode::Create on one path both succeeded; {successes} succeeded in \
                 total); it cannot run exactly-once jobs"
            ),
            (CreateSupport::Unsupported, _) => format!(
                "object store at {root} does not support conditional creates \
                 (PutMode::Create); it cannot run exactly-once jobs"
            ),
        };
        Err(Error::Plan(why))
    }
}

/// Probes `store` under `scratch` (which should be unused) and removes what it wrote.
pub async fn probe_conditional_writes(
    store: &dyn ObjectStore,
    scratch: &Path,
) -> Result<ProbeReport> {
    let sequential = scratch.clone().join("create-sequential");
    let raced = scratch.clone().join("create-raced");
    let updated = scratch.clone().join("update");
    let paths = [&sequential, &raced, &updated];
    for path in paths {
        delete_if_present(store, path).await?;
    }
    let create = probe_create(store, &sequential, &raced).await;
    let update = probe_update(store, &updated).await;
    for path in paths {
        delete_if_present(store, path).await?;
    }
    Ok(ProbeReport {
        root: format!("{store}/{scratch}"),
        create: create?,
        update: update?,
    })
}

fn mode(mode: PutMode) -> PutOptions {
    PutOptions {
        mode,
        ..Default::default()
    }
}

fn payload(i: usize) -> PutPayload {
    PutPayload::from(format!("runnel conditional-write probe {i}"))
}

fn probe_error(what: &str, e: object_store::Error) -> Error {
    Error::external(format!("probing conditional writes ({what})"), e)
}

async fn probe_create(
    store: &dyn ObjectStore,
    sequential: &Path,
    raced: &Path,
) -> Result<CreateSupport> {
    match store
        .put_opts(sequential, payload(0), mode(PutMode::Create))
        .await
    {
        Ok(_) => {}
        Err(
            object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. },
        ) => {
            return Ok(CreateSupport::Unsupported);
        }
        Err(e) => return Err(probe_error("first create", e)),
    }
    match store
        .put_opts(sequential, payload(1), mode(PutMode::Create))
        .await
    {
        Err(object_store::Error::AlreadyExists { .. }) => {}
        Ok(_) => return Ok(CreateSupport::NotAtomic { successes: 2 }),
        Err(e) => return Err(probe_error("second create", e)),
    }
    let results =
        join_all((0..RACERS).map(|i| store.put_opts(raced, payload(i), mode(PutMode::Create))))
            .await;
    let mut successes = 0;
    for result in results {
        match result {
            Ok(_) => successes += 1,
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(probe_error("racing creates", e)),
        }
    }
    Ok(match successes {
        1 => CreateSupport::Atomic,
        successes => CreateSupport::NotAtomic { successes },
    })
}

async fn probe_update(store: &dyn ObjectStore, path: &Path) -> Result<UpdateSupport> {
    let first = store
        .put_opts(path, payload(0), mode(PutMode::Overwrite))
        .await
        .map_err(|e| probe_error("initial put", e))?;
    let stale = UpdateVersion::from(first);
    match store
        .put_opts(path, payload(1), mode(PutMode::Update(stale.clone())))
        .await
    {
        Ok(_) => {}
        Err(
            object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. },
        ) => {
            return Ok(UpdateSupport::Unsupported);
        }
        Err(e) => return Err(probe_error("current update", e)),
    }
    match store
        .put_opts(path, payload(2), mode(PutMode::Update(stale)))
        .await
    {
        Err(object_store::Error::Precondition { .. }) => Ok(UpdateSupport::RefusedWhenStale),
        Ok(_) => Ok(UpdateSupport::NotHonoured),
        Err(e) => Err(probe_error("stale update", e)),
    }
}

async fn delete_if_present(store: &dyn ObjectStore, path: &Path) -> Result<()> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(probe_error("cleanup", e)),
    }
}
