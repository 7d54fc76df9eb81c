//! Sinks: where a dataflow's results leave it, committed in two phases.
//!
//! Phase 1 ([`SinkWriter::pre_commit`]) runs in every sink subtask when the barrier of an
//! epoch reaches it: what was written since the previous barrier becomes durable but not
//! visible. A sink can stage the rows itself (files of a table format) and describe them
//! in a JSON value, or hand the rows back as Arrow batches: the runtime then writes them
//! with the checkpoint, under its never-overwritten paths, and gives them back to
//! `commit`, so a sink needs no staging area of its own. Phase 2
//! ([`Sink::commit`]) runs once the checkpoint of that epoch is complete, and again after a
//! restart for the epoch the job resumes from, so it must be idempotent. A sink that only
//! delivers at least once (an in-process channel, say) keeps both defaults.

use std::fmt::Debug;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;

use crate::error::Result;
use crate::message::{Epoch, Millis};

/// What a sink writer staged for an epoch in phase 1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreCommit {
    /// The sink's own description (paths of staged files, sequence numbers, ...).
    pub meta: serde_json::Value,
    /// Rows the runtime keeps with the checkpoint until `commit`.
    pub batches: Vec<RecordBatch>,
}

/// What one sink subtask staged for an epoch, handed to [`Sink::commit`].
#[derive(Debug, Clone, PartialEq)]
pub struct Staged {
    pub subtask: usize,
    pub pre_commit: PreCommit,
}

/// A sink of a dataflow; [`Sink::open`] creates the writer of one subtask.
#[async_trait]
pub trait Sink: Send + Sync + Debug {
    /// Opens the writer of `subtask` out of `parallelism`.
    async fn open(&self, subtask: usize, parallelism: usize) -> Result<Box<dyn SinkWriter>>;

    /// Phase 2: makes visible what the writers staged for `epoch`. Called only after the
    /// checkpoint of `epoch` is durable; may be called again for the same epoch after a
    /// restart, and must then have no further effect.
    ///
    /// `generation` is the writer generation of the job instance that commits: each start
    /// of a job claims a higher one on its checkpoint chain (0 for a job that does not
    /// checkpoint). A sink that records who committed (a table's snapshot summary) can
    /// refuse an older instance with it; others ignore it.
    async fn commit(&self, epoch: Epoch, generation: u64, staged: Vec<Staged>) -> Result<()> {
        let _ = (epoch, generation, staged);
        Ok(())
    }
}

/// Writes the rows reaching one sink subtask.
#[async_trait]
pub trait SinkWriter: Send {
    /// Writes rows. A two-phase sink stages them; others deliver them.
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;

    /// The watermark of the sink's input advanced.
    async fn on_watermark(&mut self, watermark: Millis) -> Result<()> {
        let _ = watermark;
        Ok(())
    }

    /// Phase 1: the barrier of `epoch` arrived. Makes what was written since the previous
    /// barrier durable, without making it visible, and describes it for [`Sink::commit`].
    async fn pre_commit(&mut self, epoch: Epoch) -> Result<PreCommit> {
        let _ = epoch;
        Ok(PreCommit::default())
    }

    /// The input ended; flush anything buffered.
    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
