//! [`LogSource`]: a topic as a replayable runnel source.
//!
//! Positions are log offsets, so a checkpoint stores `partition -> offset` and recovery
//! restarts the readers there ([`LogSource::starting_at`]). A reader fetches up to
//! `max_batch_rows` rows of one partition at a time (whole segments, decoded
//! zero-copy) and hands them out one batch per call, rotating over its partitions so
//! that a busy partition cannot starve the others. `positions()` counts only rows
//! handed out, not rows fetched and still buffered.
//!
//! Bounded readers stop at fixed end offsets (then `SourcePoll::End`): either those they
//! observe when they open ([`LogSource::bounded`]) or offsets pinned when the job was
//! defined ([`LogSource::until`]), which a restarted job needs to end at the same place.
//! Unbounded readers tail the log: when every partition is caught up they wait
//! `poll_interval` and report `SourcePoll::Idle`.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use runnel_runtime::{Error, Result, Source, SourcePoll, SourceReader};

use super::topic::Topic;

/// Default wait of a caught-up unbounded reader before it reports idle.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Default number of rows fetched per read of a partition.
pub const DEFAULT_MAX_BATCH_ROWS: usize = 64 * 1024;

/// Where a reader stops.
#[derive(Debug, Clone)]
enum End {
    /// Never: tail the log.
    Unbounded,
    /// At the end offsets observed when the reader opens.
    AtOpen,
    /// At these offsets (a partition not listed is read to offset 0, i.e. not at all).
    Offsets(HashMap<u32, u64>),
}

/// Reads a topic of the embedded log.
#[derive(Debug, Clone)]
pub struct LogSource {
    topic: Topic,
    end: End,
    start: HashMap<u32, u64>,
    poll_interval: Duration,
    max_batch_rows: usize,
}

impl LogSource {
    /// An unbounded source over every partition of `topic`, from the earliest offset.
    pub fn new(topic: Topic) -> Self {
        LogSource {
            topic,
            end: End::Unbounded,
            start: HashMap::new(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_batch_rows: DEFAULT_MAX_BATCH_ROWS,
        }
    }

    /// Reads up to the end offsets observed when a reader opens, then ends.
    pub fn bounded(mut self) -> Self {
        self.end = End::AtOpen;
        self
    }

    /// Reads each partition up to the given end offset, then ends; partitions not listed
    /// are not read. The offsets usually come from [`Topic::end_offset`] at the time a
    /// job over a fixed input was defined, so that every restart ends at the same place.
    pub fn until(mut self, ends: HashMap<u32, u64>) -> Self {
        self.end = End::Offsets(ends);
        self
    }

    /// Starts each listed partition at the given offset (others at 0), e.g. the
    /// positions of a checkpoint.
    pub fn starting_at(mut self, positions: HashMap<u32, u64>) -> Self {
        self.start = positions;
        self
    }

    /// How long a caught-up unbounded reader waits before reporting idle.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Most rows fetched from a partition at once (at least 1).
    pub fn max_batch_rows(mut self, rows: usize) -> Self {
        self.max_batch_rows = rows.max(1);
        self
    }
}

#[async_trait]
impl Source for LogSource {
    fn schema(&self) -> SchemaRef {
        self.topic.schema()
    }

    fn partitions(&self) -> usize {
        self.topic.partitions() as usize
    }

    async fn open_at(
        &self,
        partitions: &[u32],
        positions: &HashMap<u32, u64>,
    ) -> Result<Box<dyn SourceReader>> {
        let mut cursors = Vec::with_capacity(partitions.len());
        for &partition in partitions {
            if partition >= self.topic.partitions() {
                return Err(Error::Plan(format!(
                    "topic {} has no partition {partition}",
                    self.topic.name()
                )));
            }
            let start = positions
                .get(&partition)
                .or_else(|| self.start.get(&partition))
                .copied()
                .unwrap_or(0);
            let bound = match &self.end {
                End::Unbounded => None,
                End::AtOpen => Some(self.topic.end_offset(partition).await?),
                End::Offsets(ends) => Some(ends.get(&partition).copied().unwrap_or(0)),
            };
            if let Some(end) = bound.filter(|end| start > *end) {
                return Err(Error::Data(format!(
                    "start offset {start} of {}/{partition} is past its end {end}",
                    self.topic.name()
                )));
            }
            cursors.push(Cursor {
                partition,
                emitted: start,
                fetched: start,
                bound,
                pending: VecDeque::new(),
                at_end: false,
            });
        }
        Ok(Box::new(LogReader {
            topic: self.topic.clone(),
            cursors,
            turn: 0,
            poll_interval: self.poll_interval,
            max_batch_rows: self.max_batch_rows,
        }))
    }
}

struct Cursor {
    partition: u32,
    /// Offset of the next row to hand out.
    emitted: u64,
    /// Offset of the next row to fetch; `pending` holds `[emitted, fetched)`.
    fetched: u64,
    /// Bounded readers stop here.
    bound: Option<u64>,
    pending: VecDeque<RecordBatch>,
    /// The last fetch found nothing new: the partition is read to its end.
    at_end: bool,
}

impl Cursor {
    fn done(&self) -> bool {
        self.pending.is_empty() && self.bound.is_some_and(|b| self.fetched >= b)
    }

    fn emit(&mut self) -> Option<SourcePoll> {
        let batch = self.pending.pop_front()?;
        self.emitted += batch.num_rows() as u64;
        Some(SourcePoll::Batch {
            partition: self.partition,
            batch,
        })
    }
}

struct LogReader {
    topic: Topic,
    cursors: Vec<Cursor>,
    /// The partition to serve first on the next call.
    turn: usize,
    poll_interval: Duration,
    max_batch_rows: usize,
}

#[async_trait]
impl SourceReader for LogReader {
    async fn next(&mut self) -> Result<SourcePoll> {
        let n = self.cursors.len();
        for _ in 0..n {
            let cursor = &mut self.cursors[self.turn];
            self.turn = (self.turn + 1) % n;
            if let Some(poll) = cursor.emit() {
                return Ok(poll);
            }
            let max_rows = match cursor.bound {
                Some(bound) if cursor.fetched >= bound => continue,
                Some(bound) => (bound - cursor.fetched).min(self.max_batch_rows as u64) as usize,
                None => self.max_batch_rows,
            };
            let read = self
                .topic
                .read(cursor.partition, cursor.fetched, max_rows)
                .await?;
            cursor.at_end = read.next_offset == cursor.fetched;
            cursor.fetched = read.next_offset;
            cursor
                .pending
                .extend(read.batches.into_iter().filter(|b| b.num_rows() > 0));
            if let Some(poll) = cursor.emit() {
                return Ok(poll);
            }
        }
        if self.cursors.iter().all(Cursor::done) {
            return Ok(SourcePoll::End);
        }
        tokio::time::sleep(self.poll_interval).await;
        Ok(SourcePoll::Idle)
    }

    fn positions(&self) -> Vec<(u32, u64)> {
        self.cursors
            .iter()
            .map(|c| (c.partition, c.emitted))
            .collect()
    }

    fn caught_up(&self, partition: u32) -> bool {
        let cursor = self.cursors.iter().find(|c| c.partition == partition);
        cursor.is_none_or(|c| c.at_end && c.pending.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::super::test_util::{batch, ids, schema, stores};
    use super::*;

    async fn poll_until_end(reader: &mut dyn SourceReader) -> (Vec<u32>, HashMap<u32, Vec<i64>>) {
        let (mut order, mut rows) = (Vec::new(), HashMap::<u32, Vec<i64>>::new());
        loop {
            match reader.next().await.unwrap() {
                SourcePoll::Batch { partition, batch } => {
                    order.push(partition);
                    rows.entry(partition).or_default().extend(ids(&[batch]));
                }
                SourcePoll::End => return (order, rows),
                SourcePoll::Idle => panic!("a bounded reader is never idle"),
                SourcePoll::Rejected { .. } => panic!("the log never rejects a record"),
            }
        }
    }

    #[tokio::test]
    async fn bounded_read_of_four_partitions_returns_all_rows_fairly() {
        for s in stores() {
            let mut rng = StdRng::seed_from_u64(3);
            let topic = s.log().create_topic("t", 4, schema()).await.unwrap();
            let mut oracle: HashMap<u32, Vec<i64>> = HashMap::new();
            let mut next_id = 0;
            for _ in 0..40 {
                let partition = rng.random_range(0..4);
                let n = rng.random_range(1..50);
                topic
                    .append(partition, &[batch(next_id..next_id + n)], None)
                    .await
                    .unwrap();
                oracle
                    .entry(partition)
                    .or_default()
                    .extend(next_id..next_id + n);
                next_id += n;
            }
            let source = LogSource::new(s.log().topic("t").await.unwrap())
                .bounded()
                .max_batch_rows(16);
            assert_eq!((source.partitions(), source.schema()), (4, schema()));
            let mut reader = source.open(&[0, 1, 2, 3]).await.unwrap();
            // Rows appended after the reader opened are beyond its bound.
            topic.append(2, &[batch(-5..0)], None).await.unwrap();
            let (order, rows) = poll_until_end(reader.as_mut()).await;
            assert_eq!(rows, oracle, "{}", s.kind);
            let mut first: Vec<u32> = order[..4].to_vec();
            first.sort_unstable();
            assert_eq!(first, vec![0, 1, 2, 3], "partitions take turns");
            let mut positions = reader.positions();
            positions.sort_unstable();
            let ends: Vec<(u32, u64)> = (0..4).map(|p| (p, oracle[&p].len() as u64)).collect();
            assert_eq!(positions, ends);
            assert!(matches!(reader.next().await.unwrap(), SourcePoll::End));
        }
    }

    #[tokio::test]
    async fn pinned_end_offsets_stop_every_reader_at_the_same_place() {
        for s in stores() {
            let topic = s.log().create_topic("t", 2, schema()).await.unwrap();
            topic.append(0, &[batch(0..10)], None).await.unwrap();
            topic.append(1, &[batch(10..15)], None).await.unwrap();
            let ends = HashMap::from([(0, 10), (1, 5)]);
            // Appends after the definition are beyond the pinned ends.
            topic.append(0, &[batch(100..103)], None).await.unwrap();
            let source = LogSource::new(topic.clone())
                .until(ends.clone())
                .max_batch_rows(4);
            let mut reader = source.open(&[0, 1]).await.unwrap();
            let (_, rows) = poll_until_end(reader.as_mut()).await;
            assert_eq!(rows[&0], (0..10).collect::<Vec<_>>(), "{}", s.kind);
            assert_eq!(rows[&1], (10..15).collect::<Vec<_>>());
            // A restarted reader resumes at its checkpointed position and ends there too.
            let positions = HashMap::from([(0, 7), (1, 5)]);
            let mut reader = source.open_at(&[0, 1], &positions).await.unwrap();
            let (_, rows) = poll_until_end(reader.as_mut()).await;
            assert_eq!(rows[&0], vec![7, 8, 9]);
            assert!(!rows.contains_key(&1));
        }
    }

    #[tokio::test]
    async fn unbounded_reader_resumes_at_positions_and_tails_new_appends() {
        for s in stores() {
            let topic = s.log().create_topic("t", 2, schema()).await.unwrap();
            topic.append(1, &[batch(0..10)], None).await.unwrap();
            let source = LogSource::new(topic.clone())
                .starting_at(HashMap::from([(1, 3)]))
                .poll_interval(Duration::from_millis(1))
                .max_batch_rows(4);
            let mut reader = source.open(&[1]).await.unwrap();
            let mut seen = Vec::new();
            while seen.len() < 7 {
                match reader.next().await.unwrap() {
                    SourcePoll::Batch {
                        partition: 1,
                        batch,
                    } => seen.extend(ids(&[batch])),
                    other => panic!("unexpected {other:?}"),
                }
                assert_eq!(reader.positions(), vec![(1, 3 + seen.len() as u64)]);
            }
            assert_eq!(seen, (3..10).collect::<Vec<_>>());
            assert!(matches!(reader.next().await.unwrap(), SourcePoll::Idle));
            // Another instance (another process) appends; the reader picks it up.
            let writer = s.log().topic("t").await.unwrap();
            writer.append(1, &[batch(10..12)], None).await.unwrap();
            match reader.next().await.unwrap() {
                SourcePoll::Batch { batch, .. } => assert_eq!(ids(&[batch]), vec![10, 11]),
                other => panic!("unexpected {other:?}"),
            }
            assert_eq!(reader.positions(), vec![(1, 12)]);
            assert!(matches!(source.open(&[2]).await, Err(Error::Plan(_))));
        }
    }
}
