//! Log tests, each run against `InMemory` and `LocalFileSystem`.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Int32Array, Int64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel_runtime::Error;

use super::test_util::{batch, ids, schema, stores};
use super::*;

async fn read_all(topic: &Topic, partition: u32) -> Vec<i64> {
    let end = topic.end_offset(partition).await.unwrap();
    let read = topic.read(partition, 0, usize::MAX).await.unwrap();
    assert_eq!(read.next_offset, end);
    ids(&read.batches)
}

#[tokio::test]
async fn appends_are_durable_across_reopen_and_offsets_continue() {
    for s in stores() {
        let topic = s.log().create_topic("events", 2, schema()).await.unwrap();
        let a = topic
            .append(1, &[batch(0..3), batch(3..5)], None)
            .await
            .unwrap();
        assert_eq!(
            (a.partition, a.base_offset, a.next_offset, a.duplicate),
            (1, 0, 5, false)
        );
        let b = topic.append(1, &[batch(5..6)], None).await.unwrap();
        assert_eq!((b.base_offset, b.next_offset), (5, 6));

        let reopened = s.log().topic("events").await.unwrap();
        assert_eq!(reopened.schema(), schema());
        assert_eq!(reopened.partitions(), 2);
        assert_eq!(
            read_all(&reopened, 1).await,
            (0..6).collect::<Vec<_>>(),
            "{}",
            s.kind
        );
        assert_eq!(reopened.end_offset(0).await.unwrap(), 0);
        let c = reopened.append(1, &[batch(6..9)], None).await.unwrap();
        assert_eq!((c.base_offset, c.next_offset), (6, 9));
        // The first handle sees the other instance's append after a refresh.
        assert_eq!(read_all(&topic, 1).await, (0..9).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn producer_retries_are_deduplicated_also_after_reopen() {
    for s in stores() {
        let topic = s.log().create_topic("t", 1, schema()).await.unwrap();
        let p = |seq| Some(ProducerSeq::new("job-0", seq));
        let first = topic.append(0, &[batch(0..4)], p(0)).await.unwrap();
        let retry = topic.append(0, &[batch(0..4)], p(0)).await.unwrap();
        assert!(retry.duplicate && !first.duplicate);
        assert_eq!((retry.base_offset, retry.next_offset), (0, 4));
        topic.append(0, &[batch(4..6)], p(1)).await.unwrap();

        let reopened = s.log().topic("t").await.unwrap();
        let again = reopened.append(0, &[batch(0..4)], p(0)).await.unwrap();
        assert_eq!(
            (again.base_offset, again.next_offset, again.duplicate),
            (0, 4, true)
        );
        assert_eq!(
            reopened.last_producer_seq(0, "job-0").await.unwrap(),
            Some(1)
        );
        assert_eq!(reopened.last_producer_seq(0, "other").await.unwrap(), None);
        let next = reopened.append(0, &[batch(6..7)], p(2)).await.unwrap();
        assert_eq!((next.base_offset, next.duplicate), (6, false));
        assert_eq!(
            read_all(&reopened, 0).await,
            (0..7).collect::<Vec<_>>(),
            "{}",
            s.kind
        );
    }
}

#[tokio::test]
async fn sequence_gaps_and_too_old_retries_are_refused() {
    for s in stores() {
        let topic = s.log().create_topic("t", 1, schema()).await.unwrap();
        let p = |seq| Some(ProducerSeq::new("p", seq));
        topic.append(0, &[batch(0..1)], p(10)).await.unwrap();
        let gap = topic.append(0, &[batch(1..2)], p(12)).await.unwrap_err();
        assert!(
            matches!(&gap, Error::Conflict(m) if m.contains("gap")),
            "{gap}"
        );
        for seq in 11..=17 {
            let i = seq - 10;
            topic
                .append(0, &[batch(i..i + 1)], p(seq as u64))
                .await
                .unwrap();
        }
        let old = topic.append(0, &[batch(0..1)], p(12)).await.unwrap_err();
        assert!(matches!(old, Error::Conflict(_)), "{old}");
        let dup = topic.append(0, &[batch(0..1)], p(13)).await.unwrap();
        assert_eq!((dup.base_offset, dup.duplicate), (3, true));
        assert_eq!(read_all(&topic, 0).await, (0..8).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn offsets_are_dense_and_every_offset_reads_its_suffix() {
    for s in stores() {
        let mut rng = StdRng::seed_from_u64(7);
        let topic = s.log().create_topic("t", 1, schema()).await.unwrap();
        let mut oracle: Vec<i64> = Vec::new();
        for _ in 0..25 {
            let pieces = rng.random_range(1..4);
            let mut batches = Vec::new();
            for _ in 0..pieces {
                let n = rng.random_range(0..40);
                let from = 1000
                    + oracle.len() as i64
                    + batches.iter().map(RecordBatch::num_rows).sum::<usize>() as i64;
                batches.push(batch(from..from + n));
            }
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let result = topic.append(0, &batches, None).await;
            if rows == 0 {
                assert!(matches!(result, Err(Error::Data(_))));
                continue;
            }
            let ack = result.unwrap();
            assert_eq!(
                (ack.base_offset, ack.next_offset),
                (oracle.len() as u64, (oracle.len() + rows) as u64)
            );
            oracle.extend(ids(&batches));
        }
        // Read through a fresh instance too: its index is built from one listing.
        let fresh = s.log().topic("t").await.unwrap();
        let end = oracle.len();
        for from in 0..=end {
            for reader in [&topic, &fresh] {
                let max = rng.random_range(1..120);
                let read = reader.read(0, from as u64, max).await.unwrap();
                let until = (from + max).min(end);
                assert_eq!(
                    ids(&read.batches),
                    oracle[from..until],
                    "{} from {from} max {max}",
                    s.kind
                );
                assert_eq!(read.next_offset, until as u64);
            }
            let all = fresh.read(0, from as u64, usize::MAX).await.unwrap();
            assert_eq!(ids(&all.batches), oracle[from..]);
        }
        let past = topic.read(0, end as u64 + 1, 10).await.unwrap_err();
        assert!(matches!(past, Error::Data(_)), "{past}");
        assert!(topic.read(0, 0, 0).await.unwrap().batches.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_in_two_instances_never_share_offsets() {
    for s in stores() {
        let a = s.log().create_topic("t", 1, schema()).await.unwrap();
        let b = s.log().topic("t").await.unwrap();
        let mut tasks = Vec::new();
        for writer in 0..6i64 {
            let topic = if writer % 2 == 0 {
                a.clone()
            } else {
                b.clone()
            };
            tasks.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(writer as u64);
                let mut acks = Vec::new();
                for i in 0..12 {
                    let from = writer * 1_000_000 + i * 1000;
                    let rows = batch(from..from + rng.random_range(1..30));
                    let producer = Some(ProducerSeq::new(format!("w{writer}"), i as u64));
                    acks.push((
                        topic
                            .append(0, std::slice::from_ref(&rows), producer)
                            .await
                            .unwrap(),
                        rows,
                    ));
                }
                acks
            }));
        }
        let mut acks = Vec::new();
        for task in tasks {
            acks.extend(task.await.unwrap());
        }
        acks.sort_by_key(|(ack, _)| ack.base_offset);
        let mut end = 0;
        for (ack, rows) in &acks {
            assert!(!ack.duplicate);
            assert_eq!(ack.base_offset, end, "{}: offsets must be dense", s.kind);
            end = ack.next_offset;
            let read = a.read(0, ack.base_offset, rows.num_rows()).await.unwrap();
            assert_eq!(ids(&read.batches), ids(std::slice::from_ref(rows)));
        }
        let mut expected: Vec<i64> = acks
            .iter()
            .flat_map(|(_, r)| ids(std::slice::from_ref(r)))
            .collect();
        expected.sort_unstable();
        let mut all = read_all(&b, 0).await;
        all.sort_unstable();
        assert_eq!(all, expected);
    }
}

#[tokio::test]
async fn bad_topic_names_are_refused_before_touching_storage() {
    for s in stores() {
        let log = s.log();
        for name in ["../x", "%2e%2e", "", "a/b", "..", ".", ".x", "a b"] {
            let err = log.create_topic(name, 1, schema()).await.unwrap_err();
            assert!(matches!(err, Error::Plan(_)), "{name:?}: {err}");
            assert!(matches!(log.topic(name).await, Err(Error::Plan(_))));
        }
        let objects: Vec<_> = s.store.list(None).try_collect().await.unwrap();
        assert!(objects.is_empty(), "{objects:?}");
        assert!(log.list_topics().await.unwrap().is_empty());
        assert!(matches!(
            log.topic("missing").await,
            Err(Error::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn create_topic_is_idempotent_and_refuses_other_definitions() {
    for s in stores() {
        let log = s.log();
        let topic = log.create_topic("b", 3, schema()).await.unwrap();
        log.create_topic("a", 1, schema()).await.unwrap();
        // Same definition through another instance: read back from storage.
        let again = s.log().create_topic("b", 3, schema()).await.unwrap();
        assert_eq!((again.partitions(), again.schema()), (3, topic.schema()));
        for other in [s.log(), log.clone()] {
            let err = other.create_topic("b", 4, schema()).await.unwrap_err();
            assert!(matches!(err, Error::Conflict(_)), "{err}");
            let narrow = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
            let err = other.create_topic("b", 3, narrow).await.unwrap_err();
            assert!(matches!(err, Error::Conflict(_)), "{err}");
        }
        assert!(matches!(
            log.create_topic("z", 0, schema()).await,
            Err(Error::Plan(_))
        ));
        assert_eq!(s.log().list_topics().await.unwrap(), vec!["a", "b"]);
    }
}

#[tokio::test]
async fn batches_must_match_the_topic_schema() {
    for s in stores() {
        let topic = s.log().create_topic("t", 1, schema()).await.unwrap();
        let one = |name: &str, column| {
            let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Int32, true)]));
            RecordBatch::try_new(schema, vec![column]).unwrap()
        };
        let narrow = one("id", Arc::new(Int32Array::from(vec![1])));
        let renamed = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("key", DataType::Int64, false),
                Field::new("name", DataType::Utf8, true),
            ])),
            batch(0..2).columns().to_vec(),
        );
        let retyped = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int32, false),
                Field::new("name", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(Int32Array::from(vec![1])),
                batch(0..1).column(1).clone(),
            ],
        )
        .unwrap();
        let nulls = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, true),
                Field::new("name", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![None])),
                batch(1..2).column(1).clone(),
            ],
        )
        .unwrap();
        for (bad, word) in [
            (narrow, "columns"),
            (renamed.unwrap(), "key"),
            (retyped, "Int32"),
            (nulls, "null"),
        ] {
            let err = topic.append(0, &[bad], None).await.unwrap_err();
            assert!(matches!(&err, Error::Data(m) if m.contains(word)), "{err}");
        }
        assert!(matches!(
            topic.append(7, &[batch(0..1)], None).await,
            Err(Error::Plan(_))
        ));
        assert_eq!(topic.end_offset(0).await.unwrap(), 0);
    }
}

#[tokio::test]
async fn stored_objects_are_plain_arrow_ipc() {
    for s in stores() {
        let topic = s.log().create_topic("t", 1, schema()).await.unwrap();
        topic
            .append(0, &[batch(0..3)], Some(ProducerSeq::new("p", 4)))
            .await
            .unwrap();
        let get = |path: &str| {
            let store = s.store.clone();
            let path = Path::from(path);
            async move { store.get(&path).await.unwrap().bytes().await.unwrap() }
        };
        let schema_file = get("data/log/t/schema.arrow").await;
        assert_eq!(
            StreamReader::try_new(Cursor::new(schema_file), None)
                .unwrap()
                .schema(),
            schema()
        );
        let json = get("data/log/t/topic.json").await;
        assert_eq!(&json[..], br#"{"partitions":1,"version":1}"#);
        let segment = get("data/log/t/00000/00000000000000000000.arrow").await;
        let reader = FileReader::try_new(Cursor::new(segment), None).unwrap();
        let metadata = reader.schema().metadata().clone();
        assert_eq!(metadata["runnel.producer_id"], "p");
        assert_eq!(metadata["runnel.producer_seq"], "4");
        assert_eq!(metadata["runnel.row_count"], "3");
        let batches: Vec<RecordBatch> = reader
            .map(|b| RecordBatch::try_new(schema(), b.unwrap().columns().to_vec()).unwrap())
            .collect();
        assert_eq!(ids(&batches), vec![0, 1, 2]);
    }
}

#[tokio::test]
async fn a_local_directory_log_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::local(dir.path().join("data")).unwrap();
    assert!(log.list_topics().await.unwrap().is_empty());
    let topic = log.create_topic("t", 1, schema()).await.unwrap();
    topic.append(0, &[batch(0..3)], None).await.unwrap();
    let reopened = EmbeddedLog::local(dir.path().join("data")).unwrap();
    assert_eq!(
        read_all(&reopened.topic("t").await.unwrap(), 0).await,
        vec![0, 1, 2]
    );
    assert!(
        dir.path()
            .join("data/log/t/00000/00000000000000000000.arrow")
            .is_file()
    );
}

#[tokio::test]
async fn reads_say_which_epoch_committed_each_segment() {
    for s in stores() {
        let topic = s.log().create_topic("epochs", 1, schema()).await.unwrap();
        // Two plain appends (no epoch), then committed segments of epochs that never go
        // down, several per epoch as several subtasks would append them.
        let epochs = [
            None,
            None,
            Some(1),
            Some(1),
            Some(2),
            Some(4),
            Some(4),
            Some(9),
        ];
        let mut bases = Vec::new();
        let mut next = 0;
        for (i, epoch) in epochs.iter().enumerate() {
            let rows = batch(next..next + 1 + i as i64);
            let producer = ProducerSeq::new("sink-0", i as u64);
            let ack = match epoch {
                None => topic.append(0, &[rows], None).await,
                Some(e) => topic.append_committed(0, &[rows], producer, *e).await,
            }
            .unwrap();
            bases.push(ack.base_offset);
            next = ack.next_offset as i64;
        }
        // A fresh handle reads the epochs back from the segments alone.
        let reopened = s.log().topic("epochs").await.unwrap();
        let read = reopened.read(0, 0, usize::MAX).await.unwrap();
        assert_eq!(read.epochs, epochs, "{}", s.kind);
        assert_eq!(read.epochs.len(), read.batches.len());
        // A read from the middle of a segment keeps that segment's epoch.
        let middle = reopened.read(0, bases[5] + 1, 3).await.unwrap();
        assert_eq!(middle.epochs, vec![Some(4)]);
        // The first segment of each epoch or later, against a scan of the segments.
        for wanted in 0..11 {
            let expected = epochs
                .iter()
                .position(|e| e.unwrap_or(0) >= wanted)
                .map_or(next as u64, |i| bases[i]);
            let found = reopened.first_offset_from_epoch(0, wanted).await.unwrap();
            assert_eq!(found, expected, "epoch {wanted} on {}", s.kind);
        }
    }
}
