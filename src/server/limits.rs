//! Limits that keep one client from crashing, stalling or starving the server.
//!
//! Every open connection holds a file descriptor, and so do the jobs' own files and
//! object-store connections: a client that opens thousands of connections and sends half
//! a request on each must not leave the jobs without descriptors. So connections beyond
//! [`ServerLimits::max_connections`] wait in the kernel's accept queue, a request head
//! must arrive within [`ServerLimits::header_read_timeout`], and a body within
//! [`ServerLimits::body_read_timeout`]. A body announced larger than the body limit is
//! refused from its `Content-Length` alone, before a byte of it is read.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::error::ApiError;

/// The server's resource limits, each with a `runnel serve` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections served at once (`--max-connections`); more wait to be accepted.
    pub max_connections: usize,
    /// Time a client has to send a request's head (`--header-read-timeout`).
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's whole body (`--body-read-timeout`).
    pub body_read_timeout: Duration,
}

/// Default of [`ServerLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default of [`ServerLimits::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`ServerLimits::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

/// What the body middleware needs: the size limit and the body deadline.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub read_timeout: Duration,
}

/// Middleware: a 413 for a `Content-Length` above the limit before anything is read;
/// otherwise the body fails once `read_timeout` has passed without all of it.
pub async fn limit_body(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limits.max_bytes as u64) {
        return too_large(limits.max_bytes).into_response();
    }
    let deadline = tokio::time::Instant::now() + limits.read_timeout;
    let request = request.map(|body| with_deadline(body, deadline));
    next.run(request).await
}

/// The 413 reply naming the limit.
pub fn too_large(max_bytes: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is larger than the limit of {max_bytes} bytes"),
    )
}

/// `body`, failing with a timeout error once `deadline` passes before its end.
fn with_deadline(body: Body, deadline: tokio::time::Instant) -> Body {
    let stream = body.into_data_stream();
    let timed = futures::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(item)) => Some((item, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((Err(axum::Error::new(BodyTimeout)), None)),
        }
    });
    Body::from_stream(timed)
}

/// The body did not arrive in time.
#[derive(Debug)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the body did not arrive within the body read timeout")
    }
}

impl std::error::Error for BodyTimeout {}

/// Whether `error` (or an error it wraps) is a [`BodyTimeout`].
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<BodyTimeout>() {
            return true;
        }
        next = e.source();
    }
    false
}
