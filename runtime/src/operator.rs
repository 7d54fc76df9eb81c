//! The operator API: plain synchronous Rust driven by the runtime.
//!
//! An operator implements one required method, [`Operator::on_batch`]; watermarks, end of
//! input and state snapshots have defaults. The runtime owns the loop around it
//! (receiving, watermark alignment, barrier alignment, routing the output), so an
//! operator never sees a channel and never blocks.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::message::{Epoch, Millis};

/// Where an operator puts its results during one call.
///
/// Rows emitted during a call are sent downstream when the call returns, before any
/// watermark that the call was handling, so a downstream operator always sees a window's
/// rows before the watermark that closed it.
#[derive(Debug, Default)]
pub struct Output {
    pub(crate) main: Vec<RecordBatch>,
    pub(crate) late: Vec<RecordBatch>,
}

impl Output {
    /// Emits rows on the operator's main output.
    pub fn emit(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.main.push(batch);
        }
    }

    /// Hands over input rows that arrived behind the watermark and could not be used.
    /// The runtime counts them in the `late_rows` metric and sends them to the operator's
    /// late-rows output if the dataflow connected one, so none vanish unaccounted.
    pub fn emit_late(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.late.push(batch);
        }
    }

    /// Takes what has been emitted so far (used by operators that wrap operators).
    pub fn take(&mut self) -> (Vec<RecordBatch>, Vec<RecordBatch>) {
        (
            std::mem::take(&mut self.main),
            std::mem::take(&mut self.late),
        )
    }
}

/// A dataflow operator subtask.
///
/// A trivial operator is a few lines:
/// ```
/// use arrow::record_batch::RecordBatch;
/// use runnel_runtime::{Operator, Output, Result};
///
/// struct PassThrough;
/// impl Operator for PassThrough {
///     fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
///         out.emit(batch);
///         Ok(())
///     }
/// }
/// ```
pub trait Operator: Send {
    /// Processes rows that arrived on input number `input` (0 for single-input operators).
    fn on_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()>;

    /// The combined watermark of all inputs advanced to `watermark`: no row with an earlier
    /// event time will follow. Windows ending at or before it can fire. The runtime
    /// forwards the watermark downstream after this returns.
    fn on_watermark(&mut self, watermark: Millis, out: &mut Output) -> Result<()> {
        let _ = (watermark, out);
        Ok(())
    }

    /// Every input has ended. For bounded input the final watermark
    /// ([`crate::WATERMARK_END`]) has already been delivered.
    fn on_end(&mut self, out: &mut Output) -> Result<()> {
        let _ = out;
        Ok(())
    }

    /// Every input delivered the barrier of `epoch`: returns the operator's state as Arrow
    /// batches, to be written with the checkpoint. Stateless operators keep the default.
    fn snapshot(&mut self, epoch: Epoch) -> Result<Vec<RecordBatch>> {
        let _ = epoch;
        Ok(Vec::new())
    }

    /// Restores state written by [`Operator::snapshot`] (possibly by subtasks of another
    /// parallelism: the batches hold the key groups this subtask owns now).
    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<()> {
        if state.iter().any(|b| b.num_rows() > 0) {
            return Err(crate::Error::Internal(
                "state handed to an operator that keeps none".into(),
            ));
        }
        Ok(())
    }
}

/// What an operator subtask is told when it is created.
#[derive(Debug, Clone)]
pub struct OperatorContext {
    /// Name of the node in the dataflow.
    pub node: String,
    /// Index of this subtask.
    pub subtask: usize,
    /// Number of subtasks of the node.
    pub parallelism: usize,
    /// Number of key groups of the job.
    pub max_key_groups: u32,
    /// Schema of each input, in input order.
    pub input_schemas: Vec<SchemaRef>,
}

/// Creates one operator per subtask.
pub type OperatorFactory = Arc<dyn Fn(&OperatorContext) -> Result<Box<dyn Operator>> + Send + Sync>;
