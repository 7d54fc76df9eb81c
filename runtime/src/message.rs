//! What travels along an edge of the dataflow.
//!
//! Control messages (watermarks, barriers, idleness, end) travel in the same channel as
//! data so that their order relative to the data is the order the receiver sees; alignment
//! is then a local decision of each receiving subtask and needs no side channel.

use arrow::record_batch::RecordBatch;

/// Event time and watermarks: milliseconds since the Unix epoch.
pub type Millis = i64;

/// Checkpoint epoch number.
pub type Epoch = u64;

/// The watermark that says "no more events will ever arrive" (end of bounded input).
pub const WATERMARK_END: Millis = Millis::MAX;

/// The watermark of a channel that has not announced any progress yet.
pub const WATERMARK_START: Millis = Millis::MIN;

/// One message on a dataflow edge.
#[derive(Debug, Clone)]
pub enum Message {
    /// Rows.
    Batch(RecordBatch),
    /// No row with event time below this value will follow on this channel.
    Watermark(Millis),
    /// The sender has no data for now; until it sends a batch or a watermark again it must
    /// not hold back the receiver's watermark (Flink's `WatermarkStatus.IDLE`).
    Idle,
    /// Checkpoint barrier: everything before it belongs to `epoch` or earlier.
    Barrier(Epoch),
    /// The sender will send nothing more.
    End,
}
