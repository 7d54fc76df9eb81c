//! [`RetryingStore`]: an `ObjectStore` wrapper that retries failures that may be transient.
//!
//! # What is retried
//!
//! An attempt that fails with an error that *may* be transient ([`is_retryable`]: above all
//! `Error::Generic`, which is what network failures, throttling, 5xx responses, I/O errors
//! and [`FaultyStore`](super::FaultyStore) faults look like) is repeated, up to
//! [`RetryPolicy::max_attempts`] attempts in all, sleeping `initial_backoff * 2^(n-1)`
//! (capped at `max_backoff`) before retry `n`. Definitive answers are returned after the
//! attempt that produced them: `NotFound`, `AlreadyExists`, `Precondition`, `NotModified`,
//! `NotImplemented`, `NotSupported`, `InvalidPath`, `PermissionDenied`, `Unauthenticated`,
//! `UnknownConfigurationKey`, and `JoinError` (a panicked or cancelled blocking task of the
//! store: a bug or a runtime shutting down, which trying again does not cure). On give-up
//! the last error is returned unchanged, so callers can still classify it. There is no
//! jitter: runs stay reproducible, and the HTTP stores already jitter the retries their
//! own client makes underneath this wrapper.
//!
//! # Why retrying writes is safe in runnel
//!
//! A retried write may repeat one that already took effect (the request landed, the
//! response was lost). Every write runnel makes is harmless to repeat:
//!
//! * **Create-only puts** (`PutMode::Create`): the retry of a put that landed fails with
//!   `AlreadyExists` and changes nothing. Every caller already handles `AlreadyExists` by
//!   reading what is there: log appends recognise their own batch by the producer sequence
//!   number, checkpoint manifests by the "already written by me" check, state files by
//!   comparing bytes. This is the one consequence callers must live with: **after a retried
//!   create, `AlreadyExists` does not tell whether the object is the caller's own first
//!   attempt or someone else's; callers decide by reading.**
//! * **Conditional updates** (`PutMode::Update`) are retried on transient errors too, and
//!   for the same reason a `Precondition` failure after a retry is passed up as-is: the
//!   version may have moved because the caller's own first attempt landed.
//! * **Deletes** are idempotent: deleting a deleted object succeeds on object stores
//!   (`LocalFileSystem` reports `NotFound`, which runnel's callers treat as done).
//! * **Overwrites and copies** rewrite the same bytes. A retried `rename` whose first
//!   attempt landed reports `NotFound` for its source (runnel does not rename).
//!
//! # Streams, bodies and multipart uploads
//!
//! * `list` and `list_with_offset` retry creating and polling the stream only until it has
//!   yielded its first item; after that, errors are passed through (retrying later would
//!   repeat or skip items). `delete_stream` groups its input in chunks of up to
//!   [`DELETE_CHUNK`] paths and retries each chunk the same way (re-deleting is harmless).
//! * `get_opts` retries the request; an error while the returned body is consumed is
//!   passed through. [`RetryingStore::get_bytes`] retries the whole read, body included.
//! * `put_multipart_opts` retries creating the upload (an orphaned upload is harmless),
//!   but the upload's methods are passed through: parts are ordered by `put_part` calls,
//!   so re-calling it would append a duplicate part, and `complete` is not repeatable on
//!   every store (`LocalFileSystem` consumes its staging file on the first call). The HTTP
//!   stores retry the individual part and completion requests in their own client.
//!
//! ```
//! # use std::sync::Arc;
//! # use object_store::{ObjectStore, memory::InMemory};
//! use runnel_runtime::storage::{RetryPolicy, RetryingStore};
//! let store = Arc::new(RetryingStore::new(Arc::new(InMemory::new()), RetryPolicy::default())?);
//! let shared: Arc<dyn ObjectStore> = store.clone(); // keep `store` to read `stats()`
//! # Ok::<(), runnel_runtime::Error>(())
//! ```

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

use super::layer::{Layered, StoreLayer};
use crate::Result;

mod policy;

use policy::Retrier;
pub use policy::{RetryPolicy, RetryStats, is_retryable};

/// The most paths one `delete_stream` chunk (one retried inner call) deletes; S3's
/// bulk-delete limit.
pub const DELETE_CHUNK: usize = 1000;

/// An `ObjectStore` that forwards every call to `inner`, retrying failures that may be
/// transient according to a [`RetryPolicy`]. See the module docs for what that means
/// for writes, streams and multipart uploads. Its own methods are [`RetryLayer`]'s.
pub type RetryingStore = Layered<RetryLayer>;

/// The retrying layer of a [`RetryingStore`].
pub struct RetryLayer {
    inner: Arc<dyn ObjectStore>,
    retrier: Arc<Retrier>,
}

impl RetryingStore {
    /// Wraps `inner`. Fails with `Error::Plan` if `policy` is invalid
    /// (see [`RetryPolicy::validate`]).
    pub fn new(inner: Arc<dyn ObjectStore>, policy: RetryPolicy) -> Result<Self> {
        policy.validate()?;
        Ok(Layered::wrap(RetryLayer {
            inner,
            retrier: Arc::new(Retrier::new(policy)),
        }))
    }
}

impl RetryLayer {
    /// Counters of attempts, retries and give-ups so far.
    pub fn stats(&self) -> RetryStats {
        self.retrier.stats()
    }

    /// The retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.retrier.policy()
    }

    /// Reads a whole object, retrying the request *and* the body: unlike
    /// `get(..).await?.bytes().await`, an error while the body streams in is retried too
    /// (re-reading is harmless, and runnel never overwrites an object).
    pub async fn get_bytes(&self, location: &Path) -> object_store::Result<Bytes> {
        self.retrier
            .run("get", || async {
                let got = self.inner.get_opts(location, GetOptions::default()).await?;
                got.bytes().await
            })
            .await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl StoreLayer for RetryLayer {
    /// The wrapped store.
    fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let policy = self.policy();
        write!(
            f,
            "RetryingStore(max_attempts={}, backoff={:?}..={:?}, inner={})",
            policy.max_attempts, policy.initial_backoff, policy.max_backoff, self.inner
        )
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.retrier
            .run("put", || {
                self.inner.put_opts(location, payload.clone(), opts.clone())
            })
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.retrier
            .run("put_multipart", || {
                self.inner.put_multipart_opts(location, opts.clone())
            })
            .await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = if options.head { "head" } else { "get" };
        self.retrier
            .run(op, || self.inner.get_opts(location, options.clone()))
            .await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.retrier
            .run("get_ranges", || self.inner.get_ranges(location, ranges))
            .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let inner = Arc::clone(&self.inner);
        let retrier = Arc::clone(&self.retrier);
        locations
            .ready_chunks(DELETE_CHUNK)
            .flat_map(move |chunk| {
                // Errors of the input stream are passed through; the paths are retried.
                let mut paths = Vec::with_capacity(chunk.len());
                let mut errors = Vec::new();
                for item in chunk {
                    match item {
                        Ok(path) => paths.push(path),
                        Err(err) => errors.push(Err(err)),
                    }
                }
                let errors = stream::iter(errors);
                if paths.is_empty() {
                    return errors.boxed();
                }
                let inner = Arc::clone(&inner);
                let deleted = retrier.stream("delete", move || {
                    let again = paths.clone().into_iter().map(Ok);
                    inner.delete_stream(stream::iter(again).boxed())
                });
                errors.chain(deleted).boxed()
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let inner = Arc::clone(&self.inner);
        let prefix = prefix.cloned();
        self.retrier
            .stream("list", move || inner.list(prefix.as_ref()))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let inner = Arc::clone(&self.inner);
        let (prefix, offset) = (prefix.cloned(), offset.clone());
        self.retrier.stream("list", move || {
            inner.list_with_offset(prefix.as_ref(), &offset)
        })
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.retrier
            .run("list", || self.inner.list_with_delimiter(prefix))
            .await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.retrier
            .run("copy", || self.inner.copy_opts(from, to, options.clone()))
            .await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.retrier
            .run("rename", || {
                self.inner.rename_opts(from, to, options.clone())
            })
            .await
    }
}

impl fmt::Debug for RetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryingStore")
            .field("inner", &self.inner)
            .field("policy", &self.policy())
            .field("stats", &self.stats())
            .finish()
    }
}
