//! Which Iceberg snapshot committed a given epoch of a job's table.
//!
//! The table sink tags each snapshot's summary with its sink id and epoch
//! (`runnel.sink-id`, `runnel.epoch`), so the snapshot of an epoch is found in the
//! table's snapshot log. The results stream asks for every epoch it serves, in order,
//! and the answer must already be there when a row of that epoch is served: the job
//! commits its table before its results topic (it adds the table sink first and the
//! runtime commits sinks in graph order), so the snapshot normally exists by then. The
//! lookup still reloads the table until the snapshot appears, for a bounded time, and
//! answers "none" right away when the sink has already committed a later epoch without
//! a snapshot of this one still listed (an epoch without rows, or an expired snapshot).

use std::collections::BTreeMap;
use std::time::Duration;

use iceberg::spec::TableMetadata;
use runnel_connectors::iceberg::{EPOCH_PROPERTY, IcebergCatalog, SINK_ID_PROPERTY};
use runnel_runtime::{Epoch, Result};

/// How long a lookup waits for the snapshot of an epoch to appear.
pub const SNAPSHOT_WAIT: Duration = Duration::from_secs(10);
/// Time between two reloads of the table while waiting.
const RELOAD_INTERVAL: Duration = Duration::from_millis(100);

/// `epoch -> snapshot id` for the snapshots of `sink_id` in a table's metadata, and the
/// newest epoch among them.
pub fn epoch_snapshots(
    metadata: &TableMetadata,
    sink_id: &str,
) -> (BTreeMap<Epoch, i64>, Option<Epoch>) {
    let mut found = BTreeMap::new();
    for snapshot in metadata.snapshots() {
        let summary = &snapshot.summary().additional_properties;
        if summary.get(SINK_ID_PROPERTY).map(String::as_str) != Some(sink_id) {
            continue;
        }
        if let Some(epoch) = summary.get(EPOCH_PROPERTY).and_then(|e| e.parse().ok()) {
            found.insert(epoch, snapshot.snapshot_id());
        }
    }
    let newest = found.keys().next_back().copied();
    (found, newest)
}

/// The snapshots one sink committed to one table, learned as they are asked for.
#[derive(Debug)]
pub struct SnapshotLookup {
    catalog: IcebergCatalog,
    table: String,
    sink_id: String,
    known: BTreeMap<Epoch, i64>,
    /// The newest epoch of the sink in the table as last loaded.
    newest: Option<Epoch>,
    wait: Duration,
}

impl SnapshotLookup {
    /// Looks up the snapshots `sink_id` commits to `table` of `catalog`.
    pub fn new(catalog: IcebergCatalog, table: &str, sink_id: &str) -> Self {
        SnapshotLookup {
            catalog,
            table: table.to_owned(),
            sink_id: sink_id.to_owned(),
            known: BTreeMap::new(),
            newest: None,
            wait: SNAPSHOT_WAIT,
        }
    }

    /// Waits at most `wait` for a snapshot to appear (default [`SNAPSHOT_WAIT`]).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    async fn reload(&mut self) -> Result<()> {
        let table = self.catalog.load_table(&self.table).await?;
        let (found, newest) = epoch_snapshots(table.metadata(), &self.sink_id);
        self.known.extend(found);
        self.newest = self.newest.max(newest);
        Ok(())
    }

    fn settled(&self, epoch: Epoch) -> Option<Option<i64>> {
        match self.known.get(&epoch) {
            Some(id) => Some(Some(*id)),
            None if self.newest.is_some_and(|n| n >= epoch) => Some(None),
            None => None,
        }
    }

    /// The id of the snapshot that committed `epoch`, or `None` if the table has none
    /// for it (see the module docs).
    pub async fn snapshot_of(&mut self, epoch: Epoch) -> Result<Option<i64>> {
        if let Some(answer) = self.settled(epoch) {
            return Ok(answer);
        }
        let start = tokio::time::Instant::now();
        loop {
            self.reload().await?;
            if let Some(answer) = self.settled(epoch) {
                if start.elapsed() > RELOAD_INTERVAL {
                    tracing::info!(
                        table = self.table,
                        epoch,
                        "the snapshot of the epoch appeared after {:?}",
                        start.elapsed()
                    );
                }
                return Ok(answer);
            }
            if start.elapsed() >= self.wait {
                tracing::warn!(
                    table = self.table,
                    sink = self.sink_id,
                    epoch,
                    "no snapshot of the epoch in the table after {:?}; serving its rows \
                     without a snapshot id",
                    self.wait
                );
                return Ok(None);
            }
            tokio::time::sleep(RELOAD_INTERVAL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use runnel_connectors::iceberg::IcebergSink;
    use runnel_runtime::{Sink, Staged};

    use super::*;

    async fn commit(sink: &IcebergSink, epoch: Epoch, values: Vec<i64>) {
        let mut writer = sink.open(0, 1).await.unwrap();
        if !values.is_empty() {
            let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
            let batch =
                RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).unwrap();
            writer.write(batch).await.unwrap();
        }
        let pre_commit = writer.pre_commit(epoch).await.unwrap();
        let staged = vec![Staged {
            subtask: 0,
            pre_commit,
        }];
        sink.commit(epoch, 1, staged).await.unwrap();
    }

    #[tokio::test]
    async fn snapshots_are_found_by_epoch_and_missing_ones_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = IcebergCatalog::embedded(dir.path(), runnel_runtime::Ambient::system())
            .await
            .unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let sink = IcebergSink::new(catalog.clone(), "t", "job.table", schema.clone())
            .await
            .unwrap();
        let other = IcebergSink::new(catalog.clone(), "t", "other.table", schema)
            .await
            .unwrap();
        commit(&sink, 3, vec![1, 2]).await;
        commit(&other, 4, vec![3]).await;
        // Epoch 4 of this sink commits nothing, so it has no snapshot.
        commit(&sink, 4, vec![]).await;
        commit(&sink, 5, vec![4]).await;

        let table = catalog.load_table("t").await.unwrap();
        let (found, newest) = epoch_snapshots(table.metadata(), "job.table");
        assert_eq!(found.keys().copied().collect::<Vec<_>>(), vec![3, 5]);
        assert_eq!(newest, Some(5));
        for (epoch, id) in &found {
            let snapshot = table.metadata().snapshot_by_id(*id).unwrap();
            let summary = &snapshot.summary().additional_properties;
            assert_eq!(summary[EPOCH_PROPERTY], epoch.to_string());
        }

        let mut lookup = SnapshotLookup::new(catalog.clone(), "t", "job.table")
            .with_wait(Duration::from_millis(300));
        assert_eq!(lookup.snapshot_of(3).await.unwrap(), Some(found[&3]));
        assert_eq!(lookup.snapshot_of(5).await.unwrap(), Some(found[&5]));
        // Below the newest epoch and absent: none, without waiting.
        let start = std::time::Instant::now();
        assert_eq!(lookup.snapshot_of(4).await.unwrap(), None);
        assert!(start.elapsed() < Duration::from_millis(300));
        // Above it: waits for the commit, which lands while it waits.
        let late = {
            let sink = sink.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                commit(&sink, 6, vec![5]).await;
            })
        };
        let mut patient = SnapshotLookup::new(catalog.clone(), "t", "job.table")
            .with_wait(Duration::from_secs(30));
        let six = patient.snapshot_of(6).await.unwrap();
        late.await.unwrap();
        let table = catalog.load_table("t").await.unwrap();
        assert_eq!(six, table.metadata().current_snapshot_id());
        // Never committed: none after the wait.
        assert_eq!(lookup.snapshot_of(9).await.unwrap(), None);
    }
}
