//! `NexmarkSource`: one Nexmark table as a partitioned, replayable runnel source.
//!
//! A reader owns one [`NexmarkGenerator`] per assigned partition and serves them
//! round-robin, one batch at a time, so every partition's event time advances evenly.
//! Its position per partition is the number of rows produced; restoring is regenerating
//! from that position (see [`NexmarkSource::with_start_positions`]).
//!
//! **Rate limit.** Without one, the source produces as fast as the job consumes
//! (backpressure is the only brake). With `with_rate_limit(r)`, the whole source produces
//! about `r` rows per second of processing time: a reader with `k` of the `N` partitions
//! paces itself at `r * k / N`, emitting a batch when it is due and, if the next batch is
//! due soon, sleeping until then (`tokio::time`) instead of returning `Idle`. Batches are
//! capped at ~50 ms worth of rows so a slow rate trickles instead of bursting, and a
//! reader that fell behind (backpressure) catches up by at most one second's worth.
//! `next` changes no state before its sleep completes, so it is cancel-safe.

use std::collections::HashMap;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use runnel_runtime::{Error, Result, Source, SourcePoll, SourceReader, WatermarkStrategy};
use tokio::time::Instant;

use super::generator::NexmarkGenerator;
use super::options::NexmarkOptions;
use super::schema::NexmarkTable;

/// Longest a reader sleeps inside one `next` call before answering `Idle`.
const MAX_WAIT: Duration = Duration::from_millis(200);
/// Processing time one rate-limited batch covers at most.
const MAX_BATCH_SPAN: Duration = Duration::from_millis(50);
/// How much lost time a rate-limited reader may make up in a burst.
const MAX_CATCH_UP: Duration = Duration::from_secs(1);

/// One Nexmark table as a source; see the module docs.
///
/// ```
/// use runnel_connectors::nexmark::{NexmarkOptions, NexmarkSource, NexmarkTable};
/// let options = NexmarkOptions { partitions: 4, max_events: Some(1_000_000), ..Default::default() };
/// let bids = NexmarkSource::new(NexmarkTable::Bid, options)?.with_rate_limit(50_000);
/// # Ok::<(), runnel_runtime::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NexmarkSource {
    table: NexmarkTable,
    options: NexmarkOptions,
    rate_limit: Option<u64>,
    start_positions: HashMap<u32, u64>,
}

impl NexmarkSource {
    /// A source of `table` generated with `options` (validated here).
    pub fn new(table: NexmarkTable, options: NexmarkOptions) -> Result<Self> {
        options.validate()?;
        Ok(NexmarkSource {
            table,
            options,
            rate_limit: None,
            start_positions: HashMap::new(),
        })
    }

    /// Limits the source to about `rows_per_second` rows per second over all partitions,
    /// in processing time. `0` is rejected when a reader is opened.
    pub fn with_rate_limit(mut self, rows_per_second: u64) -> Self {
        self.rate_limit = Some(rows_per_second);
        self
    }

    /// Readers start each listed partition at the given position (rows already produced,
    /// as reported by `positions()`), e.g. from a checkpoint; others start at 0.
    pub fn with_start_positions(mut self, positions: impl IntoIterator<Item = (u32, u64)>) -> Self {
        self.start_positions = positions.into_iter().collect();
        self
    }

    /// The generated table.
    pub fn table(&self) -> NexmarkTable {
        self.table
    }

    /// The generator options.
    pub fn options(&self) -> &NexmarkOptions {
        &self.options
    }

    /// A watermark strategy on `date_time` whose bound covers the configured disorder.
    pub fn watermark_strategy(&self) -> WatermarkStrategy {
        WatermarkStrategy::bounded(
            self.table.event_time_column(),
            self.options.max_out_of_orderness(self.table),
        )
    }

    /// Opens a reader for `partitions`, each starting at the configured start position.
    pub fn reader(&self, partitions: &[u32]) -> Result<NexmarkReader> {
        let mut generators = Vec::with_capacity(partitions.len());
        for &p in partitions {
            if generators.iter().any(|(q, _)| *q == p) {
                return Err(Error::Plan(format!(
                    "nexmark: partition {p} assigned twice"
                )));
            }
            let mut generator = NexmarkGenerator::new(self.options.clone(), p as usize)?;
            generator.seek(
                self.table,
                self.start_positions.get(&p).copied().unwrap_or(0),
            );
            generators.push((p, generator));
        }
        let throttle = match self.rate_limit {
            None => None,
            Some(0) => {
                return Err(Error::Plan("nexmark: rate limit must be positive".into()));
            }
            Some(rate) => {
                let share = rate as f64 * partitions.len() as f64 / self.options.partitions as f64;
                Some(Throttle::new(share, self.options.batch_size))
            }
        };
        Ok(NexmarkReader {
            table: self.table,
            generators,
            next: 0,
            throttle,
        })
    }
}

#[async_trait]
impl Source for NexmarkSource {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn partitions(&self) -> usize {
        self.options.partitions
    }

    async fn open_at(
        &self,
        partitions: &[u32],
        positions: &HashMap<u32, u64>,
    ) -> Result<Box<dyn SourceReader>> {
        if positions.is_empty() {
            return Ok(Box::new(self.reader(partitions)?));
        }
        let mut resumed = self.clone();
        resumed.start_positions.extend(positions);
        Ok(Box::new(resumed.reader(partitions)?))
    }
}

/// Paces a reader at a fixed number of rows per second.
#[derive(Debug)]
struct Throttle {
    /// Rows per second for this reader.
    rate: f64,
    /// When the next batch may be emitted; `None` until the first one.
    due: Option<Instant>,
    /// Most rows in one batch.
    max_batch: usize,
}

impl Throttle {
    fn new(rate: f64, batch_size: usize) -> Self {
        let span_rows = (rate * MAX_BATCH_SPAN.as_secs_f64()).floor() as usize;
        Throttle {
            rate,
            due: None,
            max_batch: span_rows.clamp(1, batch_size),
        }
    }

    /// Records `rows` emitted at `now`, pushing the next due time back.
    fn emitted(&mut self, rows: usize, now: Instant) {
        let earliest = now.checked_sub(MAX_CATCH_UP).unwrap_or(now);
        let due = self.due.map_or(now, |due| due.max(earliest));
        let day = Duration::from_secs(86_400);
        let gap = Duration::try_from_secs_f64(rows as f64 / self.rate).unwrap_or(day);
        self.due = Some(due + gap.min(day));
    }
}

/// The reader of one source subtask; see [`NexmarkSource`].
#[derive(Debug)]
pub struct NexmarkReader {
    table: NexmarkTable,
    generators: Vec<(u32, NexmarkGenerator)>,
    /// Index of the generator to serve next (round-robin).
    next: usize,
    throttle: Option<Throttle>,
}

impl NexmarkReader {
    /// Index of the next generator with rows left, starting at `self.next`.
    fn next_ready(&self) -> Option<usize> {
        let n = self.generators.len();
        (0..n)
            .map(|i| (self.next + i) % n)
            .find(|&i| self.generators[i].1.remaining(self.table) != Some(0))
    }
}

#[async_trait]
impl SourceReader for NexmarkReader {
    async fn next(&mut self) -> Result<SourcePoll> {
        let Some(index) = self.next_ready() else {
            return Ok(SourcePoll::End);
        };
        let mut max_rows = usize::MAX;
        if let Some(throttle) = &self.throttle {
            if let Some(due) = throttle.due {
                let now = Instant::now();
                if due > now + MAX_WAIT {
                    tokio::time::sleep(MAX_WAIT).await;
                    return Ok(SourcePoll::Idle);
                }
                tokio::time::sleep_until(due).await;
            }
            max_rows = throttle.max_batch;
        }
        let (partition, generator) = &mut self.generators[index];
        let Some(batch) = generator.next_batch_with_max_rows(self.table, max_rows)? else {
            return Err(Error::Internal(
                "nexmark partition with rows left produced none".into(),
            ));
        };
        let partition = *partition;
        self.next = (index + 1) % self.generators.len();
        if let Some(throttle) = &mut self.throttle {
            throttle.emitted(batch.num_rows(), Instant::now());
        }
        Ok(SourcePoll::Batch { partition, batch })
    }

    fn positions(&self) -> Vec<(u32, u64)> {
        self.generators
            .iter()
            .map(|(p, g)| (*p, g.position(self.table)))
            .collect()
    }
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
