//! A seeded random crash-point test of the [`LogSink`](super::LogSink): a simulated
//! coordinator writes, pre-commits, records manifests and commits epochs; at random
//! points the "process" crashes (after writes, after pre-commit, after the manifest,
//! in the middle of a commit, or when the store fails past the retries), possibly leaving
//! a zombie that commits the restored epoch concurrently with the next instance, and the
//! job restarts at a random parallelism from its newest manifest, replaying the input.
//! The topic must end up holding every input row exactly once.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use object_store::ObjectStore;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel_runtime::{Epoch, Sink, Staged};

use super::super::test_util::{FlakyPuts, batch};
use super::LogSink;
use super::tests::{
    contents, create_topic, entries, memory, open_sink, open_writers, partition_of, pre_commit,
    sorted, subset,
};

/// Crash decisions of the random test, capped so every run ends.
struct Chaos {
    rng: StdRng,
    crashes: u32,
}

impl Chaos {
    fn crash(&mut self) -> bool {
        let crash = self.crashes < 8 && self.rng.random_bool(0.12);
        self.crashes += u32::from(crash);
        crash
    }
}

async fn random_run(seed: u64) {
    let mut chaos = Chaos {
        rng: StdRng::seed_from_u64(seed),
        crashes: 0,
    };
    let rng = &mut chaos.rng;
    let (keyed, partitions) = (rng.random_bool(0.5), rng.random_range(1..=3));
    let mut next_id = 0;
    let epochs: Vec<Vec<Range<i64>>> = (0..rng.random_range(1..=5))
        .map(|_| {
            let batches = rng.random_range(0..=4);
            (0..batches)
                .map(|_| {
                    let from = next_id;
                    next_id += rng.random_range(0..=6);
                    from..next_id
                })
                .collect()
        })
        .collect();
    let flaky = Arc::new(FlakyPuts::store(memory()));
    let store: Arc<dyn ObjectStore> = flaky.clone();
    create_topic(&store, partitions).await;
    // The coordinator's durable manifests: epoch -> what its sink subtasks staged.
    let mut manifests: BTreeMap<Epoch, Vec<Staged>> = BTreeMap::new();
    let mut zombie: Option<LogSink> = None;
    'restart: loop {
        let sink = open_sink(&store, keyed).await;
        let restored = manifests.last_key_value().map(|(e, s)| (*e, s.clone()));
        let resume = restored.as_ref().map_or(1, |(e, _)| e + 1);
        if let Some((e, staged)) = restored {
            // Re-commit the restored checkpoint before the writers open; a zombie may
            // commit it at the same time.
            let zombie_commit = async {
                match zombie.take() {
                    Some(z) => z.commit(e, 0, staged.clone()).await,
                    None => Ok(()),
                }
            };
            let (ours, theirs) = tokio::join!(sink.commit(e, 0, staged.clone()), zombie_commit);
            theirs.unwrap();
            ours.unwrap();
        }
        let parallelism = chaos.rng.random_range(1..=3);
        let mut writers = open_writers(&sink, parallelism).await;
        for e in resume..=epochs.len() as Epoch {
            for (j, range) in epochs[e as usize - 1].iter().enumerate() {
                writers[j % parallelism]
                    .write(batch(range.clone()))
                    .await
                    .unwrap();
            }
            if chaos.crash() {
                continue 'restart;
            }
            let staged = pre_commit(&mut writers, e).await;
            if chaos.crash() {
                continue 'restart;
            }
            manifests.insert(e, staged.clone());
            if chaos.crash() {
                zombie = Some(sink);
                continue 'restart;
            }
            flaky
                .applied
                .store(chaos.rng.random_range(0..=1), Ordering::SeqCst);
            // Up to MAX_ATTEMPTS lost puts fail the commit, until the crash budget is spent.
            let lost = chaos.rng.random_range(0..=3 + u32::from(chaos.crashes < 8));
            flaky.lost.store(lost as usize, Ordering::SeqCst);
            let staged = match chaos.crash() {
                true => subset(&staged, || chaos.rng.random_bool(0.5)),
                false => staged,
            };
            let complete = entries(&staged) == entries(&manifests[&e]);
            let result = sink.commit(e, 0, staged).await;
            flaky.applied.store(0, Ordering::SeqCst);
            flaky.lost.store(0, Ordering::SeqCst);
            if !complete || result.is_err() {
                chaos.crashes += u32::from(complete);
                zombie = Some(sink);
                continue 'restart;
            }
        }
        for w in &mut writers {
            w.finish().await.unwrap();
        }
        // A zombie committing an old epoch late changes nothing.
        if let Some((e, staged)) = manifests.first_key_value() {
            sink.commit(*e, 0, staged.clone()).await.unwrap();
        }
        break;
    }
    let got = contents(&store).await;
    assert_eq!(
        sorted(got.concat()),
        (0..next_id).collect::<Vec<_>>(),
        "seed {seed}"
    );
    for (p, rows) in got.iter().enumerate().filter(|_| keyed) {
        assert!(
            rows.iter()
                .all(|&id| partition_of(id, 0, partitions, true) == p),
            "seed {seed}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn random_crashes_commit_every_row_exactly_once() {
    for seed in 0..300 {
        random_run(seed).await;
    }
}
