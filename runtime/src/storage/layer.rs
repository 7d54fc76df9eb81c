//! Object-store wrappers that change some calls and pass the rest through: a
//! [`StoreLayer`] says what it changes, [`Layered`] makes it a whole `ObjectStore`.
//!
//! Every method of `ObjectStore` (object_store 0.13), the provided ones included, has a
//! forwarding default here, and [`Layered`] calls the layer's version of each. So a
//! wrapper that overrides a call sees that call exactly once, even when the inner store's
//! provided method would have been built from other calls (`get_ranges` from several
//! gets, `rename_opts` from a copy and a delete): the fault injector makes one decision
//! per logical call, the retrier retries it as one unit, and a test stub that breaks
//! `list` breaks `list` only.
//!
//! ```
//! # use std::sync::Arc;
//! # use object_store::{ObjectStore, PutOptions, PutPayload, PutResult, memory::InMemory, path::Path};
//! use runnel_runtime::storage::{Layered, StoreLayer};
//!
//! /// Refuses every write; everything else reaches the inner store.
//! #[derive(Debug)]
//! struct ReadOnly(Arc<dyn ObjectStore>);
//!
//! #[async_trait::async_trait]
//! impl StoreLayer for ReadOnly {
//!     fn inner(&self) -> &Arc<dyn ObjectStore> {
//!         &self.0
//!     }
//!     async fn put_opts(&self, location: &Path, _: PutPayload, _: PutOptions)
//!         -> object_store::Result<PutResult> {
//!         Err(object_store::Error::PermissionDenied {
//!             path: location.to_string(),
//!             source: "read-only".into(),
//!         })
//!     }
//! }
//!
//! let store: Arc<dyn ObjectStore> = Arc::new(Layered::wrap(ReadOnly(Arc::new(InMemory::new()))));
//! ```

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// What a wrapper changes about the store it wraps; every default forwards to
/// [`StoreLayer::inner`].
#[async_trait]
pub trait StoreLayer: fmt::Debug + Send + Sync + 'static {
    /// The wrapped store.
    fn inner(&self) -> &Arc<dyn ObjectStore>;

    /// How the layered store shows itself (`Display`); by default `Layer(inner)` with
    /// the layer's type name.
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = std::any::type_name::<Self>();
        let name = name.rsplit("::").next().unwrap_or(name);
        write!(f, "{name}({})", self.inner())
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner().put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner().put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner().get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner().get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner().delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner().list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner().list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner().list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner().copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner().rename_opts(from, to, options).await
    }
}

/// `L` as an `ObjectStore`: every call goes to `L`'s version of it. Derefs to `L`, so
/// the layer's own methods (a fault controller, retry counters) stay at hand.
pub struct Layered<L>(L);

impl<L: StoreLayer> Layered<L> {
    pub fn wrap(layer: L) -> Self {
        Layered(layer)
    }

    /// The layer itself.
    pub fn layer(&self) -> &L {
        &self.0
    }
}

impl<L> Deref for Layered<L> {
    type Target = L;

    fn deref(&self) -> &L {
        &self.0
    }
}

impl<L: StoreLayer> fmt::Display for Layered<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.describe(f)
    }
}

impl<L: StoreLayer> fmt::Debug for Layered<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<L: StoreLayer> ObjectStore for Layered<L> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.0.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.0.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.0.rename_opts(from, to, options).await
    }
}
