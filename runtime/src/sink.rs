//! Sinks: where a dataflow's results leave it.

use std::fmt::Debug;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;

use crate::error::Result;
use crate::message::Millis;

/// A sink of a dataflow; [`Sink::open`] creates the writer of one subtask.
#[async_trait]
pub trait Sink: Send + Sync + Debug {
    /// Opens the writer of `subtask` out of `parallelism`.
    async fn open(&self, subtask: usize, parallelism: usize) -> Result<Box<dyn SinkWriter>>;
}

/// Writes the rows reaching one sink subtask.
#[async_trait]
pub trait SinkWriter: Send {
    /// Writes rows. Returns once the sink has accepted them (for a durable sink: once
    /// they are durable).
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;

    /// The watermark of the sink's input advanced.
    async fn on_watermark(&mut self, watermark: Millis) -> Result<()> {
        let _ = watermark;
        Ok(())
    }

    /// The input ended; flush anything buffered.
    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
