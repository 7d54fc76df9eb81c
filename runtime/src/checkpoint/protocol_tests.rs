//! Every branch of the pure protocol, plus a seeded model check of racing instances.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::manifest::tests::{checkpoint, fence, meta};
use super::manifest::{CorruptManifest, Manifest};
use super::protocol::*;

type Chain = Vec<(u64, Result<Manifest, CorruptManifest>)>;

fn corrupt() -> Result<Manifest, CorruptManifest> {
    Err(CorruptManifest("checksum mismatch".into()))
}

fn both_policies() -> [CorruptPolicy; 2] {
    [CorruptPolicy::FailClosed, CorruptPolicy::FallbackToPrevious]
}

#[test]
fn empty_chain_starts_fresh_at_zero() {
    for policy in both_policies() {
        let expected = StartDecision::Fresh {
            fence_seq: 0,
            generation: 1,
            skipped: vec![],
        };
        assert_eq!(decide_start(&[], policy), expected);
    }
}

#[test]
fn restores_what_the_newest_manifest_names_whatever_the_input_order() {
    // Generation 3 appears below the head: the new generation exceeds every one seen.
    let mut chain: Chain = vec![
        (0, Ok(fence(0, 1, None))),
        (1, Ok(checkpoint(1, 1, 1))),
        (2, Ok(fence(2, 3, Some(meta(1, 1))))),
        (3, Ok(fence(3, 2, Some(meta(1, 1))))),
        (4, Ok(checkpoint(4, 3, 2))),
    ];
    chain.reverse();
    for policy in both_policies() {
        let expected = StartDecision::Restore {
            from: meta(2, 3),
            fence_seq: 5,
            generation: 4,
            skipped: vec![],
        };
        assert_eq!(decide_start(&chain, policy), expected);
    }
    // The head is a fence: it names the checkpoint its instance restored.
    let chain: Chain = vec![
        (7, Ok(checkpoint(7, 1, 3))),
        (8, Ok(fence(8, 2, Some(meta(3, 1))))),
    ];
    let StartDecision::Restore {
        from,
        fence_seq,
        generation,
        ..
    } = decide_start(&chain, CorruptPolicy::FailClosed)
    else {
        panic!("expected a restore");
    };
    assert_eq!((from, fence_seq, generation), (meta(3, 1), 9, 3));
}

#[test]
fn a_head_fence_without_checkpoint_starts_fresh_after_it() {
    let chain: Chain = vec![(0, Ok(fence(0, 1, None))), (1, Ok(fence(1, 2, None)))];
    let expected = StartDecision::Fresh {
        fence_seq: 2,
        generation: 3,
        skipped: vec![],
    };
    assert_eq!(decide_start(&chain, CorruptPolicy::FailClosed), expected);
}

#[test]
fn corrupt_head_fails_closed_or_falls_back() {
    let chain: Chain = vec![(3, Ok(checkpoint(3, 1, 5))), (4, corrupt()), (5, corrupt())];
    let StartDecision::FailClosed { reason } = decide_start(&chain, CorruptPolicy::FailClosed)
    else {
        panic!("fail-closed must refuse");
    };
    assert!(
        reason.contains("manifest 5") && reason.contains("checksum"),
        "{reason}"
    );
    // The fence goes after every number, corrupt ones included.
    let expected = StartDecision::Restore {
        from: meta(5, 1),
        fence_seq: 6,
        generation: 2,
        skipped: vec![5, 4],
    };
    assert_eq!(
        decide_start(&chain, CorruptPolicy::FallbackToPrevious),
        expected
    );
}

#[test]
fn a_corrupt_manifest_below_a_readable_head_is_ignored() {
    let chain: Chain = vec![(3, corrupt()), (4, Ok(checkpoint(4, 2, 5)))];
    for policy in both_policies() {
        let StartDecision::Restore { from, skipped, .. } = decide_start(&chain, policy) else {
            panic!("expected a restore");
        };
        assert_eq!((from, skipped), (meta(5, 2), vec![]));
    }
}

#[test]
fn fallback_to_a_fence_without_checkpoint_is_a_fresh_start_that_says_so() {
    let chain: Chain = vec![(0, Ok(fence(0, 1, None))), (1, corrupt())];
    let expected = StartDecision::Fresh {
        fence_seq: 2,
        generation: 2,
        skipped: vec![1],
    };
    assert_eq!(
        decide_start(&chain, CorruptPolicy::FallbackToPrevious),
        expected
    );
}

#[test]
fn never_a_fresh_start_when_every_manifest_is_corrupt() {
    let chain: Chain = vec![(2, corrupt()), (3, corrupt())];
    for policy in both_policies() {
        let StartDecision::FailClosed { reason } = decide_start(&chain, policy) else {
            panic!("{policy:?} must refuse");
        };
        assert!(reason.contains("manifest"), "{reason}");
    }
}

#[test]
fn create_conflicts_decide_by_phase_and_generation() {
    use ConflictDecision::*;
    let mine = checkpoint(5, 2, 9);
    let same_gen_other = checkpoint(5, 2, 10);
    let cases: Vec<(Result<Manifest, CorruptManifest>, Phase, ConflictDecision)> = vec![
        (Ok(mine.clone()), Phase::Starting, RereadAndRetry),
        (Ok(mine.clone()), Phase::Running, AlreadyWritten),
        (
            Ok(fence(5, 3, None)),
            Phase::Starting,
            Fenced {
                by_generation: Some(3),
            },
        ),
        (
            Ok(fence(5, 3, None)),
            Phase::Running,
            Fenced {
                by_generation: Some(3),
            },
        ),
        (Ok(same_gen_other.clone()), Phase::Starting, RereadAndRetry),
        (
            Ok(same_gen_other),
            Phase::Running,
            Fenced {
                by_generation: Some(2),
            },
        ),
        (Ok(checkpoint(5, 1, 9)), Phase::Starting, RereadAndRetry),
        (corrupt(), Phase::Starting, RereadAndRetry),
        (
            corrupt(),
            Phase::Running,
            Fenced {
                by_generation: None,
            },
        ),
    ];
    for (winner, phase, expected) in cases {
        assert_eq!(
            on_create_conflict(&mine, &winner, phase),
            expected,
            "{winner:?} {phase:?}"
        );
    }
    let lower = Ok(checkpoint(5, 1, 9));
    let Internal(reason) = on_create_conflict(&mine, &lower, Phase::Running) else {
        panic!("a lower generation after our fence is a broken invariant");
    };
    assert!(
        reason.contains("generation 1") && reason.contains("generation 2"),
        "{reason}"
    );
}

#[test]
fn a_claim_counts_only_if_nothing_newer_exists() {
    assert_eq!(check_claim(4, &[]), Ok(()));
    assert_eq!(check_claim(4, &[2, 3, 4]), Ok(()));
    assert_eq!(check_claim(4, &[9, 6, 2]), Err(6));
}

#[test]
fn a_position_builds_only_valid_next_manifests() {
    let mut pos = ChainPosition::after_fence("q5", &fence(3, 2, Some(meta(7, 1))));
    assert_eq!(
        (pos.generation(), pos.next_seq(), pos.head_epoch()),
        (2, 4, Some(7))
    );
    assert!(
        pos.checkpoint_manifest(meta(8, 1))
            .unwrap_err()
            .contains("generation")
    );
    assert!(
        pos.checkpoint_manifest(meta(7, 2))
            .unwrap_err()
            .contains("epoch 7")
    );
    let m = pos.checkpoint_manifest(meta(8, 2)).unwrap();
    assert_eq!(m, checkpoint(4, 2, 8));
    pos.committed(&m);
    assert_eq!((pos.next_seq(), pos.head_epoch()), (5, Some(8)));
    pos.retire();
    assert!(!pos.is_usable());
    assert!(
        pos.checkpoint_manifest(meta(9, 2))
            .unwrap_err()
            .contains("restart")
    );
    let fresh = ChainPosition::after_fence("q5", &fence_manifest("q5", 0, 1, None));
    assert_eq!((fresh.next_seq(), fresh.head_epoch()), (1, None));
}

/// One instance of the model: what it does next.
enum Model {
    Read,
    Fence(Manifest),
    Run(ChainPosition),
    Stopped,
}

/// Seeded random interleavings of instances that start, race and checkpoint against a
/// map standing in for the store. Safety: generations never decrease along the chain,
/// every fence restores the newest checkpoint before it, and every commit an instance
/// was told succeeded is in the chain, unsuperseded by a fence it did not see.
#[test]
fn random_interleavings_keep_the_chain_exact() {
    for seed in 0..300 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut chain: BTreeMap<u64, Manifest> = BTreeMap::new();
        let mut instances: Vec<Model> = vec![Model::Read];
        let mut committed: Vec<(u64, u64)> = Vec::new(); // (seq, generation)
        for _ in 0..rng.random_range(5..60) {
            if instances.len() < 4 && rng.random_bool(0.1) {
                instances.push(Model::Read);
            }
            let i = rng.random_range(0..instances.len());
            let next = match std::mem::replace(&mut instances[i], Model::Stopped) {
                Model::Read => {
                    let snapshot: Chain = chain.iter().map(|(s, m)| (*s, Ok(m.clone()))).collect();
                    match decide_start(&snapshot, CorruptPolicy::FailClosed) {
                        StartDecision::Fresh {
                            fence_seq,
                            generation,
                            ..
                        } => Model::Fence(fence_manifest("q5", fence_seq, generation, None)),
                        StartDecision::Restore {
                            from,
                            fence_seq,
                            generation,
                            ..
                        } => Model::Fence(fence_manifest("q5", fence_seq, generation, Some(from))),
                        StartDecision::FailClosed { reason } => panic!("seed {seed}: {reason}"),
                    }
                }
                Model::Fence(f) => match chain.get(&f.seq) {
                    None => {
                        chain.insert(f.seq, f.clone());
                        Model::Run(ChainPosition::after_fence("q5", &f))
                    }
                    Some(w) => match on_create_conflict(&f, &Ok(w.clone()), Phase::Starting) {
                        ConflictDecision::RereadAndRetry => Model::Read,
                        ConflictDecision::Fenced { .. } => Model::Stopped,
                        other => panic!("seed {seed}: {other:?}"),
                    },
                },
                Model::Run(mut pos) => {
                    let epoch = pos.head_epoch().unwrap_or(0) + 1;
                    let m = pos
                        .checkpoint_manifest(meta(epoch, pos.generation()))
                        .unwrap();
                    match chain.get(&m.seq) {
                        None => {
                            chain.insert(m.seq, m.clone());
                            let newer: Vec<u64> = chain.keys().copied().collect();
                            assert_eq!(check_claim(m.seq, &newer), Ok(()));
                            pos.committed(&m);
                            committed.push((m.seq, m.generation));
                            Model::Run(pos)
                        }
                        Some(w) => match on_create_conflict(&m, &Ok(w.clone()), Phase::Running) {
                            ConflictDecision::Fenced { .. } => Model::Stopped,
                            other => panic!("seed {seed}: running instance got {other:?}"),
                        },
                    }
                }
                Model::Stopped => Model::Stopped,
            };
            instances[i] = next;
        }
        check_chain(&chain, &committed, seed);
    }
}

/// Generations never go down along the chain, every fence names the newest checkpoint
/// before it, and every commit reported as done is in the chain as its writer made it.
fn check_chain(chain: &BTreeMap<u64, Manifest>, committed: &[(u64, u64)], seed: u64) {
    let mut newest_checkpoint = None;
    let mut generation = 0;
    for m in chain.values() {
        assert!(
            m.generation >= generation,
            "seed {seed}: generation went down at {}",
            m.seq
        );
        generation = m.generation;
        if m.kind == super::manifest::ManifestKind::Fence {
            assert_eq!(
                m.checkpoint, newest_checkpoint,
                "seed {seed}: fence {}",
                m.seq
            );
        }
        newest_checkpoint = m.checkpoint.clone();
    }
    for (seq, generation) in committed {
        assert_eq!(chain[seq].generation, *generation, "seed {seed}");
    }
}
