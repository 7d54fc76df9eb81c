//! Sources: replayable, partitioned inputs.

use std::collections::HashMap;
use std::fmt::Debug;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;

use crate::error::Result;

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
}

/// What a source reader produced.
#[derive(Debug)]
pub enum SourcePoll {
    /// Rows read from `partition`.
    Batch { partition: u32, batch: RecordBatch },
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
}
