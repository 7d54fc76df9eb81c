//! `GET /v1/jobs/{id}/results?from=earliest|latest`: a job's committed results as a
//! live Arrow IPC stream.
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

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use runnel_connectors::log::Topic;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::AppState;
use super::error::ApiError;
use crate::jobs::{JobManager, JobState};

pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// How long a caught-up stream waits before looking for new results.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Rows read from a partition at once.
const MAX_READ_ROWS: usize = 64 * 1024;
/// IPC messages buffered between the reader and a slow client.
const CHUNKS_BUFFERED: usize = 4;

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
}

impl From {
    fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        match text.unwrap_or("earliest") {
            "earliest" => Ok(From::Earliest),
            "latest" => Ok(From::Latest),
            other if other.starts_with("epoch:") => Err(ApiError::bad_request(
                "from=epoch:N is not supported yet; use earliest or latest",
            )),
            other => Err(ApiError::bad_request(format!(
                "from={other:?}: expected earliest or latest"
            ))),
        }
    }
}

async fn results(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ResultsQuery>,
) -> Result<Response, ApiError> {
    let from = From::parse(query.from.as_deref())?;
    let status = state
        .jobs
        .status(&id)
        .ok_or_else(|| ApiError::not_found(format!("no job named {id:?}")))?;
    let topic = state
        .log
        .topic(status.definition.output_topic())
        .await
        .map_err(|e| ApiError::conflict(format!("job {id} has no results yet: {e}")))?;
    let mut offsets = HashMap::new();
    for partition in 0..topic.partitions() {
        let start = match from {
            From::Earliest => 0,
            From::Latest => topic
                .end_offset(partition)
                .await
                .map_err(ApiError::internal)?,
        };
        offsets.insert(partition, start);
    }
    let (tx, rx) = mpsc::channel::<Bytes>(CHUNKS_BUFFERED);
    tokio::spawn(stream_topic(topic, offsets, state.jobs.clone(), id, tx));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, ARROW_STREAM)],
        Body::from_stream(body),
    )
        .into_response())
}

/// Writes IPC messages into `tx` until the job is done and drained or the client left.
async fn stream_topic(
    topic: Topic,
    mut offsets: HashMap<u32, u64>,
    jobs: JobManager,
    job: String,
    tx: mpsc::Sender<Bytes>,
) {
    let schema = topic.schema();
    let Ok(mut writer) = StreamWriter::try_new(Vec::new(), &schema) else {
        return;
    };
    if !send(&mut writer, &tx).await {
        return;
    }
    loop {
        // Whether the job had ended before this pass: then a caught-up pass is the last.
        let ended = jobs.status(&job).is_none_or(|s| {
            !matches!(
                s.state,
                JobState::Starting | JobState::Running | JobState::Restarting
            )
        });
        let mut caught_up = true;
        for partition in 0..topic.partitions() {
            let from = offsets[&partition];
            let read = match topic.read(partition, from, MAX_READ_ROWS).await {
                Ok(read) => read,
                Err(e) => {
                    tracing::warn!(job = %job, "results stream stopped: {e}");
                    return;
                }
            };
            if read.next_offset > from {
                caught_up = false;
            }
            offsets.insert(partition, read.next_offset);
            for batch in read.batches {
                if !write(&mut writer, &batch, &tx).await {
                    return;
                }
            }
        }
        if caught_up && ended {
            if writer.finish().is_ok() {
                send(&mut writer, &tx).await;
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

async fn write(
    writer: &mut StreamWriter<Vec<u8>>,
    batch: &RecordBatch,
    tx: &mpsc::Sender<Bytes>,
) -> bool {
    if batch.num_rows() == 0 {
        return true;
    }
    match writer.write(batch) {
        Ok(()) => send(writer, tx).await,
        Err(e) => {
            tracing::warn!("results stream: cannot encode a batch: {e}");
            false
        }
    }
}

/// Sends what the writer has buffered as one chunk; false once the client is gone.
async fn send(writer: &mut StreamWriter<Vec<u8>>, tx: &mpsc::Sender<Bytes>) -> bool {
    let chunk = std::mem::take(writer.get_mut());
    chunk.is_empty() || tx.send(Bytes::from(chunk)).await.is_ok()
}
