//! [`UnreliableCatalog`]: a catalog wrapper that fails or interleaves the next commit on
//! request, for the crash points of phase 2 that sit inside the catalog call.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::future::BoxFuture;
use iceberg::table::Table;
use iceberg::{Catalog, ErrorKind, TableCommit};

use crate::iceberg::layer::CatalogLayer;

/// What the next `update_table` does besides forwarding the commit.
pub(crate) enum Fault {
    /// The commit is applied, then the reply is lost: the caller sees a retryable error
    /// (`retryable`) or a final one.
    ApplyThenTimeout { retryable: bool },
    /// `interleave` runs first (another writer's commit, say), then the commit is forwarded.
    Interleave(BoxFuture<'static, ()>),
}

/// Forwards everything to `inner`; an armed [`Fault`] hits the next `update_table`. A
/// catalog as [`Layered`](crate::iceberg::layer::Layered).
pub(crate) struct UnreliableCatalog {
    inner: Arc<dyn Catalog>,
    armed: Mutex<Option<Fault>>,
    updates: AtomicUsize,
}

impl std::fmt::Debug for UnreliableCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnreliableCatalog")
            .field("inner", &self.inner)
            .field("updates", &self.updates)
            .finish()
    }
}

impl UnreliableCatalog {
    pub fn new(inner: Arc<dyn Catalog>) -> Self {
        UnreliableCatalog {
            inner,
            armed: Mutex::new(None),
            updates: AtomicUsize::new(0),
        }
    }

    /// Arms `fault` for the next `update_table`.
    pub fn arm(&self, fault: Fault) {
        *self.armed.lock().unwrap() = Some(fault);
    }

    /// How many commits reached this catalog (failed ones included).
    pub fn updates(&self) -> usize {
        self.updates.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CatalogLayer for UnreliableCatalog {
    fn inner(&self) -> &dyn Catalog {
        self.inner.as_ref()
    }

    async fn update_table(&self, commit: TableCommit) -> iceberg::Result<Table> {
        self.updates.fetch_add(1, Ordering::SeqCst);
        let fault = self.armed.lock().unwrap().take();
        match fault {
            None => self.inner.update_table(commit).await,
            Some(Fault::ApplyThenTimeout { retryable }) => {
                self.inner.update_table(commit).await?;
                Err(
                    iceberg::Error::new(ErrorKind::Unexpected, "the catalog's reply was lost")
                        .with_retryable(retryable),
                )
            }
            Some(Fault::Interleave(interleave)) => {
                interleave.await;
                self.inner.update_table(commit).await
            }
        }
    }
}
