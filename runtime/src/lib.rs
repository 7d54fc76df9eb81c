//! runnel-runtime: the dataflow runtime.
//!
//! It owns the graph, the subtasks that run on tokio, the bounded channels between them,
//! the messages they carry, event time and watermarks, and key groups. It knows no
//! concrete operator, source or sink: those implement [`Operator`], [`Source`] and
//! [`Sink`] in other crates.

// Tests may read the machine's clock; the library takes it injected (clippy.toml).
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_types))]
// Library code returns errors; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

pub mod checkpoint;
pub mod clock;
pub mod dataflow;
pub mod error;
pub mod exec;
pub mod graph;
pub mod keys;
pub mod message;
pub mod metrics;
pub mod operator;
pub mod sink;
pub mod source;
pub mod storage;
pub mod time;
pub mod watermark;

#[allow(clippy::disallowed_types)] // exported for the binary and tests
pub use clock::{Ambient, Clock, ManualClock, SeededRng, SystemClock};
pub use dataflow::{Dataflow, Stream};
pub use error::{Error, Fault, Result};
pub use exec::{
    CheckpointConfig, JobConfig, JobHandle, JobStopper, RestartPolicy, run_with_restarts, spawn,
};
pub use graph::{JobGraph, Partitioning, Port};
pub use message::{Epoch, Message, Millis, WATERMARK_END, WATERMARK_START};
pub use metrics::{
    CHECKPOINT_HISTORY, CheckpointMetrics, CheckpointOutcome, CheckpointRecord, JobMetrics,
    NodeMetrics, SubtaskMetrics,
};
pub use operator::{Operator, OperatorContext, OperatorFactory, Output};
pub use sink::{PreCommit, Sink, SinkWriter, Staged};
pub use source::{Assignment, Source, SourcePoll, SourceReader, rejected_schema};
pub use watermark::{PartitionWatermarks, WatermarkStatus, WatermarkStrategy};
