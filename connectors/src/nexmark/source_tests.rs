//! Tests of `NexmarkSource`: bounded end and positions, partition assignment, restore from
//! positions, and processing-time pacing (on tokio's paused clock, so no wall-clock
//! timing is asserted).

use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;

use super::super::generator::generate;
use super::*;

fn options(max: Option<u64>, partitions: usize, batch_size: usize) -> NexmarkOptions {
    NexmarkOptions {
        seed: 3,
        max_events: max,
        batch_size,
        partitions,
        ..Default::default()
    }
}

fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let values: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, row).unwrap())
                .collect();
            out.push(values.join("|"));
        }
    }
    out.sort();
    out
}

/// Polls `reader` until `End`, returning `(partition, batch)` in arrival order.
async fn drain(reader: &mut dyn SourceReader) -> Vec<(u32, RecordBatch)> {
    let mut out = Vec::new();
    loop {
        match reader.next().await.unwrap() {
            SourcePoll::Batch { partition, batch } => out.push((partition, batch)),
            SourcePoll::Idle => {}
            SourcePoll::End => return out,
            SourcePoll::Rejected { .. } => panic!("generated records are never rejected"),
        }
    }
}

#[tokio::test]
async fn bounded_source_ends_after_max_events_with_positions() {
    let o = options(Some(1000), 3, 64);
    let source = NexmarkSource::new(NexmarkTable::Bid, o.clone()).unwrap();
    assert_eq!(source.schema(), NexmarkTable::Bid.schema());
    assert_eq!(Source::partitions(&source), 3);

    let mut a = source.open(&[0, 2]).await.unwrap();
    let mut b = source.open(&[1]).await.unwrap();
    let from_a = drain(a.as_mut()).await;
    let from_b = drain(b.as_mut()).await;
    assert!(matches!(a.next().await.unwrap(), SourcePoll::End));

    let rows_of = |batches: &[(u32, RecordBatch)], p: u32| -> u64 {
        batches
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, b)| b.num_rows() as u64)
            .sum()
    };
    assert_eq!(a.positions(), vec![(0, 334), (2, 333)]);
    assert_eq!(b.positions(), vec![(1, 333)]);
    assert_eq!(rows_of(&from_a, 0), 334);
    assert_eq!(rows_of(&from_a, 2), 333);
    assert_eq!(rows_of(&from_b, 1), 333);
    assert!(from_a.iter().all(|(p, _)| *p == 0 || *p == 2));

    // Round-robin: the partitions alternate while both have rows.
    let order: Vec<u32> = from_a.iter().take(4).map(|(p, _)| *p).collect();
    assert_eq!(order, vec![0, 2, 0, 2]);

    // Together the readers produce exactly the table's stream.
    let all: Vec<RecordBatch> = from_a.into_iter().chain(from_b).map(|(_, b)| b).collect();
    assert_eq!(rows(&all), rows(&generate(&o, NexmarkTable::Bid).unwrap()));
}

#[tokio::test]
async fn restored_reader_continues_where_positions_say() {
    for table in NexmarkTable::ALL {
        let o = options(None, 2, 50);
        let source = NexmarkSource::new(table, o).unwrap();
        let mut original = source.open(&[0, 1]).await.unwrap();
        for _ in 0..5 {
            original.next().await.unwrap();
        }
        let positions = original.positions();
        assert_eq!(positions, vec![(0, 150), (1, 100)]);

        let restored = source.clone().with_start_positions(positions);
        let mut restored = restored.open(&[0, 1]).await.unwrap();
        let mut continued = Vec::new();
        let mut replayed = Vec::new();
        for _ in 0..6 {
            if let SourcePoll::Batch { partition, batch } = original.next().await.unwrap() {
                continued.push((partition, batch));
            }
            if let SourcePoll::Batch { partition, batch } = restored.next().await.unwrap() {
                replayed.push((partition, batch));
            }
        }
        // Same rows per partition (the restored reader starts its round-robin at 0).
        for p in [0, 1] {
            let of = |v: &[(u32, RecordBatch)]| -> Vec<RecordBatch> {
                v.iter()
                    .filter(|(q, _)| *q == p)
                    .map(|(_, b)| b.clone())
                    .collect()
            };
            assert_eq!(of(&continued), of(&replayed), "{table} partition {p}");
        }
        assert_eq!(original.positions(), restored.positions());
    }
}

#[tokio::test(start_paused = true)]
async fn rate_limit_paces_the_source_in_processing_time() {
    // 2,000 rows/s over 4 partitions; this reader has 2 of them: 1,000 rows/s.
    let o = options(Some(4_000), 4, 1024);
    let source = NexmarkSource::new(NexmarkTable::Bid, o)
        .unwrap()
        .with_rate_limit(2_000);
    let mut reader = source.open(&[1, 3]).await.unwrap();
    let start = Instant::now();
    let mut rows = 0;
    let mut last_batch_at = start;
    loop {
        match reader.next().await.unwrap() {
            SourcePoll::Batch { batch, .. } => {
                assert!(batch.num_rows() <= 50, "batch of {}", batch.num_rows());
                rows += batch.num_rows();
                last_batch_at = Instant::now();
            }
            SourcePoll::Idle => panic!("a due batch was reported as idle"),
            SourcePoll::End => break,
            SourcePoll::Rejected { .. } => panic!("generated records are never rejected"),
        }
    }
    assert_eq!(rows, 2_000);
    // The first batch leaves at once, the other 1,950 rows at 1,000 rows/s.
    let elapsed = last_batch_at - start;
    assert!(
        elapsed >= Duration::from_millis(1_940) && elapsed <= Duration::from_millis(1_960),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_rate_reports_idle_between_rows() {
    let source = NexmarkSource::new(NexmarkTable::Person, options(None, 1, 100))
        .unwrap()
        .with_rate_limit(1);
    let mut reader = source.open(&[0]).await.unwrap();
    let start = Instant::now();
    let SourcePoll::Batch { batch, .. } = reader.next().await.unwrap() else {
        panic!("first row is due at once");
    };
    assert_eq!(batch.num_rows(), 1);
    let mut idle = 0;
    loop {
        match reader.next().await.unwrap() {
            SourcePoll::Idle => idle += 1,
            SourcePoll::Batch { batch, .. } => {
                assert_eq!(batch.num_rows(), 1);
                break;
            }
            SourcePoll::End | SourcePoll::Rejected { .. } => panic!("unbounded and valid"),
        }
    }
    assert_eq!(idle, 4);
    assert_eq!(Instant::now() - start, Duration::from_secs(1));
    assert_eq!(reader.positions(), vec![(0, 2)]);
}

#[tokio::test]
async fn invalid_assignments_are_plan_errors() {
    let source = NexmarkSource::new(NexmarkTable::Bid, options(None, 2, 10)).unwrap();
    for partitions in [&[2][..], &[0, 0][..]] {
        assert!(matches!(source.open(partitions).await, Err(Error::Plan(_))));
    }
    let zero = source.clone().with_rate_limit(0);
    assert!(matches!(zero.open(&[0]).await, Err(Error::Plan(_))));
    let bad = NexmarkOptions {
        batch_size: 0,
        ..Default::default()
    };
    assert!(matches!(
        NexmarkSource::new(NexmarkTable::Bid, bad),
        Err(Error::Plan(_))
    ));
    // A subtask without partitions simply ends.
    let mut empty = source.open(&[]).await.unwrap();
    assert!(matches!(empty.next().await.unwrap(), SourcePoll::End));
    assert!(empty.positions().is_empty());
}

#[test]
fn watermark_strategy_covers_the_configured_disorder() {
    let o = NexmarkOptions {
        out_of_order_group_size: 1000,
        ..Default::default()
    };
    let source = NexmarkSource::new(NexmarkTable::Bid, o.clone()).unwrap();
    let strategy = source.watermark_strategy();
    assert_eq!(strategy.time_column, "date_time");
    assert_eq!(
        strategy.max_out_of_orderness,
        o.max_out_of_orderness(NexmarkTable::Bid)
    );
    assert!(strategy.max_out_of_orderness > Duration::ZERO);
}
