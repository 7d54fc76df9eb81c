//! [`FaultyStore`]: an `ObjectStore` wrapper that injects seeded, reproducible faults.
//!
//! Modelled on Materialize's `persist::unreliable` (`UnreliableBlob`), extended with the
//! failure modes that matter for checkpoints on object storage:
//!
//! * **fail-before**: the request never reaches the store;
//! * **apply-then-timeout**: the request takes effect but the response is lost, so the
//!   caller sees an error for a write that happened (a retried create-only put then sees
//!   `AlreadyExists` for its own object);
//! * **latency**: the request is delayed (`tokio::time::sleep`) and then forwarded;
//! * **truncate-write**: a put stores a strict prefix of its payload and reports success,
//!   the torn write of stores without atomic puts; only checksums upstream can catch it.
//!
//! Every required and provided method of `ObjectStore` (object_store 0.13) is forwarded
//! explicitly to the inner store, so each logical call makes exactly one fault decision
//! (the provided `get_ranges` would otherwise decide once per range, and `rename_opts`
//! once for the copy and once for the delete). Streams (`list*`, `delete_stream`) decide
//! once when the stream is created and then fail, delay or forward the whole stream.
//! Multipart uploads decide at `complete()`; parts and `abort()` are forwarded untouched.
//! An armed crash point ([`super::CrashPoint`]) acts like an apply-then-timeout on the
//! call it names and like a fail-before on every later call; `delete_stream` checks it
//! per path, so a crash can land between two deletes of one batch.
//! Errors from the inner store (`NotFound`, `AlreadyExists`, `Precondition`, ...) are
//! passed through unchanged, so `PutMode::Create` semantics are preserved.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

use super::config::{FaultConfig, OpKind};
use super::crash::{CrashPoint, CrashReport};
use super::injector::{FaultController, FaultStats, InjectedFault, Injector};
use super::layer::{Layered, StoreLayer};
use crate::Result;

mod apply;
mod upload;

use apply::{faulty_stream, injected, prefix_name, run, truncate};
use upload::FaultyUpload;

/// An `ObjectStore` that forwards every call to `inner`, injecting faults drawn from a
/// seeded RNG according to a [`FaultConfig`]. Deterministic for a given seed and order
/// of calls. Its own methods (the controller, the counters) are those of [`FaultLayer`].
pub type FaultyStore = Layered<FaultLayer>;

/// The fault-injecting layer of a [`FaultyStore`].
pub struct FaultLayer {
    inner: Arc<dyn ObjectStore>,
    injector: Arc<Injector>,
}

impl FaultyStore {
    /// Wraps `inner`. Fails with `Error::Plan` if `config` is invalid
    /// (see [`FaultConfig::validate`]).
    pub fn new(inner: Arc<dyn ObjectStore>, config: FaultConfig, seed: u64) -> Result<Self> {
        Ok(Layered::wrap(FaultLayer {
            inner,
            injector: Arc::new(Injector::new(config, seed)?),
        }))
    }
}

impl FaultLayer {
    /// A cloneable handle to the switch, config and counters; keep it when the store
    /// itself is handed out as an `Arc<dyn ObjectStore>`.
    pub fn controller(&self) -> FaultController {
        FaultController {
            injector: Arc::clone(&self.injector),
        }
    }

    /// Turns injection on or off; off forwards everything untouched (heals the store).
    pub fn set_enabled(&self, enabled: bool) {
        self.controller().set_enabled(enabled);
    }

    /// Whether faults are currently injected.
    pub fn is_enabled(&self) -> bool {
        self.injector.is_enabled()
    }

    /// Counters of calls and injected faults so far.
    pub fn stats(&self) -> FaultStats {
        self.injector.stats()
    }

    /// The current fault config.
    pub fn config(&self) -> FaultConfig {
        self.injector.config()
    }

    /// The seed the fault RNG started from.
    pub fn seed(&self) -> u64 {
        self.injector.seed()
    }

    /// Arms a crash point (see [`FaultController::arm_crash`]).
    pub fn arm_crash(&self, point: CrashPoint) {
        self.controller().arm_crash(point);
    }

    /// The crash, once the armed point has fired.
    pub fn crash(&self) -> Option<CrashReport> {
        self.controller().crash()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl StoreLayer for FaultLayer {
    /// The wrapped store (to inspect what really happened, bypassing faults).
    fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FaultyStore(seed={}, {}, inner={})",
            self.seed(),
            self.config(),
            self.inner
        )
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let op = OpKind::Put;
        let len = payload.content_length();
        let opts = match self.is_enabled() && self.config().ignore_preconditions {
            true => PutOptions {
                mode: PutMode::Overwrite,
                ..opts
            },
            false => opts,
        };
        match self.injector.decide(op, || location.to_string(), Some(len)) {
            None => self.inner.put_opts(location, payload, opts).await,
            Some(InjectedFault::Latency(delay)) => {
                tokio::time::sleep(delay).await;
                self.inner.put_opts(location, payload, opts).await
            }
            Some(InjectedFault::TruncateWrite { kept }) => {
                let torn = truncate(&payload, kept);
                self.inner.put_opts(location, torn, opts).await
            }
            Some(fault @ (InjectedFault::FailBefore | InjectedFault::Down)) => {
                Err(injected(op, location.to_string(), fault))
            }
            Some(fault @ (InjectedFault::ApplyThenTimeout | InjectedFault::Crash)) => {
                let _lost = self.inner.put_opts(location, payload, opts).await;
                Err(injected(op, location.to_string(), fault))
            }
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultyUpload {
            inner,
            injector: Arc::clone(&self.injector),
            location: location.clone(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = if options.head {
            OpKind::Head
        } else {
            OpKind::Get
        };
        run(
            &self.injector,
            op,
            || location.to_string(),
            || self.inner.get_opts(location, options),
        )
        .await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        run(
            &self.injector,
            OpKind::Get,
            || location.to_string(),
            || self.inner.get_ranges(location, ranges),
        )
        .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let op = OpKind::Delete;
        let fault = self.injector.decide_stream(op);
        // Each path meets the crash point as the inner store takes it: the path that
        // fires it is deleted, later ones are refused before they reach the store...
        let gate = Arc::clone(&self.injector);
        let locations = locations
            .map(move |location| {
                let location = location?;
                match gate.decide_item(op, || location.to_string()) {
                    Some(fault @ InjectedFault::Down) => {
                        Err(injected(op, location.to_string(), fault))
                    }
                    _ => Ok(location),
                }
            })
            .boxed();
        let deleted = faulty_stream(fault, op, String::new(), || {
            self.inner.delete_stream(locations)
        });
        // ...and once the store is down, no deletion is reported any more.
        let injector = Arc::clone(&self.injector);
        deleted
            .map(move |result| match result {
                Ok(location) if injector.is_down() => {
                    Err(injected(op, location.to_string(), InjectedFault::Crash))
                }
                other => other,
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (op, location) = (OpKind::List, prefix_name(prefix));
        let fault = self.injector.decide(op, || location.clone(), None);
        faulty_stream(fault, op, location, || self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (op, location) = (OpKind::List, prefix_name(prefix));
        let fault = self.injector.decide(op, || location.clone(), None);
        faulty_stream(fault, op, location, || {
            self.inner.list_with_offset(prefix, offset)
        })
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        run(
            &self.injector,
            OpKind::List,
            || prefix_name(prefix),
            || self.inner.list_with_delimiter(prefix),
        )
        .await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        run(
            &self.injector,
            OpKind::Copy,
            || format!("{from} -> {to}"),
            || self.inner.copy_opts(from, to, options),
        )
        .await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        run(
            &self.injector,
            OpKind::Rename,
            || format!("{from} -> {to}"),
            || self.inner.rename_opts(from, to, options),
        )
        .await
    }
}

impl fmt::Debug for FaultLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .field("seed", &self.seed())
            .field("enabled", &self.is_enabled())
            .field("config", &self.config())
            .field("stats", &self.stats())
            .finish()
    }
}
