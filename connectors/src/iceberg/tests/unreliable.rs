//! [`UnreliableCatalog`]: a catalog wrapper that fails or interleaves the next commit on
//! request, for the crash points of phase 2 that sit inside the catalog call.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::future::BoxFuture;
use iceberg::table::Table;
use iceberg::{
    Catalog, ErrorKind, Namespace, NamespaceIdent, TableCommit, TableCreation, TableIdent,
};

/// What the next `update_table` does besides forwarding the commit.
pub(crate) enum Fault {
    /// The commit is applied, then the reply is lost: the caller sees a retryable error
    /// (`retryable`) or a final one.
    ApplyThenTimeout { retryable: bool },
    /// `interleave` runs first (another writer's commit, say), then the commit is forwarded.
    Interleave(BoxFuture<'static, ()>),
}

/// Forwards everything to `inner`; an armed [`Fault`] hits the next `update_table`.
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
impl Catalog for UnreliableCatalog {
    async fn load_table(&self, table: &TableIdent) -> iceberg::Result<Table> {
        self.inner.load_table(table).await
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

    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> iceberg::Result<Vec<NamespaceIdent>> {
        self.inner.list_namespaces(parent).await
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> iceberg::Result<Namespace> {
        self.inner.create_namespace(namespace, properties).await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<Namespace> {
        self.inner.get_namespace(namespace).await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> iceberg::Result<bool> {
        self.inner.namespace_exists(namespace).await
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> iceberg::Result<()> {
        self.inner.update_namespace(namespace, properties).await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<()> {
        self.inner.drop_namespace(namespace).await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> iceberg::Result<Vec<TableIdent>> {
        self.inner.list_tables(namespace).await
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> iceberg::Result<Table> {
        self.inner.create_table(namespace, creation).await
    }

    async fn drop_table(&self, table: &TableIdent) -> iceberg::Result<()> {
        self.inner.drop_table(table).await
    }

    async fn purge_table(&self, table: &TableIdent) -> iceberg::Result<()> {
        self.inner.purge_table(table).await
    }

    async fn table_exists(&self, table: &TableIdent) -> iceberg::Result<bool> {
        self.inner.table_exists(table).await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> iceberg::Result<()> {
        self.inner.rename_table(src, dest).await
    }

    async fn register_table(
        &self,
        table: &TableIdent,
        metadata_location: String,
    ) -> iceberg::Result<Table> {
        self.inner.register_table(table, metadata_location).await
    }
}
