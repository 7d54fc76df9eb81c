//! A replayable in-memory source for long benchmarks: bids generated once and replayed
//! `cycles` times, each cycle moved forward in event time by one vectorized add per
//! batch, with positions (rows emitted per partition over all cycles) a restore could
//! resume from.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arrow::array::{AsArray, TimestampMillisecondArray};
use arrow::compute::kernels::aggregate::{max, min};
use arrow::datatypes::{SchemaRef, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;
use runnel_connectors::nexmark::NexmarkTable;
use runnel_runtime::{Error, Result, Source, SourcePoll, SourceReader};

/// Bids of every partition, replayed `cycles` times with event time moved forward.
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    partitions: Vec<Vec<RecordBatch>>,
    /// Rows of each partition in one cycle.
    rows: Vec<u64>,
    cycles: u64,
    /// How far `date_time` moves per cycle: the span of the data's event times plus 1 ms,
    /// so cycle `c + 1` starts right after cycle `c` ends.
    pub(crate) shift_millis: i64,
    time_column: usize,
}

impl Replay {
    /// The same bids, replayed `cycles` times.
    pub(crate) fn with_cycles(&self, cycles: u64) -> Replay {
        Replay {
            cycles,
            ..self.clone()
        }
    }

    pub(crate) fn new(partitions: Vec<Vec<RecordBatch>>, cycles: u64) -> Result<Replay> {
        let schema = NexmarkTable::Bid.schema();
        let time_column = schema.index_of(NexmarkTable::Bid.event_time_column())?;
        let mut range: Option<(i64, i64)> = None;
        for batch in partitions.iter().flatten() {
            let times = times(batch, time_column)?;
            if let (Some(lo), Some(hi)) = (min(times), max(times)) {
                range = Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
        }
        let (lo, hi) = range.ok_or_else(|| Error::Plan("no bids to replay".into()))?;
        Ok(Replay {
            rows: partitions
                .iter()
                .map(|p| p.iter().map(|b| b.num_rows() as u64).sum())
                .collect(),
            partitions,
            cycles,
            shift_millis: hi - lo + 1,
            time_column,
        })
    }

    pub(crate) fn rows_per_cycle(&self) -> u64 {
        self.rows.iter().sum()
    }

    pub(crate) fn total_rows(&self) -> u64 {
        self.rows_per_cycle() * self.cycles
    }

    /// Where partition `partition` continues after `position` rows.
    fn cursor_at(&self, partition: u32, position: u64) -> Result<Cursor> {
        let rows = *self
            .rows
            .get(partition as usize)
            .ok_or_else(|| Error::Plan(format!("replay: no partition {partition}")))?;
        if position > rows * self.cycles {
            return Err(Error::Plan(format!(
                "replay: position {position} is past the end of partition {partition}"
            )));
        }
        let mut cursor = Cursor {
            partition,
            emitted: position,
            cycle: self.cycles,
            batch: 0,
            row: 0,
        };
        if rows == 0 || position == rows * self.cycles {
            return Ok(cursor);
        }
        cursor.cycle = position / rows;
        let mut within = (position % rows) as usize;
        for batch in &self.partitions[partition as usize] {
            if within < batch.num_rows() {
                break;
            }
            within -= batch.num_rows();
            cursor.batch += 1;
        }
        cursor.row = within;
        Ok(cursor)
    }

    /// The rest of the batch at `cursor`, with its event times moved to its cycle, and
    /// the cursor moved past it; `None` once the partition has been replayed.
    fn take(&self, cursor: &mut Cursor) -> Result<Option<RecordBatch>> {
        if cursor.cycle >= self.cycles {
            return Ok(None);
        }
        let batches = &self.partitions[cursor.partition as usize];
        let whole = &batches[cursor.batch];
        let batch = whole.slice(cursor.row, whole.num_rows() - cursor.row);
        let batch = self.shift(batch, cursor.cycle as i64 * self.shift_millis)?;
        cursor.emitted += batch.num_rows() as u64;
        cursor.row = 0;
        cursor.batch += 1;
        if cursor.batch == batches.len() {
            cursor.batch = 0;
            cursor.cycle += 1;
        }
        Ok(Some(batch))
    }

    fn shift(&self, batch: RecordBatch, by_millis: i64) -> Result<RecordBatch> {
        if by_millis == 0 {
            return Ok(batch);
        }
        let times = times(&batch, self.time_column)?;
        let moved: TimestampMillisecondArray = times
            .unary::<_, TimestampMillisecondType>(|t| t + by_millis)
            .with_timezone_opt(times.timezone());
        let mut columns = batch.columns().to_vec();
        columns[self.time_column] = Arc::new(moved);
        Ok(RecordBatch::try_new(batch.schema(), columns)?)
    }
}

/// Checks that a reader opened at a position (inside the second cycle, inside a batch)
/// goes on exactly as one that read up to there from the start: what makes the source's
/// positions something a restore can resume from.
pub(crate) fn check_seek(replay: &Replay) -> Result<()> {
    let rows = replay.rows[0];
    if replay.cycles < 2 || rows < 3 {
        return Ok(());
    }
    let position = rows + rows / 3;
    let mut from_start = replay.cursor_at(0, 0)?;
    let mut read = 0;
    let expected = loop {
        let Some(batch) = replay.take(&mut from_start)? else {
            return Err(Error::Internal("replay ended before its length".into()));
        };
        let end = read + batch.num_rows() as u64;
        if end > position {
            let offset = (position - read) as usize;
            break batch.slice(offset, batch.num_rows() - offset);
        }
        read = end;
    };
    let mut resumed = replay.cursor_at(0, position)?;
    let actual = replay.take(&mut resumed)?;
    if actual.as_ref() != Some(&expected) || resumed.emitted != from_start.emitted {
        return Err(Error::Internal(format!(
            "replay resumed at {position} differs from reading up to there"
        )));
    }
    Ok(())
}

fn times(batch: &RecordBatch, column: usize) -> Result<&TimestampMillisecondArray> {
    batch
        .column(column)
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| Error::Plan("replay: event time must be Timestamp(Millisecond)".into()))
}

/// Where one partition's replay stands.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    partition: u32,
    /// Rows emitted so far over all cycles: the partition's position.
    emitted: u64,
    cycle: u64,
    batch: usize,
    /// First row of `batch` not yet emitted (non-zero only right after a seek).
    row: usize,
}

/// The replay as a [`Source`].
#[derive(Debug)]
pub(crate) struct ReplaySource(pub(crate) Arc<Replay>);

impl ReplaySource {
    fn reader(&self, partitions: &[u32], positions: &HashMap<u32, u64>) -> Result<ReplayReader> {
        let cursors = partitions
            .iter()
            .map(|&p| self.0.cursor_at(p, positions.get(&p).copied().unwrap_or(0)))
            .collect::<Result<_>>()?;
        Ok(ReplayReader {
            replay: self.0.clone(),
            cursors,
            next: 0,
        })
    }
}

struct ReplayReader {
    replay: Arc<Replay>,
    cursors: Vec<Cursor>,
    /// The cursor to try first: partitions take turns, one batch each.
    next: usize,
}

impl ReplayReader {
    fn poll(&mut self) -> Result<SourcePoll> {
        for _ in 0..self.cursors.len() {
            let turn = self.next;
            self.next = (turn + 1) % self.cursors.len();
            let cursor = &mut self.cursors[turn];
            if let Some(batch) = self.replay.take(cursor)? {
                let partition = cursor.partition;
                return Ok(SourcePoll::Batch { partition, batch });
            }
        }
        Ok(SourcePoll::End)
    }
}

// `Source` and `SourceReader` are `async_trait` traits. Their async methods are written
// here as that macro expands them, so the benchmarks need no proc-macro dependency; the
// replay never waits, so each returns a ready future.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Source for ReplaySource {
    fn schema(&self) -> SchemaRef {
        NexmarkTable::Bid.schema()
    }

    fn partitions(&self) -> usize {
        self.0.partitions.len()
    }

    fn open_at<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        partitions: &'life1 [u32],
        positions: &'life2 HashMap<u32, u64>,
    ) -> BoxFuture<'async_trait, Result<Box<dyn SourceReader>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let reader = self
            .reader(partitions, positions)
            .map(|r| Box::new(r) as Box<dyn SourceReader>);
        Box::pin(std::future::ready(reader))
    }
}

impl SourceReader for ReplayReader {
    fn next<'life0, 'async_trait>(&'life0 mut self) -> BoxFuture<'async_trait, Result<SourcePoll>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(std::future::ready(self.poll()))
    }

    fn positions(&self) -> Vec<(u32, u64)> {
        self.cursors
            .iter()
            .map(|c| (c.partition, c.emitted))
            .collect()
    }
}
