//! Sources: replayable, partitioned inputs.
//!
//! Partition `p` is read by subtask `p % parallelism` ([`Assignment`]); a reader reports
//! its position per partition, which checkpoints store and restores hand back. A record
//! a source cannot turn into a row (bad JSON, a missing event time) is either a job
//! error naming its offset or, when the source is told to skip such records, a
//! [`SourcePoll::Rejected`] row in [`rejected_schema`]: the runtime counts it
//! (`rejected_rows`) and sends it to the source's late-rows output.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;

use crate::error::Result;

/// Which partitions a source subtask reads: `partitions` now, and any partition the
/// source gains later for which [`Assignment::owns`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub subtask: usize,
    pub parallelism: usize,
    /// The partitions of the source at start that this subtask reads.
    pub partitions: Vec<u32>,
}

impl Assignment {
    /// The partitions of `0..partitions` that `subtask` of `parallelism` reads.
    pub fn of(subtask: usize, parallelism: usize, partitions: usize) -> Self {
        let parallelism = parallelism.max(1);
        Assignment {
            subtask,
            parallelism,
            partitions: (0..partitions as u32)
                .filter(|p| *p as usize % parallelism == subtask)
                .collect(),
        }
    }

    /// Whether partition `partition` belongs to this subtask.
    pub fn owns(&self, partition: u32) -> bool {
        partition as usize % self.parallelism == self.subtask
    }
}

/// The rows of [`SourcePoll::Rejected`]: where the record was, why it was refused, and
/// its bytes as read.
pub fn rejected_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("partition", DataType::UInt32, false),
                Field::new("offset", DataType::UInt64, false),
                Field::new("error", DataType::Utf8, false),
                Field::new("record", DataType::Binary, true),
            ]))
        })
        .clone()
}

/// A partitioned input of a dataflow. It describes the input; [`Source::open`] creates
/// the reader of one subtask.
#[async_trait]
pub trait Source: Send + Sync + Debug {
    /// Schema of every batch the source produces.
    fn schema(&self) -> SchemaRef;

    /// Number of partitions. Partition `p` is read by subtask `p % parallelism`.
    fn partitions(&self) -> usize;

    /// Opens a reader for the given partitions that resumes each partition listed in
    /// `positions` at that position (as reported by [`SourceReader::positions`], e.g. from
    /// a checkpoint); unlisted partitions start where the source is configured to start.
    /// A source that cannot seek must fail here rather than ignore `positions`: replaying
    /// from the wrong place would silently lose or duplicate data.
    async fn open_at(
        &self,
        partitions: &[u32],
        positions: &HashMap<u32, u64>,
    ) -> Result<Box<dyn SourceReader>>;

    /// Opens a reader for the given partitions at the configured start.
    async fn open(&self, partitions: &[u32]) -> Result<Box<dyn SourceReader>> {
        self.open_at(partitions, &HashMap::new()).await
    }

    /// Opens the reader of one subtask: the runtime calls this. The default reads
    /// `assignment.partitions` with [`Source::open_at`]; a source whose partitions can
    /// grow while it runs overrides it to pick up new ones the assignment owns.
    async fn open_assigned(
        &self,
        assignment: &Assignment,
        positions: &HashMap<u32, u64>,
    ) -> Result<Box<dyn SourceReader>> {
        self.open_at(&assignment.partitions, positions).await
    }
}

/// What a source reader produced.
#[derive(Debug)]
pub enum SourcePoll {
    /// Rows read from `partition`.
    Batch { partition: u32, batch: RecordBatch },
    /// Records of `partition` the source could not use and was told to skip, as rows of
    /// [`rejected_schema`].
    Rejected { partition: u32, rows: RecordBatch },
    /// Nothing is available right now; the runtime checks idleness and asks again.
    Idle,
    /// Bounded input is exhausted.
    End,
}

/// Reads the partitions assigned to one source subtask.
#[async_trait]
pub trait SourceReader: Send {
    /// The next batch, or `Idle` after waiting a short while for one, or `End`.
    async fn next(&mut self) -> Result<SourcePoll>;

    /// Position of each assigned partition: the offset of the next row to read.
    fn positions(&self) -> Vec<(u32, u64)>;

    /// Whether the reader has handed out everything `partition` holds as far as it
    /// knows. Only such a partition may go idle: one that merely waits its turn behind
    /// a backlog (a slow fetch, backpressure) must not, or the watermark would pass the
    /// rows it still holds and make them late. The default, for readers that cannot
    /// tell, says yes.
    fn caught_up(&self, partition: u32) -> bool {
        let _ = partition;
        true
    }

    /// The checkpoint that stored `positions` (as this reader reported them) is
    /// complete. Nothing depends on what a reader does with it; a Kafka reader commits
    /// the offsets to its consumer group so that lag monitors see progress.
    async fn checkpoint_done(&mut self, positions: &[(u32, u64)]) -> Result<()> {
        let _ = positions;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_spreads_partitions_round_robin_and_owns_later_ones() {
        let a = Assignment::of(1, 3, 8);
        assert_eq!(a.partitions, vec![1, 4, 7]);
        assert!(a.owns(10) && !a.owns(9) && !a.owns(11));
        let all: Vec<u32> = (0..3)
            .flat_map(|s| Assignment::of(s, 3, 8).partitions)
            .collect();
        assert_eq!(all.len(), 8);
        assert_eq!(Assignment::of(0, 0, 2).partitions, vec![0, 1]);
    }
}
