//! Crash points, zombies, corruption and GC, driven through the store on `InMemory`.
//!
//! A crash is "stop calling": the instance's handle is dropped, whatever it wrote stays.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Int64Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::*;
use crate::error::Error;

pub(super) fn job_store(store: Arc<dyn ObjectStore>) -> ObjectStoreCheckpoints {
    ObjectStoreCheckpoints::new(store, Path::from("root"), "q5").unwrap()
}

fn memory() -> (Arc<dyn ObjectStore>, ObjectStoreCheckpoints) {
    let raw: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    (raw.clone(), job_store(raw))
}

/// State rows that say which epoch, generation and subtask wrote them.
fn state_batch(epoch: u64, generation: u64, subtask: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("epoch", DataType::UInt64, false),
        Field::new("generation", DataType::UInt64, false),
        Field::new("subtask", DataType::Int64, false),
    ]));
    let rows = 1 + subtask + epoch as usize % 3;
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(UInt64Array::from(vec![epoch; rows])),
            Arc::new(UInt64Array::from(vec![generation; rows])),
            Arc::new(Int64Array::from(vec![subtask as i64; rows])),
        ],
    )
    .unwrap()
}

/// Phase 1 of a checkpoint: every subtask uploads its state.
pub(super) async fn write_epoch(
    store: &dyn CheckpointStore,
    generation: u64,
    epoch: u64,
) -> CheckpointMeta {
    let mut operators = Vec::new();
    for subtask in 0..2 {
        let key = StateFileKey {
            epoch,
            generation,
            node: "window".into(),
            subtask,
        };
        let file = write_state(store, &key, &[state_batch(epoch, generation, subtask)])
            .await
            .unwrap();
        operators.push(OperatorState {
            node: "window".into(),
            subtask,
            parallelism: 2,
            files: vec![file],
            watermark: None,
        });
    }
    CheckpointMeta {
        epoch,
        generation,
        max_key_groups: 128,
        operators,
        sources: vec![SourcePosition {
            node: "bids".into(),
            partition: 0,
            offset: epoch * 100,
            max_event_time: None,
        }],
        sinks: vec![SinkCommit {
            node: "out".into(),
            subtask: 0,
            staged: serde_json::json!({ "epoch": epoch }),
        }],
    }
}

/// Restores `meta` and checks every file holds exactly the state it names.
pub(super) async fn check_restorable(store: &dyn CheckpointStore, meta: &CheckpointMeta) {
    for op in &meta.operators {
        for file in &op.files {
            let batches = read_state(store, file).await.unwrap();
            assert_eq!(
                batches,
                vec![state_batch(meta.epoch, meta.generation, op.subtask)]
            );
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Instance starts; expects to restore `(epoch, state generation)` as `generation`.
    Start(&'static str, Option<(u64, u64)>, u64),
    /// Phase 1 of a checkpoint of `epoch`.
    Write(&'static str, u64),
    /// Manifest of the epoch written before; `true` if it must commit, `false` if fenced.
    Commit(&'static str, u64, bool),
    /// The instance stops calling.
    Crash(&'static str),
}

use Step::*;

async fn run(name: &str, steps: &[Step]) {
    let (_, store) = memory();
    let mut live: HashMap<&str, ChainPosition> = HashMap::new();
    let mut pending: HashMap<(&str, u64), CheckpointMeta> = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        let ctx = format!("{name}, step {i} {step:?}");
        match *step {
            Start(who, restores, generation) => {
                let started = start(&store, CorruptPolicy::FailClosed).await.unwrap();
                let restored = started.restore.as_ref().map(|m| (m.epoch, m.generation));
                assert_eq!(
                    (restored, started.generation),
                    (restores, generation),
                    "{ctx}"
                );
                if let Some(meta) = &started.restore {
                    check_restorable(&store, meta).await;
                }
                live.insert(who, started.position);
            }
            Write(who, epoch) => {
                let generation = live[who].generation();
                pending.insert((who, epoch), write_epoch(&store, generation, epoch).await);
            }
            Commit(who, epoch, must_commit) => {
                let meta = pending.remove(&(who, epoch)).expect("write before commit");
                let pos = live.get_mut(who).unwrap();
                let outcome = commit_checkpoint(&store, pos, meta).await.unwrap();
                match outcome {
                    CommitOutcome::Committed { .. } => assert!(must_commit, "{ctx}: committed"),
                    CommitOutcome::Fenced { by_generation } => {
                        assert!(!must_commit, "{ctx}: fenced by {by_generation:?}");
                        assert!(!pos.is_usable());
                        // A fenced instance can never commit again.
                        let again = write_epoch(&store, pos.generation(), epoch + 1).await;
                        assert!(
                            commit_checkpoint(&store, pos, again).await.is_err(),
                            "{ctx}"
                        );
                    }
                }
            }
            Crash(who) => {
                live.remove(who);
            }
        }
    }
}

#[tokio::test]
async fn crash_point_table() {
    let table: &[(&str, &[Step])] = &[
        (
            "crash right after the fence",
            &[Start("a", None, 1), Crash("a"), Start("b", None, 2)],
        ),
        (
            "crash after state upload, before the manifest",
            &[
                Start("a", None, 1),
                Write("a", 1),
                Commit("a", 1, true),
                Write("a", 2),
                Crash("a"),
                Start("b", Some((1, 1)), 2),
            ],
        ),
        (
            "crash after the manifest",
            &[
                Start("a", None, 1),
                Write("a", 1),
                Commit("a", 1, true),
                Write("a", 2),
                Commit("a", 2, true),
                Crash("a"),
                Start("b", Some((2, 1)), 2),
            ],
        ),
        (
            "repeated restarts without progress keep the checkpoint",
            &[
                Start("a", None, 1),
                Write("a", 1),
                Commit("a", 1, true),
                Crash("a"),
                Start("b", Some((1, 1)), 2),
                Crash("b"),
                Start("c", Some((1, 1)), 3),
                Write("c", 2),
                Commit("c", 2, true),
                Crash("c"),
                Start("d", Some((2, 3)), 4),
            ],
        ),
    ];
    for (name, steps) in table {
        run(name, steps).await;
    }
}

#[tokio::test]
async fn zombie_table() {
    let table: &[(&str, &[Step])] = &[
        (
            "a zombie is fenced on its next commit; its successor's epoch wins",
            &[
                Start("a", None, 1),
                Write("a", 1),
                Commit("a", 1, true),
                Start("b", Some((1, 1)), 2),
                Write("a", 2),
                Write("b", 2),
                Commit("a", 2, false),
                Commit("b", 2, true),
                Crash("b"),
                Start("c", Some((2, 2)), 3),
            ],
        ),
        (
            "a zombie is fenced even after its successor moved on",
            &[
                Start("a", None, 1),
                Write("a", 1),
                Commit("a", 1, true),
                Start("b", Some((1, 1)), 2),
                Write("b", 2),
                Commit("b", 2, true),
                Write("b", 3),
                Commit("b", 3, true),
                Write("a", 2),
                Commit("a", 2, false),
                Start("c", Some((3, 2)), 3),
                Write("b", 4),
                Commit("b", 4, false),
            ],
        ),
    ];
    for (name, steps) in table {
        run(name, steps).await;
    }
}

pub(super) async fn chain_of(store: &ObjectStoreCheckpoints, epochs: u64) -> ChainPosition {
    let mut pos = start(store, CorruptPolicy::FailClosed)
        .await
        .unwrap()
        .position;
    for epoch in 1..=epochs {
        let meta = write_epoch(store, pos.generation(), epoch).await;
        let outcome = commit_checkpoint(store, &mut pos, meta).await.unwrap();
        assert!(matches!(outcome, CommitOutcome::Committed { .. }));
    }
    pos
}

#[tokio::test]
async fn corrupt_newest_manifest_under_both_policies() {
    let (raw, store) = memory();
    let pos = chain_of(&store, 2).await;
    let newest = pos.next_seq() - 1;
    let path = layout::manifest_path(store.job_dir(), newest);
    let bytes = raw.get(&path).await.unwrap().bytes().await.unwrap();
    raw.put(&path, PutPayload::from(bytes.slice(..bytes.len() - 9)))
        .await
        .unwrap();

    let err = start(&store, CorruptPolicy::FailClosed).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::External { .. }), "{err}");
    assert!(
        text.contains(&format!("manifest {newest}")) && text.contains("fail-closed"),
        "{text}"
    );

    let started = start(&store, CorruptPolicy::FallbackToPrevious)
        .await
        .unwrap();
    let restored = started.restore.as_ref().unwrap();
    assert_eq!((restored.epoch, started.skipped.clone()), (1, vec![newest]));
    assert_eq!((started.generation, started.seq), (2, newest + 1));
    check_restorable(&store, restored).await;
    // The chain's head is now a readable fence: fail-closed starts work again.
    let again = start(&store, CorruptPolicy::FailClosed).await.unwrap();
    assert_eq!(again.restore.unwrap().epoch, 1);
}

#[tokio::test]
async fn damaged_state_files_are_detected_by_size_and_crc() {
    let (raw, store) = memory();
    chain_of(&store, 1).await;
    let meta = start(&store, CorruptPolicy::FailClosed)
        .await
        .unwrap()
        .restore
        .unwrap();
    let file = meta.operators[0].files[0].clone();
    let path = layout::state_object_path(store.job_dir(), &file.path).unwrap();
    let good = raw.get(&path).await.unwrap().bytes().await.unwrap();
    let mut flipped = good.to_vec();
    flipped[good.len() / 3] ^= 0x01;
    for damaged in [good.slice(..good.len() - 1), flipped.into()] {
        raw.put(&path, PutPayload::from(damaged)).await.unwrap();
        let err = read_state(&store, &file).await.unwrap_err();
        assert!(err.to_string().contains(&file.path), "{err}");
        assert!(err.to_string().contains("damaged"), "{err}");
    }
}

#[tokio::test]
async fn gc_keeps_retained_and_in_progress_state_and_deletes_the_rest() {
    let (_, store) = memory();
    let pos = chain_of(&store, 2).await;
    // A crash before the manifest of epoch 3 leaves orphans; the successor redoes it.
    write_epoch(&store, pos.generation(), 3).await;
    drop(pos);
    let mut pos = start(&store, CorruptPolicy::FailClosed)
        .await
        .unwrap()
        .position;
    for epoch in 3..=6 {
        let meta = write_epoch(&store, pos.generation(), epoch).await;
        commit_checkpoint(&store, &mut pos, meta).await.unwrap();
    }
    let in_progress = write_epoch(&store, pos.generation(), 7).await;

    let GcOutcome::Collected(plan) = collect_garbage(&store, &pos, 2).await.unwrap() else {
        panic!("the head's owner collects");
    };
    let chain = read_chain(&store).await.unwrap();
    let kept: Vec<Manifest> = chain.into_iter().map(|(_, m)| m.unwrap()).collect();
    let epochs: Vec<u64> = kept
        .iter()
        .map(|m| m.checkpoint.as_ref().unwrap().epoch)
        .collect();
    assert_eq!(epochs, vec![5, 6], "kept manifests; deleted {plan:?}");
    let mut expected: Vec<String> = kept
        .iter()
        .flat_map(|m| m.checkpoint.iter().flat_map(|c| c.files()))
        .chain(in_progress.files())
        .map(|f| f.path.clone())
        .collect();
    expected.sort();
    let mut left = store.list_state_files().await.unwrap();
    left.sort();
    assert_eq!(left, expected);
    // Repeatable, and the newest checkpoint still restores.
    let again = collect_garbage(&store, &pos, 2).await.unwrap();
    assert_eq!(again, GcOutcome::Collected(GcPlan::default()));
    drop(pos);
    let started = start(&store, CorruptPolicy::FailClosed).await.unwrap();
    check_restorable(&store, started.restore.as_ref().unwrap()).await;
}
