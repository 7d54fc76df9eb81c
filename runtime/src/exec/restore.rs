//! Turning a checkpoint back into a running job's starting point.
//!
//! Operator state is partitioned by key group: every row of keyed state carries the
//! `_key_group` column ([`crate::keys::KEY_GROUP_COLUMN`]), and each new subtask receives
//! exactly the rows of the key groups it now owns, so a checkpoint taken at parallelism N
//! restores at parallelism M. State without that column (not keyed) goes to subtask
//! `old subtask % M`.

use std::collections::HashMap;

use arrow::array::{AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::UInt32Type;
use arrow::record_batch::RecordBatch;
use futures::{StreamExt, TryStreamExt};

use crate::checkpoint::{CheckpointMeta, CheckpointStore, StateFile, read_state};
use crate::error::{Error, Result};
use crate::graph::{JobGraph, NodeKind};
use crate::keys::{KEY_GROUP_COLUMN, key_groups_of_subtask};
use crate::sink::{PreCommit, Staged};

/// State files read concurrently while restoring.
const READ_CONCURRENCY: usize = 8;

/// What a restored job starts from.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// Per node name: per old subtask, its state batches.
    pub(crate) state: HashMap<String, Vec<(usize, Vec<RecordBatch>)>>,
    /// Per source node name: partition -> offset.
    pub(crate) positions: HashMap<String, HashMap<u32, u64>>,
    /// Per operator node name: the smallest watermark its subtasks had reached.
    pub(crate) watermarks: HashMap<String, crate::message::Millis>,
}

async fn read_files(store: &dyn CheckpointStore, files: &[StateFile]) -> Result<Vec<RecordBatch>> {
    // Owned items: a closure over `&StateFile` would make the job's future Send only
    // for one lifetime, and `spawn` could then not run inside `tokio::spawn`.
    let parts: Vec<Vec<RecordBatch>> = futures::stream::iter(files.iter().cloned())
        .map(|file| async move { read_state(store, &file).await })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(parts.into_iter().flatten().collect())
}

/// Reads everything `meta` names and checks it fits `graph`.
pub(crate) async fn load(
    store: &dyn CheckpointStore,
    meta: &CheckpointMeta,
    graph: &JobGraph,
) -> Result<Restored> {
    if meta.max_key_groups != graph.max_key_groups {
        return Err(Error::Plan(format!(
            "the checkpoint of epoch {} has {} key groups, the job {}: they cannot change",
            meta.epoch, meta.max_key_groups, graph.max_key_groups
        )));
    }
    let mut restored = Restored::default();
    for part in &meta.operators {
        if !graph.nodes.iter().any(|n| n.name == part.node) {
            return Err(Error::Plan(format!(
                "the checkpoint of epoch {} holds state of `{}`, which the job no longer has",
                meta.epoch, part.node
            )));
        }
        if let Some(w) = part.watermark {
            let node = restored.watermarks.entry(part.node.clone()).or_insert(w);
            *node = (*node).min(w);
        }
        let batches = read_files(store, &part.files).await?;
        restored
            .state
            .entry(part.node.clone())
            .or_default()
            .push((part.subtask, batches));
    }
    for position in &meta.sources {
        restored
            .positions
            .entry(position.node.clone())
            .or_default()
            .insert(position.partition, position.offset);
    }
    Ok(restored)
}

/// The staged sink output of the checkpoint, per sink node, for phase 2.
pub(crate) fn staged_sinks(
    meta: &CheckpointMeta,
    restored: &mut Restored,
    graph: &JobGraph,
) -> Vec<(usize, Vec<Staged>)> {
    let mut out = Vec::new();
    for (id, node) in graph.nodes.iter().enumerate() {
        if !matches!(node.kind, NodeKind::Sink { .. }) {
            continue;
        }
        let mut batches: HashMap<usize, Vec<RecordBatch>> = restored
            .state
            .remove(&node.name)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let staged: Vec<Staged> = meta
            .sinks
            .iter()
            .filter(|s| s.node == node.name)
            .map(|s| Staged {
                subtask: s.subtask,
                pre_commit: PreCommit {
                    meta: s.staged.clone(),
                    batches: batches.remove(&s.subtask).unwrap_or_default(),
                },
            })
            .collect();
        if !staged.is_empty() {
            out.push((id, staged));
        }
    }
    out
}

/// The part of a node's restored state that `subtask` of `parallelism` owns.
pub(crate) fn state_for_subtask(
    parts: &[(usize, Vec<RecordBatch>)],
    subtask: usize,
    parallelism: usize,
    max_key_groups: u32,
) -> Result<Vec<RecordBatch>> {
    let owned = key_groups_of_subtask(subtask, max_key_groups, parallelism);
    let mut out = Vec::new();
    for (old_subtask, batches) in parts {
        for batch in batches {
            match batch.schema().index_of(KEY_GROUP_COLUMN) {
                Ok(column) => {
                    let groups = batch.column(column).as_primitive::<UInt32Type>();
                    let keep: BooleanArray = groups
                        .values()
                        .iter()
                        .map(|g| Some(owned.contains(g)))
                        .collect();
                    let kept = filter_record_batch(batch, &keep)?;
                    if kept.num_rows() > 0 {
                        out.push(kept);
                    }
                }
                Err(_) if old_subtask % parallelism == subtask => out.push(batch.clone()),
                Err(_) => {}
            }
        }
    }
    Ok(out)
}
