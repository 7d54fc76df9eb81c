//! A catalog view that makes "not yet committed" and "commit" one atomic step.
//!
//! iceberg's `Transaction::commit` reloads the table through the catalog it is given and,
//! when the table moved on, silently re-applies the append on top of the newest snapshot;
//! no precondition of ours can be attached. So the check that the epoch is not in the
//! table yet is made inside that reload: [`EpochGuard::load_table`] refuses a table that
//! already holds the sink's epoch (or a later one). The append then requires the `main`
//! branch to still point at the snapshot the check saw, and the catalog swaps the metadata
//! location only if nothing changed since it loaded it (the SQL catalog's conditional
//! `UPDATE`). A concurrent commit of the same epoch therefore makes ours fail instead of
//! being appended twice; a concurrent commit of anything else is retried on the new base,
//! where the check runs again.
//!
//! The check also reads the sink's ledger, *after* loading the table. Snapshots expire, so
//! a rival that committed the epoch may have had its snapshot expired by the time we load;
//! but expiry runs only after the rival recorded the epoch in the ledger, so a table loaded
//! without the snapshot is followed by a ledger read that has the record.

use std::collections::HashMap;

use async_trait::async_trait;
use iceberg::table::Table;
use iceberg::{
    Catalog, ErrorKind, Namespace, NamespaceIdent, TableCommit, TableCreation, TableIdent,
};
use runnel_runtime::Epoch;

use super::commit::last_committed_epoch;
use super::ledger::Ledger;

/// `inner`, except that loading a table fails when the table or the ledger holds `epoch`
/// of `sink_id` (or a later one).
#[derive(Debug)]
pub(super) struct EpochGuard<'a> {
    pub inner: &'a dyn Catalog,
    pub sink_id: &'a str,
    pub epoch: Epoch,
    pub ledger: &'a Ledger,
}

impl EpochGuard<'_> {
    fn already_committed(&self, table: &TableIdent, detail: String) -> iceberg::Error {
        iceberg::Error::new(
            ErrorKind::PreconditionFailed,
            format!(
                "epoch {} of sink {} is already committed to {table} ({detail})",
                self.epoch, self.sink_id
            ),
        )
    }
}

#[async_trait]
impl Catalog for EpochGuard<'_> {
    async fn load_table(&self, table: &TableIdent) -> iceberg::Result<Table> {
        let loaded = self.inner.load_table(table).await?;
        if let Some(last) = last_committed_epoch(loaded.metadata(), self.sink_id)
            && last >= self.epoch
        {
            return Err(self.already_committed(table, format!("up to epoch {last}")));
        }
        match self.ledger.covers(self.epoch).await {
            Ok(false) => Ok(loaded),
            Ok(true) => Err(self.already_committed(table, "recorded in its ledger".into())),
            Err(e) => Err(iceberg::Error::new(ErrorKind::Unexpected, e.to_string())),
        }
    }

    async fn update_table(&self, commit: TableCommit) -> iceberg::Result<Table> {
        self.inner.update_table(commit).await
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
