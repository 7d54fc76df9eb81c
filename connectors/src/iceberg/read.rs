//! Reading a table back: every row of its current snapshot as Arrow batches, for the
//! server's table endpoints and for tests that check what was committed.

use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use iceberg::table::Table;
use runnel_runtime::Result;

use super::iceberg_error;

/// Every row of `table`'s current snapshot; none for a table without a snapshot.
pub async fn read_table(table: &Table) -> Result<Vec<RecordBatch>> {
    if table.metadata().current_snapshot().is_none() {
        return Ok(Vec::new());
    }
    let context = || format!("reading Iceberg table {}", table.identifier());
    table
        .scan()
        .select_all()
        .build()
        .map_err(iceberg_error(context()))?
        .to_arrow()
        .await
        .map_err(iceberg_error(context()))?
        .try_collect()
        .await
        .map_err(iceberg_error(context()))
}
