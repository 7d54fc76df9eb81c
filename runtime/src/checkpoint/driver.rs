//! The protocol's loops: read, decide (purely), write one object, repeat.
//!
//! These functions hold no logic of their own beyond sequencing: every decision is a
//! call into [`super::protocol`] or [`super::gc`]. A crash is simply "stop calling",
//! which is how the crash-point tests drive them.
//!
//! Contract with the executor:
//! * [`start`] before anything else; restore `Started::restore`, rewind sources to its
//!   offsets and run phase 2 of its sink commits again (sinks' commits are idempotent).
//! * Write the state files of epoch `e` with `position.generation()` in their
//!   [`super::StateFileKey`], then [`commit_checkpoint`]. Only on
//!   [`CommitOutcome::Committed`] may sinks commit `e`. On [`CommitOutcome::Fenced`] the
//!   instance must stop without committing anything, and without discarding what sinks
//!   staged: the manifest may have landed just before the successor's fence, and then
//!   the successor restores `e` and commits its staged data. On `Err` the outcome of the
//!   write is unknown: the position refuses further commits, and the job must restart
//!   through [`start`], which finds out from the chain what was committed.
//! * [`collect_garbage`] from time to time, from the instance that owns the head.
//!
//! Storage errors are returned as they are; every function here is safe to call again
//! (a failed [`start`] may have left a fence, which the next start simply follows).

use futures::{StreamExt, TryStreamExt};

use super::gc::{GcPlan, plan_gc};
use super::manifest::{CheckpointMeta, CorruptManifest, Manifest};
use super::protocol::{
    ChainPosition, ConflictDecision, CorruptPolicy, Phase, StartDecision, check_claim,
    decide_start, fence_manifest, on_create_conflict,
};
use super::store::{CheckpointStore, CreateOutcome};
use crate::error::{Error, Result};

/// How often [`start`] re-reads the chain when other instances keep appending.
pub const MAX_START_ATTEMPTS: usize = 16;

/// Manifests read concurrently when loading the chain.
const READ_CONCURRENCY: usize = 8;

/// A started instance: its fence is the newest manifest of the chain.
#[derive(Debug)]
pub struct Started {
    pub generation: u64,
    /// Number of the fence manifest.
    pub seq: u64,
    /// The checkpoint to restore; `None` for a fresh start.
    pub restore: Option<CheckpointMeta>,
    /// Corrupt manifests skipped under [`CorruptPolicy::FallbackToPrevious`].
    pub skipped: Vec<u64>,
    /// Where this instance appends its checkpoints.
    pub position: ChainPosition,
}

/// Result of [`commit_checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The checkpoint is durable as manifest `seq`; sinks may commit its epoch.
    Committed { seq: u64 },
    /// A newer instance owns the job: stop, commit nothing, keep staged data (the
    /// successor may restore this epoch). `None` if the winner was unreadable.
    Fenced { by_generation: Option<u64> },
}

/// Result of [`collect_garbage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcOutcome {
    /// What was deleted.
    Collected(GcPlan),
    /// Someone appended after this instance (`newest_seq`); nothing was deleted.
    Superseded { newest_seq: u64 },
}

/// Starting was refused: the chain is damaged and the policy says fail closed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartRefused(pub String);

enum Claim {
    Claimed,
    Retry,
    Fenced(Option<u64>),
}

/// Reads the whole chain, in order.
pub async fn read_chain(
    store: &dyn CheckpointStore,
) -> Result<Vec<(u64, Result<Manifest, CorruptManifest>)>> {
    let seqs = store.list_manifests(None).await?;
    futures::stream::iter(seqs)
        .map(|seq| async move { Ok((seq, store.read_manifest(seq).await?)) })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await
}

/// Claims the chain for a new instance: reads it, decides, writes the fence.
pub async fn start(store: &dyn CheckpointStore, policy: CorruptPolicy) -> Result<Started> {
    let job = store.job();
    for _ in 0..MAX_START_ATTEMPTS {
        let chain = read_chain(store).await?;
        let (fence, skipped) = match decide_start(&chain, policy) {
            StartDecision::FailClosed { reason } => {
                return Err(Error::external(
                    format!("starting job {job}"),
                    StartRefused(reason),
                ));
            }
            StartDecision::Fresh {
                fence_seq,
                generation,
                skipped,
            } => (fence_manifest(job, fence_seq, generation, None), skipped),
            StartDecision::Restore {
                from,
                fence_seq,
                generation,
                skipped,
            } => (
                fence_manifest(job, fence_seq, generation, Some(from)),
                skipped,
            ),
        };
        match claim(store, &fence, Phase::Starting).await? {
            Claim::Claimed => {
                return Ok(Started {
                    generation: fence.generation,
                    seq: fence.seq,
                    restore: fence.checkpoint.clone(),
                    skipped,
                    position: ChainPosition::after_fence(job, &fence),
                });
            }
            Claim::Retry => continue,
            Claim::Fenced(by_generation) => {
                let by = by_generation.map_or("an unreadable manifest".into(), |g| {
                    format!("generation {g}")
                });
                return Err(Error::Fenced(format!(
                    "job {job} is owned by a newer instance ({by}); this one did not start"
                )));
            }
        }
    }
    Err(Error::external(
        format!("starting job {job}"),
        format!(
            "gave up after {MAX_START_ATTEMPTS} attempts: other instances kept appending to \
             the checkpoint chain"
        ),
    ))
}

/// Commits the checkpoint `meta` (whose state files are already written) as the next
/// manifest of `position`'s chain.
pub async fn commit_checkpoint(
    store: &dyn CheckpointStore,
    position: &mut ChainPosition,
    meta: CheckpointMeta,
) -> Result<CommitOutcome> {
    if position.job() != store.job() {
        return Err(Error::Internal(format!(
            "chain position of job {} used with the store of job {}",
            position.job(),
            store.job()
        )));
    }
    let manifest = position
        .checkpoint_manifest(meta)
        .map_err(Error::Internal)?;
    match claim(store, &manifest, Phase::Running).await {
        Ok(Claim::Claimed) => {
            position.committed(&manifest);
            Ok(CommitOutcome::Committed { seq: manifest.seq })
        }
        Ok(Claim::Fenced(by_generation)) => {
            position.retire();
            Ok(CommitOutcome::Fenced { by_generation })
        }
        Ok(Claim::Retry) => {
            position.retire();
            Err(Error::Internal(
                "the protocol asked a running instance to re-read the chain".into(),
            ))
        }
        Err(e) => {
            position.retire();
            Err(e)
        }
    }
}

/// Creates `manifest` at its number and checks it is then the newest of the chain.
async fn claim(store: &dyn CheckpointStore, manifest: &Manifest, phase: Phase) -> Result<Claim> {
    if store.create_manifest(manifest).await? == CreateOutcome::AlreadyExists {
        let winner = store.read_manifest(manifest.seq).await?;
        match on_create_conflict(manifest, &winner, phase) {
            ConflictDecision::AlreadyWritten => {}
            ConflictDecision::Fenced { by_generation } => return Ok(Claim::Fenced(by_generation)),
            ConflictDecision::RereadAndRetry => return Ok(Claim::Retry),
            ConflictDecision::Internal(reason) => return Err(Error::Internal(reason)),
        }
    }
    // The number was free; it may still be a hole left by garbage collection below the
    // chain's head (a zombie's stale position). Only the head counts as an append.
    let newer = store.list_manifests(Some(manifest.seq)).await?;
    match check_claim(manifest.seq, &newer) {
        Ok(()) => Ok(Claim::Claimed),
        Err(newer_seq) => {
            let winner = store.read_manifest(newer_seq).await?;
            Ok(Claim::Fenced(winner.ok().map(|w| w.generation)))
        }
    }
}

/// Deletes checkpoints older than the newest `retain`, and unreferenced state files of
/// epochs up to `position`'s newest checkpoint (newer files may be a checkpoint in
/// progress). Runs only while `position` is the head of the chain.
pub async fn collect_garbage(
    store: &dyn CheckpointStore,
    position: &ChainPosition,
    retain: usize,
) -> Result<GcOutcome> {
    if !position.is_usable() {
        return Err(Error::Internal(format!(
            "garbage collection of job {} by a fenced or failed instance",
            position.job()
        )));
    }
    let chain = read_chain(store).await?;
    if let Some(&(newest_seq, _)) = chain.last().filter(|(seq, _)| *seq >= position.next_seq()) {
        return Ok(GcOutcome::Superseded { newest_seq });
    }
    let seqs: Vec<u64> = chain.iter().map(|(seq, _)| *seq).collect();
    let readable: Vec<(u64, Manifest)> = chain
        .into_iter()
        .filter_map(|(seq, m)| Some((seq, m.ok()?)))
        .collect();
    let files = store.list_state_files().await?;
    let plan = plan_gc(&readable, &files, &seqs, retain, position.head_epoch());
    // Manifests first: a crash in between leaves unreferenced files, which the next
    // collection deletes, never a manifest naming a deleted file.
    for &seq in &plan.delete_manifests {
        store.delete_manifest(seq).await?;
    }
    for path in &plan.delete_files {
        store.delete_state_file(path).await?;
    }
    Ok(GcOutcome::Collected(plan))
}
