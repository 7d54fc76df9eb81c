//! `GET /v1/jobs/{id}/results?from=earliest|latest|epoch:N`: a job's committed results
//! as a live Arrow IPC stream (or JSON lines: [`super::results_format`]).
//!
//! A job's sink appends to its output topic only in phase 2 of a checkpoint, after the
//! checkpoint's manifest is durable, so the topic holds committed results and nothing
//! else, each row once. Streaming the topic from an offset therefore serves committed
//! results exactly once, across job and server restarts too: `from=earliest` replays
//! everything, `from=latest` starts at the end as of the request. The stream is
//! `application/vnd.apache.arrow.stream`, chunked, one IPC message per chunk: the
//! schema first, then a record batch per chunk as results commit. It ends (with the
//! IPC end-of-stream marker) once the job has finished and everything it committed has
//! been sent; for a running job it goes on until the client goes away.
//!
//! Every batch carries two more columns after the job's own: `_epoch` (Int64, not null),
//! the checkpoint epoch that committed its rows (each log segment records it; 0 for rows
//! appended before segments did), and `_snapshot_id` (Int64, nullable), the Iceberg
//! snapshot that committed the same epoch to the job's table, null for a job without a
//! table ([`SnapshotLookup`] says how it is found). `from=epoch:N` starts at the first
//! result committed by epoch `N` or later and serves nothing older, so a client that
//! last saw epoch `N - 1` resumes with `from=epoch:N`, exactly once.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use runnel_connectors::log::{ReadResult, Topic};
use runnel_runtime::Epoch;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::AppState;
use super::error::ApiError;
use super::results_format::{Encoder, accepted, content_type};
use super::results_limits::slices;
use crate::jobs::{JobManager, JobState, SnapshotLookup};

/// How long a caught-up stream waits before looking for new results.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Rows read from a partition at once.
const MAX_READ_ROWS: usize = 8 * 1024;
/// IPC messages buffered between the reader and a slow client (each at most
/// [`ResultLimits::chunk_bytes`](super::results_limits::ResultLimits) or one row).
const CHUNKS_BUFFERED: usize = 2;
/// The column holding the epoch that committed a row.
pub const EPOCH_COLUMN: &str = "_epoch";
/// The column holding the Iceberg snapshot that committed a row's epoch to the table.
pub const SNAPSHOT_COLUMN: &str = "_snapshot_id";

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/jobs/{id}/results", get(results))
}

#[derive(Debug, Deserialize)]
struct ResultsQuery {
    from: Option<String>,
}

/// Where a results stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum From {
    Earliest,
    Latest,
    /// The first result committed by this epoch or a later one.
    Epoch(Epoch),
}

impl From {
    fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        match text.unwrap_or("earliest") {
            "earliest" => Ok(From::Earliest),
            "latest" => Ok(From::Latest),
            other => match other.strip_prefix("epoch:") {
                Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n
                    .parse()
                    .map(From::Epoch)
                    .map_err(|_| ApiError::bad_request(format!("from={other:?}: epoch too large"))),
                Some(_) => Err(ApiError::bad_request(format!(
                    "from={other:?}: expected epoch:N with N a non-negative integer"
                ))),
                None => Err(ApiError::bad_request(format!(
                    "from={other:?}: expected earliest, latest or epoch:N"
                ))),
            },
        }
    }

    /// Rows committed by an older epoch are not served.
    fn min_epoch(self) -> Option<Epoch> {
        match self {
            From::Epoch(epoch) => Some(epoch),
            From::Earliest | From::Latest => None,
        }
    }
}

/// The topic's schema with the two tag columns after the job's own.
fn tagged_schema(topic: &Schema) -> Result<SchemaRef, String> {
    for name in [EPOCH_COLUMN, SNAPSHOT_COLUMN] {
        if topic.field_with_name(name).is_ok() {
            return Err(format!(
                "the job's results have a column named {name}, which the stream adds"
            ));
        }
    }
    let mut fields: Vec<Arc<Field>> = topic.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(EPOCH_COLUMN, DataType::Int64, false)));
    fields.push(Arc::new(Field::new(SNAPSHOT_COLUMN, DataType::Int64, true)));
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        topic.metadata().clone(),
    )))
}

/// `batch` with its epoch and snapshot id on every row, in `schema` ([`tagged_schema`]).
fn tag(
    schema: &SchemaRef,
    batch: &RecordBatch,
    epoch: Epoch,
    snapshot: Option<i64>,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let rows = batch.num_rows();
    let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from_value(epoch, rows)));
    columns.push(Arc::new(Int64Array::from(vec![snapshot; rows])));
    RecordBatch::try_new(schema.clone(), columns)
}

async fn results(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ResultsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let from = From::parse(query.from.as_deref())?;
    let format = accepted(&headers);
    let slot = state.result_streams.take()?;
    let status = state
        .jobs
        .status(&id)
        .ok_or_else(|| ApiError::not_found(format!("no job named {id:?}")))?;
    let topic = state
        .log
        .topic(status.definition.output_topic())
        .await
        .map_err(|e| ApiError::conflict(format!("job {id} has no results yet: {e}")))?;
    let schema = tagged_schema(&topic.schema()).map_err(ApiError::conflict)?;
    let encoder = Encoder::new(format, &schema)?;
    let snapshots = match status.definition.table_sink() {
        Some((table, sink_id)) => {
            let catalog = state.data.iceberg().await?;
            Some(SnapshotLookup::new(catalog, &table, &sink_id))
        }
        None => None,
    };
    let mut offsets = HashMap::new();
    for partition in 0..topic.partitions() {
        let start = match from {
            From::Earliest => Ok(0),
            From::Latest => topic.end_offset(partition).await,
            From::Epoch(epoch) => topic.first_offset_from_epoch(partition, epoch).await,
        };
        offsets.insert(partition, start?);
    }
    let (tx, rx) = mpsc::channel::<Bytes>(CHUNKS_BUFFERED);
    let stream = ResultStream {
        topic,
        schema,
        encoder,
        min_epoch: from.min_epoch(),
        snapshots,
        jobs: state.jobs.clone(),
        job: id,
        chunk_bytes: state.options.results.chunk_bytes,
        _slot: slot,
    };
    state
        .result_streams
        .runtime
        .handle()
        .spawn(stream.run(offsets, tx));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type(format))],
        Body::from_stream(body),
    )
        .into_response())
}

/// One client's stream of a job's results.
struct ResultStream {
    topic: Topic,
    /// The topic's schema and the tag columns.
    schema: SchemaRef,
    encoder: Encoder,
    /// Rows committed by an older epoch are skipped.
    min_epoch: Option<Epoch>,
    /// For a job with a table: where the snapshot id of each epoch comes from.
    snapshots: Option<SnapshotLookup>,
    jobs: JobManager,
    job: String,
    /// Batches bigger than this are sent in slices.
    chunk_bytes: usize,
    /// This stream's place among the open ones, given back when it ends.
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl ResultStream {
    /// Writes IPC messages into `tx` until the job is done and drained or the client
    /// left.
    async fn run(mut self, mut offsets: HashMap<u32, u64>, tx: mpsc::Sender<Bytes>) {
        if !send(self.encoder.start(), &tx).await {
            return;
        }
        loop {
            // Whether the job had ended before this pass: then a caught-up pass is the
            // last.
            let ended = self.jobs.status(&self.job).is_none_or(|s| {
                !matches!(
                    s.state,
                    JobState::Starting | JobState::Running | JobState::Restarting
                )
            });
            let mut caught_up = true;
            for partition in 0..self.topic.partitions() {
                let from = offsets[&partition];
                let read = match self.topic.read(partition, from, MAX_READ_ROWS).await {
                    Ok(read) => read,
                    Err(e) => {
                        tracing::warn!(job = %self.job, "results stream stopped: {e}");
                        return;
                    }
                };
                if read.next_offset > from {
                    caught_up = false;
                }
                offsets.insert(partition, read.next_offset);
                // Encoded before any is sent, so that a client that does not read
                // holds these compact chunks, not the segments the rows were read from.
                let Some(chunks) = self.encode(read).await else {
                    return;
                };
                for chunk in chunks {
                    if !send(chunk, &tx).await {
                        return;
                    }
                }
            }
            if caught_up && ended {
                if let Ok(end) = self.encoder.finish() {
                    send(end, &tx).await;
                }
                return;
            }
            if caught_up {
                tokio::select! {
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    _ = tx.closed() => return,
                }
            }
        }
    }

    /// The IPC chunks of a read's rows (each at most about `chunk_bytes` or one row);
    /// `None` (and a log line) if a batch could not be tagged or encoded.
    async fn encode(&mut self, read: ReadResult) -> Option<Vec<Vec<u8>>> {
        let mut chunks = Vec::new();
        for (batch, epoch) in read.batches.iter().zip(read.epochs) {
            // Rows appended before segments recorded epochs count as epoch 0.
            let epoch = epoch.unwrap_or(0);
            if self.min_epoch.is_some_and(|min| epoch < min) || batch.num_rows() == 0 {
                continue;
            }
            let tagged = self.tag(batch, epoch).await?;
            for slice in slices(&tagged, self.chunk_bytes) {
                match self.encoder.batch(&slice) {
                    Ok(chunk) => chunks.push(chunk),
                    Err(e) => {
                        tracing::warn!(job = %self.job, "results stream: cannot encode a batch: {e}");
                        return None;
                    }
                }
            }
        }
        Some(chunks)
    }

    /// `batch` with its tag columns; `None` (and a log line) if that failed.
    async fn tag(&mut self, batch: &RecordBatch, epoch: Epoch) -> Option<RecordBatch> {
        let snapshot = match &mut self.snapshots {
            Some(lookup) if epoch > 0 => match lookup.snapshot_of(epoch).await {
                Ok(snapshot) => snapshot,
                Err(e) => {
                    tracing::warn!(job = %self.job, epoch, "results stream stopped: {e}");
                    return None;
                }
            },
            _ => None,
        };
        match tag(&self.schema, batch, epoch, snapshot) {
            Ok(tagged) => Some(tagged),
            Err(e) => {
                tracing::warn!(job = %self.job, "results stream: cannot tag a batch: {e}");
                None
            }
        }
    }
}

/// Sends `chunk` (if it has anything); false once the client is gone.
async fn send(chunk: Vec<u8>, tx: &mpsc::Sender<Bytes>) -> bool {
    chunk.is_empty() || tx.send(Bytes::from(chunk)).await.is_ok()
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, StringArray};
    use arrow::datatypes::Int64Type;

    use super::*;

    #[test]
    fn from_parses_earliest_latest_and_epochs() {
        assert_eq!(From::parse(None).unwrap(), From::Earliest);
        assert_eq!(From::parse(Some("latest")).unwrap(), From::Latest);
        assert_eq!(From::parse(Some("epoch:0")).unwrap(), From::Epoch(0));
        assert_eq!(From::parse(Some("epoch:42")).unwrap(), From::Epoch(42));
        assert_eq!(From::parse(Some("epoch:7")).unwrap().min_epoch(), Some(7));
        assert_eq!(From::Earliest.min_epoch(), None);
        for bad in [
            "epoch:x",
            "epoch:-1",
            "epoch:",
            "epoch:+3",
            "epoch: 3",
            "epoch:99999999999999999999999",
            "sideways",
            "Epoch:3",
        ] {
            let error = From::parse(Some(bad)).unwrap_err();
            assert_eq!(error.status.as_u16(), 400, "{bad}");
            assert!(error.message.contains(bad), "{bad}: {}", error.message);
        }
    }

    #[test]
    fn batches_get_their_epoch_and_snapshot_after_their_own_columns() {
        let topic = Schema::new(vec![Field::new("name", DataType::Utf8, true)]);
        let schema = tagged_schema(&topic).unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["name", EPOCH_COLUMN, SNAPSHOT_COLUMN]);
        assert!(!schema.field(1).is_nullable() && schema.field(2).is_nullable());
        let batch = RecordBatch::try_new(
            Arc::new(topic.clone()),
            vec![Arc::new(StringArray::from(vec!["a", "b"]))],
        )
        .unwrap();
        let tagged = tag(&schema, &batch, 9, Some(1234)).unwrap();
        let epochs = tagged.column(1).as_primitive::<Int64Type>();
        let snapshots = tagged.column(2).as_primitive::<Int64Type>();
        assert_eq!(epochs.values().to_vec(), vec![9, 9]);
        assert_eq!(snapshots.values().to_vec(), vec![1234, 1234]);
        let untagged = tag(&schema, &batch, 0, None).unwrap();
        assert_eq!(untagged.column(2).null_count(), 2);
        // A job whose own results have a `_epoch` column cannot be tagged.
        let clash = Schema::new(vec![Field::new(EPOCH_COLUMN, DataType::Int64, true)]);
        assert!(tagged_schema(&clash).unwrap_err().contains(EPOCH_COLUMN));
    }
}
