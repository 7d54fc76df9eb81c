//! Bounds of the results streams (`GET /v1/jobs/{id}/results`): how many may be open at
//! once, and how many bytes one may hold for a client that does not read. A stream
//! whose client stops reading pauses (its reader waits on a bounded channel) and holds
//! at most a few chunks of at most [`ResultLimits::chunk_bytes`] each.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use runnel_connectors::log::held_bytes;

use super::error::ApiError;
use super::side_runtime::SideRuntime;

/// The bounds of results streams; each is a `runnel serve` flag.
#[derive(Debug, Clone, clap::Args)]
pub struct ResultLimits {
    /// Results streams open at once; more are refused with 429.
    #[arg(
        long = "max-result-streams",
        id = "max-result-streams",
        default_value_t = 128
    )]
    pub streams: usize,
    /// Largest chunk a results stream sends at once (a bigger batch is sent in slices);
    /// a stream holds at most a few of them for a client that does not read.
    #[arg(long = "result-chunk-bytes", id = "result-chunk-bytes", default_value_t = 1 << 20)]
    pub chunk_bytes: usize,
    /// Threads that read, tag and encode results streams (beside the API's own).
    #[arg(
        long = "result-stream-threads",
        id = "result-stream-threads",
        default_value_t = 1
    )]
    pub threads: usize,
}

impl Default for ResultLimits {
    fn default() -> Self {
        ResultLimits {
            streams: 128,
            chunk_bytes: 1 << 20,
            threads: 1,
        }
    }
}

/// Nice value of the results stream threads: below the jobs, whose pace comes first (a
/// stream that falls behind catches up from the log), above ad-hoc queries.
const STREAM_PRIORITY: i32 = 10;

/// The places for open results streams, and the runtime their work runs on (so that
/// many busy streams never queue in front of the API's requests).
#[derive(Debug, Clone)]
pub struct StreamSlots {
    permits: Arc<Semaphore>,
    limit: usize,
    pub runtime: SideRuntime,
}

impl StreamSlots {
    pub fn new(limits: &ResultLimits) -> std::io::Result<Self> {
        Ok(StreamSlots {
            permits: Arc::new(Semaphore::new(limits.streams)),
            limit: limits.streams,
            runtime: SideRuntime::new("runnel-results", limits.threads, STREAM_PRIORITY)?,
        })
    }

    /// A place for one more stream (held until it ends), or 429 when all are taken.
    pub fn take(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "{} results streams are open, the most at once (--max-result-streams); \
                     retry later",
                    self.limit
                ),
            )
        })
    }
}

/// `batch` in row slices of about `max_bytes` each (at least one row per slice).
pub fn slices(batch: &RecordBatch, max_bytes: usize) -> Vec<RecordBatch> {
    let rows = batch.num_rows();
    let bytes = held_bytes(batch);
    if rows <= 1 || bytes <= max_bytes {
        return vec![batch.clone()];
    }
    let per_slice = (rows * max_bytes / bytes).max(1);
    (0..rows)
        .step_by(per_slice)
        .map(|start| batch.slice(start, per_slice.min(rows - start)))
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::StringArray;

    use super::*;

    #[test]
    fn big_batches_are_sliced_to_about_the_chunk_size() {
        let text = "x".repeat(1000);
        let column = StringArray::from(vec![text.as_str(); 1000]);
        let batch = RecordBatch::try_from_iter([("t", Arc::new(column) as _)]).unwrap();
        let parts = slices(&batch, 100_000);
        assert!(parts.len() >= 10, "{}", parts.len());
        assert_eq!(parts.iter().map(RecordBatch::num_rows).sum::<usize>(), 1000);
        for part in &parts {
            // Slices share the buffers; the rows each carries are what counts.
            assert!(part.num_rows() * 1000 <= 100_000, "{}", part.num_rows());
        }
        assert_eq!(slices(&batch, 10 << 20).len(), 1);
        // A slice of a big batch is sized by its own rows.
        assert_eq!(slices(&batch.slice(0, 50), 100_000).len(), 1);
    }

    #[test]
    fn streams_beyond_the_limit_get_429() {
        let slots = StreamSlots::new(&ResultLimits {
            streams: 2,
            ..ResultLimits::default()
        })
        .unwrap();
        let first = slots.take().unwrap();
        let _second = slots.take().unwrap();
        assert_eq!(
            slots.take().unwrap_err().status,
            StatusCode::TOO_MANY_REQUESTS
        );
        drop(first);
        let _again = slots.take().unwrap();
    }
}
