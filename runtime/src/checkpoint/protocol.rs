//! The checkpoint protocol as pure decisions: what to do given what was read.
//!
//! Nothing here does I/O. [`super::driver`] reads the chain, asks these functions what it
//! means and performs the one write they call for, so every interleaving of instances and
//! every crash point is a table of inputs in the unit tests (Arroyo's state protocol,
//! SlateDB's fenced manifests).
//!
//! # Why a create-only chain is a fence
//!
//! Manifests are numbered `0, 1, 2, ...` and only ever written with `PutMode::Create`,
//! so each number is claimed by exactly one writer. An instance writes at the number
//! after the last one *it* wrote; finding the number taken means someone else appended:
//!
//! * while **running**, that is always the end of this instance: either a newer
//!   generation fenced it ([`ConflictDecision::Fenced`]), or something impossible
//!   happened ([`ConflictDecision::Internal`]); it never skips ahead, so it can never
//!   append after the fence of its successor;
//! * while **starting**, a lower or equal generation winning the race means an older
//!   instance (a zombie) completed a checkpoint after we read the chain, or a twin chose
//!   the same generation: we must read the chain again and restore from what is now
//!   newest ([`ConflictDecision::RereadAndRetry`]), never keep our stale decision.
//!
//! # Generations and corrupt manifests
//!
//! A new instance takes `max(generation of every readable manifest) + 1`. A corrupt
//! manifest's generation cannot be read, so a generation may repeat after
//! [`CorruptPolicy::FallbackToPrevious`] skipped one. That is still safe: safety comes
//! from the sequence numbers, not the generation labels. The fence claims the number
//! after *all* existing ones, corrupt ones included; any other writer's next number is at
//! most that, and in the running phase every conflict other than finding its own write
//! stops it. Generations only order instances in starting races and name the winner.

use super::manifest::{CheckpointMeta, CorruptManifest, MANIFEST_FORMAT, Manifest, ManifestKind};

/// What to do when the newest manifest cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CorruptPolicy {
    /// Refuse to start: an operator must look. The default, because restoring an older
    /// checkpoint can replay epochs that sinks already committed from the lost one.
    #[default]
    FailClosed,
    /// Skip corrupt manifests and restore the newest readable checkpoint before them.
    /// Trades exactness for availability.
    FallbackToPrevious,
}

/// How a starting instance proceeds, decided from the chain it read.
#[derive(Debug, Clone, PartialEq)]
pub enum StartDecision {
    /// No checkpoint to restore: write a fence at `fence_seq` and start from scratch.
    /// `skipped` is non-empty only when [`CorruptPolicy::FallbackToPrevious`] skipped
    /// corrupt manifests back to a fence that named no checkpoint.
    Fresh {
        fence_seq: u64,
        generation: u64,
        skipped: Vec<u64>,
    },
    /// Restore `from`, after writing a fence at `fence_seq` that names it.
    Restore {
        from: CheckpointMeta,
        fence_seq: u64,
        generation: u64,
        /// Corrupt manifests newer than the one restored from (fallback policy only).
        skipped: Vec<u64>,
    },
    /// Do not start; `reason` says which manifest is corrupt and why.
    FailClosed { reason: String },
}

/// Decides how to start from the chain read: `(seq, decoded manifest)` in any order.
///
/// Never a silent fresh start when manifests exist: either the newest readable one names
/// what to restore, or we fail closed.
pub fn decide_start(
    chain: &[(u64, Result<Manifest, CorruptManifest>)],
    policy: CorruptPolicy,
) -> StartDecision {
    let mut newest_first: Vec<&(u64, Result<Manifest, CorruptManifest>)> = chain.iter().collect();
    newest_first.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    let Some(&&(newest_seq, _)) = newest_first.first() else {
        return StartDecision::Fresh {
            fence_seq: 0,
            generation: 1,
            skipped: Vec::new(),
        };
    };
    let fence_seq = newest_seq + 1;
    let generation = chain
        .iter()
        .filter_map(|(_, m)| m.as_ref().ok().map(|m| m.generation))
        .max()
        .unwrap_or(0)
        + 1;
    let mut skipped = Vec::new();
    for (seq, manifest) in newest_first {
        match manifest {
            Ok(m) => {
                return match &m.checkpoint {
                    Some(cp) => StartDecision::Restore {
                        from: cp.clone(),
                        fence_seq,
                        generation,
                        skipped,
                    },
                    None => StartDecision::Fresh {
                        fence_seq,
                        generation,
                        skipped,
                    },
                };
            }
            Err(corrupt) if policy == CorruptPolicy::FailClosed => {
                return StartDecision::FailClosed {
                    reason: format!(
                        "newest manifest {seq} is unreadable ({}); refusing to start \
                         (corrupt-manifest policy is fail-closed)",
                        corrupt.0
                    ),
                };
            }
            Err(_) => skipped.push(*seq),
        }
    }
    StartDecision::FailClosed {
        reason: format!(
            "all {} manifests are unreadable (seq {}..={newest_seq}); refusing to start \
             from scratch over an existing checkpoint chain",
            skipped.len(),
            skipped.last().copied().unwrap_or(newest_seq)
        ),
    }
}

/// Which phase a writer is in when its create finds the number taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Writing the fence of a new instance.
    Starting,
    /// Appending checkpoints after its own fence.
    Running,
}

/// What to do after `PutMode::Create` of a manifest found the number taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictDecision {
    /// Running only: the object is the manifest we tried to write, so an earlier attempt
    /// of ours landed (an object-store client retry after a timeout). Proceed as if
    /// created. (A starting instance re-reads instead, see [`on_create_conflict`].)
    AlreadyWritten,
    /// Stop for good: a newer instance owns the job. `None` if its manifest is unreadable.
    Fenced { by_generation: Option<u64> },
    /// Starting only: read the chain again and decide again.
    RereadAndRetry,
    /// An invariant of the protocol is broken; stop, and say why.
    Internal(String),
}

/// Decides what finding `winner` at the number of `mine` means.
pub fn on_create_conflict(
    mine: &Manifest,
    winner: &Result<Manifest, CorruptManifest>,
    phase: Phase,
) -> ConflictDecision {
    let seq = mine.seq;
    let ours = mine.generation;
    let w = match winner {
        // Only a running instance may recognise its own write: its generation is its
        // alone. Two starting instances that read the same chain build byte-identical
        // fences, so a starting instance can never tell a twin's fence from its own.
        Ok(w) if w == mine && phase == Phase::Running => return ConflictDecision::AlreadyWritten,
        Ok(w) => w,
        // A starting instance re-reads; decide_start then applies the corrupt policy.
        Err(_) if phase == Phase::Starting => return ConflictDecision::RereadAndRetry,
        // Running: someone wrote where only we should have. Fail closed.
        Err(_) => {
            return ConflictDecision::Fenced {
                by_generation: None,
            };
        }
    };
    match phase {
        _ if w.generation > ours => ConflictDecision::Fenced {
            by_generation: Some(w.generation),
        },
        Phase::Starting => ConflictDecision::RereadAndRetry,
        // Equal generation, different manifest: only possible when a fallback start
        // re-used the generation of a skipped corrupt fence. Its owner must stop.
        Phase::Running if w.generation == ours => ConflictDecision::Fenced {
            by_generation: Some(w.generation),
        },
        Phase::Running => ConflictDecision::Internal(format!(
            "manifest {seq} was written by generation {} after the fence of generation \
             {ours}; an older instance never appends after a newer fence",
            w.generation
        )),
    }
}

/// Decides whether a just-created manifest is the newest; `newer` are the numbers listed
/// after it. A number below the newest can be free again only because garbage collection
/// deleted it, so a zombie that finds one must not take it as a successful append.
pub fn check_claim(seq: u64, newer: &[u64]) -> Result<(), u64> {
    match newer.iter().copied().filter(|&s| s > seq).min() {
        Some(newer) => Err(newer),
        None => Ok(()),
    }
}

/// A running instance's place in the chain: the number it writes next, its generation,
/// and the newest checkpoint it knows is complete. Not `Clone`: one writer per position.
#[derive(Debug)]
pub struct ChainPosition {
    job: String,
    generation: u64,
    next_seq: u64,
    head_epoch: Option<u64>,
    usable: bool,
}

impl ChainPosition {
    /// The position right after a fence of `generation` at `fence_seq`.
    pub(crate) fn after_fence(job: &str, fence: &Manifest) -> Self {
        ChainPosition {
            job: job.to_string(),
            generation: fence.generation,
            next_seq: fence.seq + 1,
            head_epoch: fence.checkpoint.as_ref().map(|cp| cp.epoch),
            usable: true,
        }
    }

    pub fn job(&self) -> &str {
        &self.job
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The number the next manifest will claim.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Epoch of the newest checkpoint in the chain as this writer knows it.
    pub fn head_epoch(&self) -> Option<u64> {
        self.head_epoch
    }

    /// False once fenced or after a write whose outcome is unknown: only a restart
    /// (reading the chain again) can tell what the chain holds then.
    pub fn is_usable(&self) -> bool {
        self.usable
    }

    /// The manifest committing `meta` at the next number; checks it is ours and newer.
    pub fn checkpoint_manifest(&self, meta: CheckpointMeta) -> Result<Manifest, String> {
        if !self.usable {
            return Err(format!(
                "the chain position of job {} (generation {}) is unusable after a fence or \
                 a manifest write of unknown outcome; restart the job",
                self.job, self.generation
            ));
        }
        if meta.generation != self.generation {
            return Err(format!(
                "checkpoint of epoch {} holds state of generation {}, but this instance is \
                 generation {}",
                meta.epoch, meta.generation, self.generation
            ));
        }
        if let Some(head) = self.head_epoch.filter(|&head| meta.epoch <= head) {
            return Err(format!(
                "checkpoint epoch {} does not follow the newest checkpoint, epoch {head}",
                meta.epoch
            ));
        }
        Ok(Manifest {
            format: MANIFEST_FORMAT,
            job: self.job.clone(),
            seq: self.next_seq,
            generation: self.generation,
            kind: ManifestKind::Checkpoint,
            checkpoint: Some(meta),
        })
    }

    /// Records that `manifest` (built by [`Self::checkpoint_manifest`]) is committed.
    pub(crate) fn committed(&mut self, manifest: &Manifest) {
        self.next_seq = manifest.seq + 1;
        self.head_epoch = manifest.checkpoint.as_ref().map(|cp| cp.epoch);
    }

    /// Makes the position unusable (fenced, or outcome of a write unknown).
    pub(crate) fn retire(&mut self) {
        self.usable = false;
    }
}

/// The fence a starting instance writes: `restored` is the checkpoint it restores.
pub fn fence_manifest(
    job: &str,
    seq: u64,
    generation: u64,
    restored: Option<CheckpointMeta>,
) -> Manifest {
    Manifest {
        format: MANIFEST_FORMAT,
        job: job.to_string(),
        seq,
        generation,
        kind: ManifestKind::Fence,
        checkpoint: restored,
    }
}
