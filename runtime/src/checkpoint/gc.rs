//! Garbage collection of old checkpoints, as a pure plan.
//!
//! [`plan_gc`] decides from what was listed and read; the driver deletes. The rules, in
//! order of importance:
//!
//! 1. **Never delete a file a kept manifest references.** Kept are all manifests from
//!    the oldest one naming one of the newest `retain` checkpoints on, and therefore
//!    always the newest manifest (it anchors the chain's numbering).
//! 2. **Never delete a file of a checkpoint in progress.** Its manifest does not exist
//!    yet, so files of epochs newer than `protect_newer_than_epoch` (the writer's newest
//!    committed epoch) and newer than every epoch any manifest names are kept.
//! 3. **Never guess.** If a kept manifest is unreadable, no state file is deleted: we
//!    cannot know what it references. Objects whose name is not in the checkpoint
//!    layout are never deleted.
//!
//! Everything else (state of older checkpoints, state of checkpoints that crashed before
//! their manifest, a zombie's state) is deleted, along with the manifests before the
//! kept ones. Deleting a manifest makes its number free again; a zombie that later
//! creates it is not fooled, because a claim only counts if nothing newer exists
//! ([`super::protocol::check_claim`]).
//!
//! Checkpoints are told apart by `(epoch, generation)`: after a fallback start, two
//! generations may have written the same epoch, and each is its own checkpoint.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::layout::parse_state_path;
use super::manifest::Manifest;

/// How many checkpoints are kept unless configured otherwise.
pub const DEFAULT_RETAIN: usize = 3;

/// What to delete. Both lists are sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcPlan {
    /// State files, as paths relative to the job directory.
    pub delete_files: Vec<String>,
    pub delete_manifests: Vec<u64>,
}

/// Plans a collection.
///
/// * `manifests`: the readable manifests, with their numbers;
/// * `all_state_files`: every object under `checkpoints/`, relative to the job directory;
/// * `all_manifest_seqs`: every manifest number listed, readable or not;
/// * `retain`: checkpoints to keep (at least 1);
/// * `protect_newer_than_epoch`: files of later epochs are kept; `None` keeps every file.
pub fn plan_gc(
    manifests: &[(u64, Manifest)],
    all_state_files: &[String],
    all_manifest_seqs: &[u64],
    retain: usize,
    protect_newer_than_epoch: Option<u64>,
) -> GcPlan {
    let retain = retain.max(1);
    let readable: BTreeMap<u64, &Manifest> = manifests.iter().map(|(s, m)| (*s, m)).collect();
    let Some(cutoff) = cutoff(&readable, retain) else {
        return GcPlan::default();
    };
    let all_seqs: BTreeSet<u64> = all_manifest_seqs
        .iter()
        .chain(readable.keys())
        .copied()
        .collect();
    let delete_manifests: Vec<u64> = all_seqs.range(..cutoff).copied().collect();

    let kept_unreadable = all_seqs
        .range(cutoff..)
        .any(|seq| !readable.contains_key(seq));
    let newest_named = readable
        .values()
        .filter_map(|m| m.checkpoint.as_ref().map(|cp| cp.epoch))
        .max();
    let limit = match (protect_newer_than_epoch, newest_named) {
        (Some(protect), Some(named)) if !kept_unreadable => protect.min(named),
        _ => {
            return GcPlan {
                delete_files: Vec::new(),
                delete_manifests,
            };
        }
    };
    let referenced: HashSet<&str> = readable
        .range(cutoff..)
        .filter_map(|(_, m)| m.checkpoint.as_ref())
        .flat_map(|cp| cp.files().map(|f| f.path.as_str()))
        .collect();
    let mut delete_files: Vec<String> = all_state_files
        .iter()
        .filter(|path| !referenced.contains(path.as_str()))
        .filter(|path| parse_state_path(path).is_some_and(|key| key.epoch <= limit))
        .cloned()
        .collect();
    delete_files.sort_unstable();
    delete_files.dedup();
    GcPlan {
        delete_files,
        delete_manifests,
    }
}

/// The smallest readable number from which on the manifests name at most `retain`
/// distinct checkpoints; `None` if nothing is readable.
fn cutoff(readable: &BTreeMap<u64, &Manifest>, retain: usize) -> Option<u64> {
    let mut kept = HashSet::new();
    let mut cutoff = None;
    for (&seq, m) in readable.iter().rev() {
        if let Some(cp) = &m.checkpoint {
            let key = (cp.epoch, cp.generation);
            if !kept.contains(&key) {
                if kept.len() == retain {
                    break;
                }
                kept.insert(key);
            }
        }
        cutoff = Some(seq);
    }
    cutoff
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::manifest::tests::{checkpoint, fence, meta};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn files_of(m: &Manifest) -> Vec<String> {
        m.checkpoint
            .iter()
            .flat_map(|cp| cp.files().map(|f| f.path.clone()))
            .collect()
    }

    #[test]
    fn keeps_the_newest_checkpoints_and_deletes_the_rest() {
        // 0 fresh fence, checkpoints of epochs 1..=5, then a fence restoring epoch 5.
        let mut chain = vec![(0, fence(0, 1, None))];
        chain.extend((1..=5).map(|e| (e, checkpoint(e, 1, e))));
        chain.push((6, fence(6, 2, Some(meta(5, 1)))));
        let seqs: Vec<u64> = (0..=6).collect();
        let mut files: Vec<String> = chain.iter().flat_map(|(_, m)| files_of(m)).collect();
        let orphan = "checkpoints/00000000000000000002-g7/window/00000.arrow".to_string();
        let in_progress = "checkpoints/00000000000000000006-g2/window/00000.arrow".to_string();
        let junk = "checkpoints/notes.txt".to_string();
        files.extend([orphan.clone(), in_progress.clone(), junk.clone()]);

        let plan = plan_gc(&chain, &files, &seqs, 3, Some(5));
        assert_eq!(plan.delete_manifests, vec![0, 1, 2]);
        let mut expected: Vec<String> = (1..=2).flat_map(|e| files_of(&chain[e].1)).collect();
        expected.push(orphan);
        expected.sort();
        assert_eq!(plan.delete_files, expected);

        // Nothing to protect yet: manifests may go, files stay.
        let plan = plan_gc(&chain, &files, &seqs, 3, None);
        assert_eq!(plan.delete_manifests, vec![0, 1, 2]);
        assert!(plan.delete_files.is_empty());
        // retain 0 means 1: the newest checkpoint survives, with both its manifests.
        let plan = plan_gc(&chain, &files, &seqs, 0, Some(5));
        assert_eq!(plan.delete_manifests, vec![0, 1, 2, 3, 4]);
        assert!(
            !plan
                .delete_files
                .iter()
                .any(|f| files_of(&chain[5].1).contains(f))
        );
    }

    #[test]
    fn an_unreadable_kept_manifest_stops_file_deletion() {
        let chain: Vec<(u64, Manifest)> = (1..=5).map(|e| (e, checkpoint(e, 1, e))).collect();
        let files: Vec<String> = chain.iter().flat_map(|(_, m)| files_of(m)).collect();
        let readable: Vec<(u64, Manifest)> =
            chain.iter().filter(|(s, _)| *s != 4).cloned().collect();
        let plan = plan_gc(&readable, &files, &[1, 2, 3, 4, 5], 2, Some(5));
        assert_eq!(plan.delete_manifests, vec![1, 2]);
        assert!(plan.delete_files.is_empty());
        // Nothing readable at all: delete nothing.
        assert_eq!(plan_gc(&[], &files, &[1, 2], 1, Some(5)), GcPlan::default());
    }

    /// A random history: fences (sometimes restoring an older checkpoint, as a fallback
    /// start does), checkpoints, unreadable manifests, orphans, files in progress, junk.
    struct History {
        readable: Vec<(u64, Manifest)>,
        seqs: Vec<u64>,
        files: Vec<String>,
        max_epoch: u64,
    }

    fn history(rng: &mut StdRng) -> History {
        let base = rng.random_range(0..5u64);
        let (mut generation, mut epoch) = (1u64, 0u64);
        let mut committed = Vec::new();
        let (mut readable, mut seqs, mut files) = (Vec::new(), Vec::new(), Vec::new());
        for seq in base..base + rng.random_range(1..25u64) {
            let m = if seq == base || rng.random_bool(0.25) {
                generation += u64::from(seq != base);
                let restored = match committed.len() {
                    0 => None,
                    n if rng.random_bool(0.2) => Some(committed[rng.random_range(0..n)]),
                    n => Some(committed[n - 1]),
                };
                let restored = restored.map(|(e, g)| meta(e, g));
                fence(seq, generation, restored)
            } else {
                epoch += rng.random_range(1..3u64);
                committed.push((epoch, generation));
                checkpoint(seq, generation, epoch)
            };
            files.extend(files_of(&m));
            seqs.push(seq);
            if rng.random_bool(0.9) {
                readable.push((seq, m));
            }
        }
        for _ in 0..rng.random_range(0..6) {
            let e = rng.random_range(0..epoch + 3);
            let g = rng.random_range(1..generation + 2);
            files.push(format!("checkpoints/{e:020}-g{g}/window/00009.arrow"));
        }
        files.push("checkpoints/junk".into());
        History {
            readable,
            seqs,
            files,
            max_epoch: epoch,
        }
    }

    #[test]
    fn random_histories_never_lose_a_kept_file_and_collect_everything_else() {
        for seed in 0..500 {
            let mut rng = StdRng::seed_from_u64(seed);
            let History {
                readable,
                seqs,
                files,
                max_epoch,
            } = history(&mut rng);
            let retain = rng.random_range(1..5);
            let protect = [
                None,
                Some(max_epoch),
                Some(rng.random_range(0..max_epoch + 2)),
            ][rng.random_range(0..3)];
            let plan = plan_gc(&readable, &files, &seqs, retain, protect);
            let ctx = format!("seed {seed}: {plan:?}");

            // Oracle: the smallest readable c whose suffix names <= retain checkpoints.
            let distinct_from = |c: u64| {
                let keys: HashSet<(u64, u64)> = readable
                    .iter()
                    .filter(|(s, _)| *s >= c)
                    .filter_map(|(_, m)| m.checkpoint.as_ref().map(|cp| (cp.epoch, cp.generation)))
                    .collect();
                keys.len()
            };
            let Some(cutoff) = readable
                .iter()
                .map(|(s, _)| *s)
                .filter(|&c| distinct_from(c) <= retain)
                .min()
            else {
                assert_eq!(plan, GcPlan::default(), "{ctx}");
                continue;
            };
            let expected_manifests: Vec<u64> =
                seqs.iter().copied().filter(|&s| s < cutoff).collect();
            assert_eq!(plan.delete_manifests, expected_manifests, "{ctx}");
            assert!(
                !plan.delete_manifests.contains(seqs.last().unwrap()),
                "{ctx}"
            );

            let kept: Vec<&Manifest> = readable
                .iter()
                .filter(|(s, _)| *s >= cutoff)
                .map(|(_, m)| m)
                .collect();
            let kept_files: HashSet<String> = kept.iter().flat_map(|m| files_of(m)).collect();
            for f in &plan.delete_files {
                assert!(!kept_files.contains(f), "{ctx}: deleted kept {f}");
                let key = parse_state_path(f).expect("only layout files are deleted");
                assert!(protect.is_some_and(|p| key.epoch <= p), "{ctx}: {f}");
            }
            let unreadable_kept = seqs
                .iter()
                .any(|s| *s >= cutoff && !readable.iter().any(|(r, _)| r == s));
            let newest_named = readable
                .iter()
                .filter_map(|(_, m)| m.checkpoint.as_ref().map(|c| c.epoch))
                .max();
            let mut expected_files: Vec<String> = files
                .iter()
                .filter(|f| !kept_files.contains(*f) && !unreadable_kept)
                .filter(|f| {
                    let Some(key) = parse_state_path(f) else {
                        return false;
                    };
                    protect.is_some_and(|p| key.epoch <= p)
                        && newest_named.is_some_and(|n| key.epoch <= n)
                })
                .cloned()
                .collect();
            expected_files.sort();
            expected_files.dedup();
            assert_eq!(plan.delete_files, expected_files, "{ctx}");
        }
    }
}
