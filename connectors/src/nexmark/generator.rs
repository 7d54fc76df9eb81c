//! The partitioned, replayable Nexmark generator.
//!
//! Each table is its own stream of rows, numbered `0, 1, 2, ...` in event-time order (row
//! `r` of the bid table is the `r`-th bid of the global Nexmark event stream). Partition
//! `p` of `N` generates rows `p, p + N, p + 2N, ...` of every table, like the split
//! generators of the Flink and RisingWave Nexmark sources, so the partitions together
//! produce each row exactly once, and a partition's position is simply how many rows of
//! a table it has produced. Every row is a pure function of `(options, table, row)`:
//! seeking to a position regenerates exactly what follows it, which is what makes the
//! source replayable from a checkpoint.
//!
//! Rows come from the `nexmark` crate's `EventGenerator`, moved to each row's offset with
//! `with_offset` (a field write), so jumping by `N` rows costs nothing extra.

use arrow::record_batch::RecordBatch;
use nexmark::EventGenerator;
use nexmark::config::NexmarkConfig;
use nexmark::event::EventType;
use runnel_runtime::{Error, Result};

use super::batch::TableBuilder;
use super::options::NexmarkOptions;
use super::schema::NexmarkTable;

/// Per-table state of one partition.
#[derive(Default)]
struct Cursor {
    /// Rows of the table this partition has produced (its position).
    produced: u64,
    /// The crate's generator, created on first use (its config holds a few vectors).
    events: Option<EventGenerator>,
}

/// Generates the rows of one partition, for any of the three tables.
pub struct NexmarkGenerator {
    options: NexmarkOptions,
    config: NexmarkConfig,
    partition: u64,
    cursors: [Cursor; 3],
}

impl std::fmt::Debug for NexmarkGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NexmarkGenerator")
            .field("options", &self.options)
            .field("partition", &self.partition)
            .field("positions", &self.cursors.each_ref().map(|c| c.produced))
            .finish()
    }
}

impl NexmarkGenerator {
    /// A generator for partition `partition` of `options.partitions`, at position 0 of
    /// every table.
    ///
    /// ```
    /// use runnel_connectors::nexmark::{NexmarkGenerator, NexmarkOptions, NexmarkTable};
    /// let options = NexmarkOptions { max_events: Some(10), ..Default::default() };
    /// let mut generator = NexmarkGenerator::new(options, 0)?;
    /// let batch = generator.next_batch(NexmarkTable::Bid)?.expect("ten bids");
    /// assert_eq!(batch.num_rows(), 10);
    /// assert!(generator.next_batch(NexmarkTable::Bid)?.is_none());
    /// # Ok::<(), runnel_runtime::Error>(())
    /// ```
    pub fn new(options: NexmarkOptions, partition: usize) -> Result<Self> {
        options.validate()?;
        if partition >= options.partitions {
            return Err(Error::Plan(format!(
                "nexmark: partition {partition} out of range, the stream has {} partition(s)",
                options.partitions
            )));
        }
        Ok(NexmarkGenerator {
            config: options.config(),
            options,
            partition: partition as u64,
            cursors: Default::default(),
        })
    }

    /// The options the generator was built with.
    pub fn options(&self) -> &NexmarkOptions {
        &self.options
    }

    /// The partition this generator produces.
    pub fn partition(&self) -> usize {
        self.partition as usize
    }

    /// Rows of `table` produced so far by this partition.
    pub fn position(&self, table: NexmarkTable) -> u64 {
        self.cursors[table.index()].produced
    }

    /// Continues `table` from `position` (rows already produced by this partition), as
    /// when restoring a checkpoint: the rows that follow are exactly the rows that
    /// followed that position the first time.
    pub fn seek(&mut self, table: NexmarkTable, position: u64) {
        self.cursors[table.index()].produced = position;
    }

    /// Rows of `table` this partition still has to produce; `None` when unbounded.
    pub fn remaining(&self, table: NexmarkTable) -> Option<u64> {
        let total = self.options.partition_rows(self.partition())?;
        Some(total.saturating_sub(self.position(table)))
    }

    /// The next batch of `table` (up to `batch_size` rows), or `None` once a bounded
    /// stream is exhausted.
    pub fn next_batch(&mut self, table: NexmarkTable) -> Result<Option<RecordBatch>> {
        self.next_batch_with_max_rows(table, self.options.batch_size)
    }

    /// Like [`NexmarkGenerator::next_batch`], with at most `max_rows` rows (at least one).
    pub fn next_batch_with_max_rows(
        &mut self,
        table: NexmarkTable,
        max_rows: usize,
    ) -> Result<Option<RecordBatch>> {
        let mut rows = max_rows.clamp(1, self.options.batch_size) as u64;
        if let Some(remaining) = self.remaining(table) {
            rows = rows.min(remaining);
        }
        if rows == 0 {
            return Ok(None);
        }
        let cursor = &mut self.cursors[table.index()];
        let mut events = match cursor.events.take() {
            Some(events) => events,
            None => EventGenerator::new(self.config.clone()).with_type_filter(event_type(table)),
        };
        let stride = self.options.partitions as u64;
        let mut builder = TableBuilder::new(table, rows as usize);
        for k in cursor.produced..cursor.produced + rows {
            let row = self.partition.saturating_add(k.saturating_mul(stride));
            events = events.with_offset(self.options.shuffle(row));
            // With a type filter the offset counts rows of the table; the global event
            // number (which fixes the event time) is the crate's `global_offset`.
            let event_number = events.global_offset();
            let event = events
                .next()
                .ok_or_else(|| Error::Internal("nexmark event generator ended".into()))?;
            builder.append(&event, self.options.event_time_millis(event_number))?;
        }
        cursor.produced += rows;
        cursor.events = Some(events);
        builder.finish().map(Some)
    }
}

fn event_type(table: NexmarkTable) -> EventType {
    match table {
        NexmarkTable::Bid => EventType::Bid,
        NexmarkTable::Auction => EventType::Auction,
        NexmarkTable::Person => EventType::Person,
    }
}

/// Generates all `options.max_events` rows of `table`, partition by partition on up to
/// one thread per core, and returns the batches of all partitions interleaved
/// round-robin (partition 0's first batch, partition 1's first batch, ...), as a live
/// source would deliver them. For tests and benchmarks that pre-generate their input.
pub fn generate(options: &NexmarkOptions, table: NexmarkTable) -> Result<Vec<RecordBatch>> {
    options.validate()?;
    if options.max_events.is_none() {
        return Err(Error::Plan(
            "nexmark: generate needs a bounded stream (max_events)".into(),
        ));
    }
    let partitions = options.partitions;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(partitions);
    let mut per_partition: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..partitions)
                        .step_by(threads)
                        .map(|p| Ok((p, generate_partition(options, table, p)?)))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Internal("nexmark generator panicked".into())))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    for (p, batches) in results.into_iter().flatten() {
        per_partition[p] = batches;
    }
    let rounds = per_partition.iter().map(Vec::len).max().unwrap_or(0);
    let mut iters: Vec<_> = per_partition.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::new();
    for _ in 0..rounds {
        out.extend(iters.iter_mut().filter_map(Iterator::next));
    }
    Ok(out)
}

/// All batches of `table` of one partition of a bounded stream.
pub fn generate_partition(
    options: &NexmarkOptions,
    table: NexmarkTable,
    partition: usize,
) -> Result<Vec<RecordBatch>> {
    let mut generator = NexmarkGenerator::new(options.clone(), partition)?;
    if generator.remaining(table).is_none() {
        return Err(Error::Plan(
            "nexmark: generate needs a bounded stream (max_events)".into(),
        ));
    }
    let mut batches = Vec::new();
    while let Some(batch) = generator.next_batch(table)? {
        batches.push(batch);
    }
    Ok(batches)
}

/// `count` bids of the stream `options` describes (its `max_events` is replaced by
/// `count`), all partitions interleaved; see [`generate`].
pub fn generate_bids(options: &NexmarkOptions, count: u64) -> Result<Vec<RecordBatch>> {
    let options = NexmarkOptions {
        max_events: Some(count),
        ..options.clone()
    };
    generate(&options, NexmarkTable::Bid)
}

#[cfg(test)]
#[path = "generator_tests.rs"]
mod tests;
