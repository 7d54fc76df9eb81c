//! A catalog view that makes "not yet committed" and "commit" one atomic step.
//!
//! iceberg's `Transaction::commit` reloads the table through the catalog it is given and,
//! when the table moved on, silently re-applies the append on top of the newest snapshot;
//! no precondition of ours can be attached. So the check that the epoch is not in the
//! table yet is made inside that reload: [`EpochGuard::load_table`] refuses a table that
//! already holds the sink's epoch (the table is believed for that epoch only, the ledger
//! for later ones too; see [`super::commit`]). The append then requires the `main`
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

use async_trait::async_trait;
use iceberg::table::Table;
use iceberg::{Catalog, ErrorKind, TableIdent};
use runnel_runtime::Epoch;

use super::commit::claims_epoch;
use super::layer::CatalogLayer;
use super::ledger::Ledger;

/// `inner`, except that loading a table fails when the table holds `epoch` of `sink_id`
/// or the ledger holds it (or a later one); a catalog as [`Layered`](super::layer::Layered).
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
impl CatalogLayer for EpochGuard<'_> {
    fn inner(&self) -> &dyn Catalog {
        self.inner
    }

    async fn load_table(&self, table: &TableIdent) -> iceberg::Result<Table> {
        let loaded = self.inner.load_table(table).await?;
        if claims_epoch(loaded.metadata(), self.sink_id, self.epoch) {
            return Err(self.already_committed(table, "in its snapshots".into()));
        }
        match self.ledger.covers(self.epoch).await {
            Ok(false) => Ok(loaded),
            Ok(true) => Err(self.already_committed(table, "recorded in its ledger".into())),
            Err(e) => Err(iceberg::Error::new(ErrorKind::Unexpected, e.to_string())),
        }
    }
}
