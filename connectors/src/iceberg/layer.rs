//! Catalog wrappers that change how a table is loaded or a commit is made and pass
//! everything else through: a [`CatalogLayer`] says what it changes, [`Layered`] makes it
//! a whole `Catalog`. The sink's epoch guard is one; the tests' fault injector another.

use std::collections::HashMap;

use async_trait::async_trait;
use iceberg::table::Table;
use iceberg::{Catalog, Namespace, NamespaceIdent, TableCommit, TableCreation, TableIdent};

/// What a wrapper changes about the catalog it wraps; the defaults forward.
#[async_trait]
pub(crate) trait CatalogLayer: std::fmt::Debug + Send + Sync {
    /// The wrapped catalog.
    fn inner(&self) -> &dyn Catalog;

    async fn load_table(&self, table: &TableIdent) -> iceberg::Result<Table> {
        self.inner().load_table(table).await
    }

    async fn update_table(&self, commit: TableCommit) -> iceberg::Result<Table> {
        self.inner().update_table(commit).await
    }
}

/// `L` as a catalog: its own `load_table` and `update_table`, the inner catalog's rest.
#[derive(Debug)]
pub(crate) struct Layered<L>(pub L);

#[async_trait]
impl<L: CatalogLayer> Catalog for Layered<L> {
    async fn load_table(&self, table: &TableIdent) -> iceberg::Result<Table> {
        CatalogLayer::load_table(&self.0, table).await
    }

    async fn update_table(&self, commit: TableCommit) -> iceberg::Result<Table> {
        CatalogLayer::update_table(&self.0, commit).await
    }

    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> iceberg::Result<Vec<NamespaceIdent>> {
        self.0.inner().list_namespaces(parent).await
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> iceberg::Result<Namespace> {
        self.0.inner().create_namespace(namespace, properties).await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<Namespace> {
        self.0.inner().get_namespace(namespace).await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> iceberg::Result<bool> {
        self.0.inner().namespace_exists(namespace).await
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> iceberg::Result<()> {
        self.0.inner().update_namespace(namespace, properties).await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<()> {
        self.0.inner().drop_namespace(namespace).await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> iceberg::Result<Vec<TableIdent>> {
        self.0.inner().list_tables(namespace).await
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> iceberg::Result<Table> {
        self.0.inner().create_table(namespace, creation).await
    }

    async fn drop_table(&self, table: &TableIdent) -> iceberg::Result<()> {
        self.0.inner().drop_table(table).await
    }

    async fn purge_table(&self, table: &TableIdent) -> iceberg::Result<()> {
        self.0.inner().purge_table(table).await
    }

    async fn table_exists(&self, table: &TableIdent) -> iceberg::Result<bool> {
        self.0.inner().table_exists(table).await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> iceberg::Result<()> {
        self.0.inner().rename_table(src, dest).await
    }

    async fn register_table(
        &self,
        table: &TableIdent,
        metadata_location: String,
    ) -> iceberg::Result<Table> {
        self.0
            .inner()
            .register_table(table, metadata_location)
            .await
    }
}
