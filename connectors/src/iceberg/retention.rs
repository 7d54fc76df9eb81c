//! Snapshot retention: a sink that commits every checkpoint adds a snapshot every few
//! seconds, and every snapshot stays in the table's metadata file (rewritten whole on each
//! commit) until it is expired. With a retention of `n`, the sink expires all but the `n`
//! newest snapshots of the `main` branch after each commit.
//!
//! Retention counts snapshots rather than their age, so it never reads the wall clock. It
//! only rewrites metadata: data files stay, since the manifests of the retained snapshots
//! still list every row; the manifest lists of expired snapshots (and data files that only
//! they reference: none, for an append-only table) are left for a maintenance job. Expiry runs after the
//! ledger recorded the epoch, so a snapshot of this sink is expired only once the ledger
//! can answer for it.

use std::num::NonZeroUsize;

use iceberg::transaction::{ApplyTransactionAction, Transaction};

use super::catalog::IcebergCatalog;

/// Expires all but the `keep` newest snapshots of `table`. A failure is logged and left for
/// the next commit to retry: the epoch is committed either way.
pub(crate) async fn expire(catalog: &IcebergCatalog, table: &str, keep: NonZeroUsize) {
    if let Err(e) = try_expire(catalog, table, keep).await {
        tracing::warn!(table, error = %e, "expiring Iceberg snapshots failed");
    }
}

async fn try_expire(
    catalog: &IcebergCatalog,
    table: &str,
    keep: NonZeroUsize,
) -> Result<(), iceberg::Error> {
    let loaded = catalog
        .catalog()
        .load_table(&IcebergCatalog::table_ident(table))
        .await?;
    if loaded.metadata().snapshots().len() <= keep.get() {
        return Ok(());
    }
    let transaction = Transaction::new(&loaded);
    // `expire_older_than_ms(MAX)`: every snapshot is old enough, `retain_last` decides.
    let expire = transaction
        .expire_snapshots()
        .retain_last(keep.get())
        .expire_older_than_ms(i64::MAX);
    expire
        .apply(transaction)?
        .commit(catalog.catalog().as_ref())
        .await?;
    Ok(())
}
