//! `POST /v1/topics/{topic}/records[?partition=N]`: appending JSON lines
//! (`application/x-ndjson`) or an Arrow IPC stream (`application/vnd.apache.arrow.stream`)
//! to a topic of the embedded log.
//!
//! A request is one append: its records are decoded and checked against the topic
//! schema first ([`ingest`](super::ingest)), then written as one segment, so either all
//! of them land or none does. The reply gives the offsets:
//! `{"topic", "partition", "first_offset", "next_offset", "count", "duplicate"}`.
//!
//! **Retries.** `X-Producer-Id` and `X-Producer-Seq` make a request idempotent: they are
//! the log's [`ProducerSeq`], so a retry of one of a producer's last appends to a
//! partition is answered with the original offsets and `"duplicate": true`, and nothing
//! is appended twice; a skipped sequence number is a 409.
//!
//! **Partition choice** without `?partition=`: a producer's appends go to the partition
//! picked by a fixed hash (FNV-1a) of its id, so a retry lands where the first attempt did,
//! even on another server process, and its dedup state is found; anonymous appends are
//! spread round-robin.
//!
//! Topic names come from the path, so they are validated before the log builds any
//! object path from them: a name such as `..` or `a/b` is a 400 and touches nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use runnel_connectors::log::{EmbeddedLog, ProducerSeq, Topic, validate_topic_name};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::event_times::EventTimes;
use super::ingest::{self, ARROW_STREAM, Format, NDJSON};
use super::limits;

pub const PRODUCER_ID_HEADER: &str = "x-producer-id";
pub const PRODUCER_SEQ_HEADER: &str = "x-producer-seq";
/// Longest accepted producer id.
pub const MAX_PRODUCER_ID_LEN: usize = 256;

pub fn routes() -> Router<AppState> {
    let topics = Router::new()
        .route("/{topic}/records", post(append))
        // A topic part spanning several segments (`../x`, `a/b`) is named as a bad topic
        // name rather than as an unknown endpoint.
        .fallback(unroutable_topic)
        .layer(Extension(RoundRobin::default()))
        .layer(Extension(EventTimes::default()));
    Router::new().nest("/v1/topics", topics)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendQuery {
    partition: Option<u32>,
}

/// The partition counter of anonymous appends.
#[derive(Debug, Clone, Default)]
struct RoundRobin(Arc<AtomicU32>);

impl RoundRobin {
    fn next(&self, partitions: u32) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed) % partitions
    }
}

async fn append(
    State(state): State<AppState>,
    Extension(round_robin): Extension<RoundRobin>,
    Extension(event_times): Extension<EventTimes>,
    topic: Result<Path<String>, PathRejection>,
    query: Result<Query<AppendQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = topic.map_err(|r| rejected(r.status(), r.body_text()))?;
    let Query(query) = query.map_err(|r| rejected(r.status(), r.body_text()))?;
    let format = format(&headers)?;
    let producer = producer(&headers)?;
    let topic = open_topic(&state.log, &name).await?;
    let partition = choose_partition(&topic, query.partition, producer.as_ref(), &round_robin)?;
    let body = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => limits::too_large(state.options.max_body_bytes),
        _ if limits::timed_out(&r) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the body did not arrive within {:?}",
                state.options.limits.body_read_timeout
            ),
        ),
        status => rejected(status, r.body_text()),
    })?;
    let schema = topic.schema();
    let event_time = event_times.of_topic(&state.sources, topic.name()).await?;
    let batches =
        tokio::task::spawn_blocking(move || ingest::decode(format, &schema, body, &event_time))
            .await
            .map_err(|e| {
                // The decoders catch their own panics; this is a bug, and its text stays here.
                tracing::error!("decoding a request body failed: {e}");
                ApiError::internal("the request body could not be decoded")
            })?
            .map_err(|bad| ApiError::bad_request(bad.0))?;
    let ack = topic.append(partition, &batches, producer).await?;
    Ok(Json(json!({
        "topic": topic.name(),
        "partition": ack.partition,
        "first_offset": ack.base_offset,
        "next_offset": ack.next_offset,
        "count": ack.next_offset - ack.base_offset,
        "duplicate": ack.duplicate,
    })))
}

/// Inside the nest the path has lost its `/v1/topics` prefix; it is still
/// percent-encoded, and `%` is no topic-name character either.
async fn unroutable_topic(uri: Uri) -> ApiError {
    let rest = uri.path().trim_start_matches('/');
    match rest.strip_suffix("/records").map(validate_topic_name) {
        Some(Err(e)) => e.into(),
        _ => ApiError::not_found("no such endpoint"),
    }
}

fn format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Format::from_content_type(content_type).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {content_type:?} is not accepted; use {NDJSON} or {ARROW_STREAM}"
            ),
        )
    })
}

/// The producer of a sequenced append: both headers, or neither.
fn producer(headers: &HeaderMap) -> Result<Option<ProducerSeq>, ApiError> {
    let text = |name: &str| -> Result<Option<&str>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| ApiError::bad_request(format!("header {name} is not ASCII")))
            })
            .transpose()
    };
    match (text(PRODUCER_ID_HEADER)?, text(PRODUCER_SEQ_HEADER)?) {
        (None, None) => Ok(None),
        (Some(id), Some(seq)) => {
            if id.is_empty() || id.len() > MAX_PRODUCER_ID_LEN {
                return Err(ApiError::bad_request(format!(
                    "{PRODUCER_ID_HEADER} must be 1 to {MAX_PRODUCER_ID_LEN} characters long"
                )));
            }
            let seq = seq.trim().parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "{PRODUCER_SEQ_HEADER} must be a non-negative integer, not {seq:?}"
                ))
            })?;
            Ok(Some(ProducerSeq::new(id, seq)))
        }
        _ => Err(ApiError::bad_request(format!(
            "{PRODUCER_ID_HEADER} and {PRODUCER_SEQ_HEADER} go together: send both or neither"
        ))),
    }
}

/// The topic `name`, validated before the log is asked about it.
async fn open_topic(log: &EmbeddedLog, name: &str) -> Result<Topic, ApiError> {
    validate_topic_name(name)?;
    Ok(log.topic(name).await?)
}

fn choose_partition(
    topic: &Topic,
    requested: Option<u32>,
    producer: Option<&ProducerSeq>,
    round_robin: &RoundRobin,
) -> Result<u32, ApiError> {
    let partitions = topic.partitions();
    match (requested, producer) {
        (Some(p), _) if p < partitions => Ok(p),
        (Some(p), _) => Err(ApiError::bad_request(format!(
            "topic {:?} has partitions 0 to {}; there is no partition {p}",
            topic.name(),
            partitions - 1
        ))),
        (None, Some(producer)) => {
            Ok((fnv1a(producer.producer_id.as_bytes()) % u64::from(partitions)) as u32)
        }
        (None, None) => Ok(round_robin.next(partitions)),
    }
}

/// 64-bit FNV-1a: fixed forever, unlike `std`'s hasher, so every process agrees.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// An extractor's rejection as a JSON error with the same status.
fn rejected(status: StatusCode, message: String) -> ApiError {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    ApiError::new(status, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_producer_hash_is_fixed() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn producer_headers_come_in_pairs() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, v.parse().unwrap());
            }
            map
        };
        assert_eq!(producer(&headers(&[])).unwrap(), None);
        assert_eq!(
            producer(&headers(&[("x-producer-id", "p"), ("x-producer-seq", "7")])).unwrap(),
            Some(ProducerSeq::new("p", 7))
        );
        for bad in [
            headers(&[("x-producer-id", "p")]),
            headers(&[("x-producer-seq", "1")]),
            headers(&[("x-producer-id", "p"), ("x-producer-seq", "-1")]),
            headers(&[("x-producer-id", "p"), ("x-producer-seq", "one")]),
            headers(&[("x-producer-id", ""), ("x-producer-seq", "1")]),
        ] {
            assert_eq!(producer(&bad).unwrap_err().status, StatusCode::BAD_REQUEST);
        }
    }
}
