//! Turning a checkpoint back into a running job's starting point: the chain is claimed,
//! the newest checkpoint read and its sinks committed again ([`recover`]).
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

use super::coordinator::{CheckpointConfig, Durable};
use crate::checkpoint::{
    ChainPosition, CheckpointMeta, CheckpointStore, StateFile, read_state, start as start_chain,
};
use crate::error::{Error, Result};
use crate::graph::{JobGraph, NodeKind};
use crate::keys::{KEY_GROUP_COLUMN, key_groups_of_subtask};
use crate::message::Epoch;
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
    /// Per source node name: partition -> largest event time read.
    pub(crate) event_times: HashMap<String, HashMap<u32, crate::message::Millis>>,
    /// Per operator node name: the smallest watermark its subtasks had reached.
    pub(crate) watermarks: HashMap<String, crate::message::Millis>,
}

/// Where a starting job begins.
pub(crate) struct Recovered {
    /// The checkpointing state, when the job checkpoints.
    pub(crate) durable: Option<Durable>,
    /// What its subtasks restore.
    pub(crate) restored: Restored,
    /// The first epoch it may use.
    pub(crate) next_epoch: Epoch,
}

/// Claims the job's chain and loads the checkpoint to resume from, re-committing its
/// sinks. A job without checkpoints starts empty at epoch 1.
pub(crate) async fn recover(
    graph: &JobGraph,
    config: Option<&CheckpointConfig>,
) -> Result<Recovered> {
    let Some(config) = config else {
        return Ok(Recovered {
            durable: None,
            restored: Restored::default(),
            next_epoch: 1,
        });
    };
    let started = start_chain(config.store.as_ref(), config.policy).await?;
    if !started.skipped.is_empty() {
        tracing::warn!(
            job = %graph.name,
            "skipped corrupt checkpoint manifests {:?}, restoring an older checkpoint",
            started.skipped
        );
    }
    let position: ChainPosition = started.position;
    // Every manifest's epoch is at most its sequence number (one manifest per
    // checkpoint, and epochs start above the fence), so epochs above the fence's number
    // were never used, not even by a checkpoint whose manifest is now corrupt or missing
    // and which a sink may already have committed. A sink keyed by epoch (Iceberg) can
    // therefore trust that a new epoch is new, also after a fallback.
    let epoch_floor = started.seq + 1;
    let (restored, next_epoch) = match &started.restore {
        None => (Restored::default(), epoch_floor),
        Some(meta) => {
            let mut restored = load(config.store.as_ref(), meta, graph).await?;
            for (node, staged) in staged_sinks(meta, &mut restored, graph) {
                if let NodeKind::Sink { sink } = &graph.nodes[node].kind {
                    sink.commit(meta.epoch, position.generation(), staged)
                        .await?;
                }
            }
            tracing::info!(
                job = %graph.name,
                epoch = meta.epoch,
                generation = position.generation(),
                "restored from checkpoint"
            );
            (restored, epoch_floor.max(meta.epoch + 1))
        }
    };
    let durable = Durable {
        store: config.store.clone(),
        position,
        interval: config.interval,
        retain: config.retain,
    };
    Ok(Recovered {
        durable: Some(durable),
        restored,
        next_epoch,
    })
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
        if let Some(t) = position.max_event_time {
            restored
                .event_times
                .entry(position.node.clone())
                .or_default()
                .insert(position.partition, t);
        }
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
