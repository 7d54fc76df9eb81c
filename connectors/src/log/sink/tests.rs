//! Tests of the exactly-once [`LogSink`], driving the sink traits directly. The
//! checkpoint coordinator is simulated: rows are written, pre-committed, kept as a
//! "manifest" and committed in the order the runtime follows; a crash drops sinks and
//! writers and re-creates them over the same store through a fresh [`EmbeddedLog`] (as a
//! new process would). The helpers here are shared with [`super::crash_tests`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::record_batch::RecordBatch;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use object_store::path::Path;
use runnel_runtime::keys::hash_rows;
use runnel_runtime::{Fault, PreCommit};

use super::super::EmbeddedLog;
use super::super::test_util::{FlakyPuts, batch, ids, schema};
use super::commit::{StagedAppend, StagedMeta};
use super::*;

pub(super) const PREFIX: &str = "job.out";

pub(super) fn memory() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

pub(super) async fn create_topic(store: &Arc<dyn ObjectStore>, partitions: u32) {
    let log = EmbeddedLog::new(store.clone(), Path::from("data"));
    log.create_topic("out", partitions, schema()).await.unwrap();
}

/// The sink as a new process opens it.
pub(super) async fn open_sink(store: &Arc<dyn ObjectStore>, keyed: bool) -> LogSink {
    let log = EmbeddedLog::new(store.clone(), Path::from("data"));
    let sink = LogSink::new(log.topic("out").await.unwrap(), PREFIX).unwrap();
    match keyed {
        true => sink.partition_by(vec!["name".into()]),
        false => sink,
    }
}

pub(super) async fn open_writers(sink: &LogSink, parallelism: usize) -> Vec<Box<dyn SinkWriter>> {
    let mut writers = Vec::new();
    for s in 0..parallelism {
        writers.push(sink.open(s, parallelism).await.unwrap());
    }
    writers
}

pub(super) async fn pre_commit(writers: &mut [Box<dyn SinkWriter>], epoch: Epoch) -> Vec<Staged> {
    let mut staged = Vec::new();
    for (subtask, writer) in writers.iter_mut().enumerate() {
        let pre_commit = writer.pre_commit(epoch).await.unwrap();
        staged.push(Staged {
            subtask,
            pre_commit,
        });
    }
    staged
}

/// Every partition's ids in offset order, read by a fresh process.
pub(super) async fn contents(store: &Arc<dyn ObjectStore>) -> Vec<Vec<i64>> {
    let topic = open_sink(store, false).await.topic;
    let mut out = Vec::new();
    for p in 0..topic.partitions() {
        out.push(ids(&topic.read(p, 0, usize::MAX).await.unwrap().batches));
    }
    out
}

pub(super) fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

/// Oracle: the partition of row `id` written by `subtask`, hashed on its own.
pub(super) fn partition_of(id: i64, subtask: usize, partitions: u32, keyed: bool) -> usize {
    if !keyed {
        return subtask % partitions as usize;
    }
    let mut hash = Vec::new();
    hash_rows(&[batch(id..id + 1).column(1).clone()], &mut hash).unwrap();
    (hash[0] % u64::from(partitions)) as usize
}

pub(super) fn entries(staged: &[Staged]) -> Vec<StagedAppend> {
    let meta = |s: &Staged| match &s.pre_commit.meta {
        serde_json::Value::Null => StagedMeta::default(),
        meta => serde_json::from_value(meta.clone()).unwrap(),
    };
    staged.iter().flat_map(|s| meta(s).entries).collect()
}

/// The staged entries for which `keep` says yes: what a crash mid-commit left done.
pub(super) fn subset(staged: &[Staged], mut keep: impl FnMut() -> bool) -> Vec<Staged> {
    let mut out = Vec::new();
    for s in staged {
        let pairs = entries(std::slice::from_ref(s))
            .into_iter()
            .zip(s.pre_commit.batches.iter().cloned());
        let (entries, batches): (Vec<_>, Vec<_>) = pairs.filter(|_| keep()).unzip();
        let meta = serde_json::to_value(StagedMeta { entries }).unwrap();
        let pre_commit = PreCommit { meta, batches };
        out.push(Staged {
            subtask: s.subtask,
            pre_commit,
        });
    }
    out
}

#[tokio::test]
async fn rows_become_visible_only_after_commit() {
    for keyed in [false, true] {
        let store = memory();
        create_topic(&store, 3).await;
        let sink = open_sink(&store, keyed).await;
        let mut writers = open_writers(&sink, 2).await;
        let mut expected = vec![Vec::new(); 3];
        // Epoch 3 has no rows from subtask 1 and epoch 4 none at all.
        let epochs: [[Range<i64>; 2]; 4] = [
            [0..10, 10..14],
            [14..30, 30..33],
            [33..40, 0..0],
            [0..0, 0..0],
        ];
        let mut appends = BTreeMap::<(usize, usize), u64>::new();
        for (e, rows) in epochs.iter().enumerate() {
            for (s, range) in rows.iter().enumerate() {
                writers[s].write(batch(range.clone())).await.unwrap();
                let mut seen = [false; 3];
                for id in range.clone() {
                    let p = partition_of(id, s, 3, keyed);
                    expected[p].push(id);
                    seen[p] = true;
                }
                for p in (0..3).filter(|&p| seen[p]) {
                    *appends.entry((s, p)).or_default() += 1;
                }
            }
            let before = contents(&store).await;
            let staged = pre_commit(&mut writers, e as Epoch + 1).await;
            assert_eq!(contents(&store).await, before, "visible before commit");
            sink.commit(e as Epoch + 1, 0, staged).await.unwrap();
            let got = contents(&store).await;
            for p in 0..3 {
                assert_eq!(
                    sorted(got[p].clone()),
                    sorted(expected[p].clone()),
                    "{p} {keyed}"
                );
            }
        }
        for w in &mut writers {
            w.finish().await.unwrap();
        }
        // One sequence number per epoch with rows for a partition, starting at 0.
        for s in 0..2 {
            for p in 0..3u32 {
                let id = format!("{PREFIX}-{s}");
                let last = sink.topic.last_producer_seq(p, &id).await.unwrap();
                assert_eq!(
                    last,
                    appends.get(&(s, p as usize)).map(|n| n - 1),
                    "{s} {p}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_lost_epoch_is_replayed_with_the_same_sequence_numbers() {
    for keyed in [false, true] {
        let store = memory();
        create_topic(&store, 2).await;
        let sink = open_sink(&store, keyed).await;
        let mut writers = open_writers(&sink, 2).await;
        writers[0].write(batch(0..8)).await.unwrap();
        writers[1].write(batch(8..12)).await.unwrap();
        let first = pre_commit(&mut writers, 1).await;
        sink.commit(1, 0, first.clone()).await.unwrap();
        writers[0].write(batch(12..20)).await.unwrap();
        writers[1].write(batch(20..30)).await.unwrap();
        let lost = pre_commit(&mut writers, 2).await;
        // Crash before the manifest of epoch 2: restore epoch 1, replay epoch 2.
        drop((sink, writers));
        let sink = open_sink(&store, keyed).await;
        sink.commit(1, 0, first).await.unwrap();
        let mut writers = open_writers(&sink, 2).await;
        writers[0].write(batch(12..20)).await.unwrap();
        writers[1].write(batch(20..30)).await.unwrap();
        let replayed = pre_commit(&mut writers, 2).await;
        assert_eq!(entries(&replayed), entries(&lost));
        sink.commit(2, 0, replayed).await.unwrap();
        let all: Vec<i64> = contents(&store).await.concat();
        assert_eq!(sorted(all), (0..30).collect::<Vec<_>>(), "{keyed}");
    }
}

#[tokio::test]
async fn a_partial_commit_is_completed_by_the_next_instance() {
    let store = memory();
    create_topic(&store, 3).await;
    let sink = open_sink(&store, true).await;
    let mut writers = open_writers(&sink, 2).await;
    writers[0].write(batch(0..40)).await.unwrap();
    writers[1].write(batch(40..80)).await.unwrap();
    let staged = pre_commit(&mut writers, 1).await;
    assert_eq!(entries(&staged).len(), 6);
    let mut n = 0;
    sink.commit(
        1,
        0,
        subset(&staged, || {
            n += 1;
            n % 2 == 1
        }),
    )
    .await
    .unwrap();
    let partial = contents(&store).await.concat().len();
    assert!(partial > 0 && partial < 80, "{partial}");
    // A new instance restores epoch 1 and commits all of it again.
    drop((sink, writers));
    let sink = open_sink(&store, true).await;
    sink.commit(1, 0, staged).await.unwrap();
    let mut writers = open_writers(&sink, 2).await;
    writers[1].write(batch(80..100)).await.unwrap();
    let next = pre_commit(&mut writers, 2).await;
    sink.commit(2, 0, next).await.unwrap();
    let all = contents(&store).await.concat();
    assert_eq!(sorted(all), (0..100).collect::<Vec<_>>());
}

#[tokio::test]
async fn every_committed_row_carries_the_epoch_that_committed_it() {
    let store = memory();
    create_topic(&store, 1).await;
    let sink = open_sink(&store, false).await;
    let mut writers = open_writers(&sink, 2).await;
    // Epoch 5 commits ids 0..10, epoch 6 nothing, epoch 7 ids 10..13; the first commit
    // of epoch 7 is cut short and a new instance commits all of it again.
    writers[0].write(batch(0..6)).await.unwrap();
    writers[1].write(batch(6..10)).await.unwrap();
    let five = pre_commit(&mut writers, 5).await;
    sink.commit(5, 0, five).await.unwrap();
    let six = pre_commit(&mut writers, 6).await;
    sink.commit(6, 0, six).await.unwrap();
    writers[0].write(batch(10..12)).await.unwrap();
    writers[1].write(batch(12..13)).await.unwrap();
    let seven = pre_commit(&mut writers, 7).await;
    let mut first = true;
    let partial = subset(&seven, || std::mem::replace(&mut first, false));
    sink.commit(7, 0, partial).await.unwrap();
    drop((sink, writers));
    let sink = open_sink(&store, false).await;
    sink.commit(7, 0, seven).await.unwrap();

    let topic = &sink.topic;
    let read = topic.read(0, 0, usize::MAX).await.unwrap();
    let mut by_epoch = BTreeMap::<Option<Epoch>, Vec<i64>>::new();
    for (batch, epoch) in read.batches.iter().zip(&read.epochs) {
        by_epoch
            .entry(*epoch)
            .or_default()
            .extend(ids(std::slice::from_ref(batch)));
    }
    let by_epoch: Vec<_> = by_epoch
        .into_iter()
        .map(|(e, ids)| (e, sorted(ids)))
        .collect();
    assert_eq!(
        by_epoch,
        vec![(Some(5), (0..10).collect()), (Some(7), (10..13).collect())]
    );
    // Where each epoch starts, for a reader resuming after the one before.
    let end = topic.end_offset(0).await.unwrap();
    for (epoch, offset) in [(0, 0), (5, 0), (6, 10), (7, 10), (8, end)] {
        assert_eq!(
            topic.first_offset_from_epoch(0, epoch).await.unwrap(),
            offset,
            "epoch {epoch}"
        );
    }
}

#[tokio::test]
async fn repeated_and_concurrent_commits_append_once() {
    let store = memory();
    create_topic(&store, 2).await;
    let (a, b) = (open_sink(&store, true).await, open_sink(&store, true).await);
    let mut writers = open_writers(&a, 2).await;
    let mut staged = Vec::new();
    for e in 0..4 {
        writers[0].write(batch(e * 20..e * 20 + 12)).await.unwrap();
        writers[1]
            .write(batch(e * 20 + 12..e * 20 + 20))
            .await
            .unwrap();
        staged.push(pre_commit(&mut writers, e as Epoch + 1).await);
    }
    // Epoch 1 twice in a row; epoch 2 by a zombie and a new instance (two processes)
    // at once; epoch 3 twice at once by one instance; epoch 4 once.
    a.commit(1, 0, staged[0].clone()).await.unwrap();
    b.commit(1, 0, staged[0].clone()).await.unwrap();
    let (x, y) = tokio::join!(
        a.commit(2, 0, staged[1].clone()),
        b.commit(2, 0, staged[1].clone())
    );
    x.unwrap();
    y.unwrap();
    let (x, y) = tokio::join!(
        b.commit(3, 0, staged[2].clone()),
        b.commit(3, 0, staged[2].clone())
    );
    x.unwrap();
    y.unwrap();
    a.commit(4, 0, staged[3].clone()).await.unwrap();
    let after = contents(&store).await;
    assert_eq!(sorted(after.concat()), (0..80).collect::<Vec<_>>());
    // Old epochs committed again, in any order, change nothing.
    for e in [2, 1, 4, 3] {
        b.commit(e, 0, staged[e as usize - 1].clone())
            .await
            .unwrap();
    }
    assert_eq!(contents(&store).await, after);
}

#[tokio::test]
async fn a_sequence_gap_and_rows_after_the_final_barrier_are_internal_errors() {
    let store = memory();
    create_topic(&store, 1).await;
    let sink = open_sink(&store, false).await;
    let mut writer = sink.open(0, 1).await.unwrap();
    writer.write(batch(0..3)).await.unwrap();
    let first = writer.pre_commit(1).await.unwrap();
    writer.write(batch(3..5)).await.unwrap();
    let second = writer.pre_commit(2).await.unwrap();
    let staged = |pre_commit| {
        vec![Staged {
            subtask: 0,
            pre_commit,
        }]
    };
    let err = sink.commit(2, 0, staged(second.clone())).await.unwrap_err();
    assert!(
        matches!(&err, Error::Internal(m) if m.contains("lost")),
        "{err}"
    );
    assert_eq!(contents(&store).await, vec![Vec::<i64>::new()]);
    sink.commit(1, 0, staged(first)).await.unwrap();
    sink.commit(2, 0, staged(second.clone())).await.unwrap();
    assert_eq!(contents(&store).await, vec![(0..5).collect::<Vec<_>>()]);
    writer.finish().await.unwrap();
    writer.write(batch(5..6)).await.unwrap();
    assert!(matches!(writer.finish().await, Err(Error::Internal(_))));
    // Staged data that does not describe its batches is refused.
    let mut bad = second;
    bad.batches.push(batch(9..10));
    assert!(matches!(
        sink.commit(2, 0, staged(bad)).await,
        Err(Error::Internal(_))
    ));
}

#[tokio::test]
async fn invalid_configuration_and_records_are_refused() {
    let store = memory();
    create_topic(&store, 1).await;
    let topic = open_sink(&store, false).await.topic;
    let long = "p".repeat(MAX_PRODUCER_PREFIX_LEN + 1);
    for bad in ["", "a b", "tab\t", "é", long.as_str()] {
        assert!(
            matches!(LogSink::new(topic.clone(), bad), Err(Error::Plan(_))),
            "{bad:?}"
        );
    }
    let sink = LogSink::new(topic.clone(), "j.s").unwrap();
    let bad = sink.clone().partition_by(vec!["nope".into()]);
    assert!(matches!(bad.open(0, 1).await, Err(Error::Plan(_))));
    let mut writer = sink.open(0, 1).await.unwrap();
    let other = arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
        "x",
        arrow::datatypes::DataType::Int64,
        false,
    )]);
    let wrong = RecordBatch::try_new(Arc::new(other), vec![batch(0..2).column(0).clone()]);
    let err = writer.write(wrong.unwrap()).await.unwrap_err();
    assert_eq!(err.fault(), Fault::User, "{err}");
}

#[tokio::test(start_paused = true)]
async fn store_failures_are_resolved_by_re_reading_the_sequence() {
    let flaky = Arc::new(FlakyPuts::store(memory()));
    let store: Arc<dyn ObjectStore> = flaky.clone();
    create_topic(&store, 1).await;
    let sink = open_sink(&store, false).await;
    let mut writer = sink.open(0, 1).await.unwrap();
    let mut commit = async |range: Range<i64>, epoch| {
        writer.write(batch(range)).await.unwrap();
        let pre_commit = writer.pre_commit(epoch).await.unwrap();
        let staged = vec![Staged {
            subtask: 0,
            pre_commit,
        }];
        (sink.commit(epoch, 0, staged.clone()).await, staged)
    };
    // Written, then reported as a timeout; then lost once: both retried to one append.
    flaky.applied.store(1, Ordering::SeqCst);
    commit(0..3, 1).await.0.unwrap();
    flaky.lost.store(1, Ordering::SeqCst);
    commit(3..5, 2).await.0.unwrap();
    // Failing beyond the retries surfaces the error; committing again completes it.
    flaky.lost.store(MAX_ATTEMPTS as usize, Ordering::SeqCst);
    let (result, staged) = commit(5..9, 3).await;
    assert_eq!(result.unwrap_err().fault(), Fault::External);
    let sink = open_sink(&store, false).await;
    sink.commit(3, 0, staged).await.unwrap();
    assert_eq!(contents(&store).await, vec![(0..9).collect::<Vec<_>>()]);
}
