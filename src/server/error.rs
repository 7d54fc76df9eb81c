//! Errors of the HTTP API: a status and `{"error": {"code": ..., "message": ...}}`.
//!
//! Errors of the engine carry their kind ([`runnel_runtime::Error`] and its
//! [`Fault`]), and [`ApiError::from`] turns the kind into the status once, here:
//!
//! | error | status | code |
//! |---|---|---|
//! | `NotFound` | 404 | `not_found` |
//! | `Conflict`, `Fenced` | 409 | `conflict` |
//! | `Plan`, `Data` (the user's request or records) | 400 | `bad_request` |
//! | `External` (storage, broker) | 503 | `unavailable` |
//! | `Internal`, `Arrow`, `Cancelled` | 500 | `internal` |
//!
//! An `anyhow` error is mapped by the engine error inside it, with its context as the
//! message; SQL errors are 400 `sql_error` naming the line and column, in the message
//! and as `line` and `column` fields (so a client can point at them). Handlers add a
//! status by hand only where the request itself decides it (a body too large, a
//! content type not accepted).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use runnel_runtime::{Error, Fault};
use runnel_sql::SqlError;
use serde_json::json;

/// An error reply.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable: clients branch on it.
    pub code: &'static str,
    pub message: String,
    /// Where in the request's text the error is: line and column, from 1.
    pub position: Option<(u64, u64)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            position: None,
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        )
    }

    /// The same error, its message prefixed with what was being done.
    pub fn context(mut self, what: impl std::fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    fn unavailable(message: String) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// The reply for engine error `kind`, with `message` (which may carry more context
    /// than the error itself).
    fn of_kind(kind: &Error, message: String) -> Self {
        match kind {
            Error::NotFound(_) => ApiError::not_found(message),
            Error::Conflict(_) | Error::Fenced(_) => ApiError::conflict(message),
            _ => match kind.fault() {
                Fault::User => ApiError::bad_request(message),
                Fault::External => {
                    tracing::warn!("request failed on an outside system: {message}");
                    ApiError::unavailable(message)
                }
                Fault::Internal => {
                    tracing::error!("request failed: {message}");
                    ApiError::internal(message)
                }
            },
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let kind = error.root_cause();
        let message = match kind {
            // The user's own words, without the kind's prefix.
            Error::Plan(m) | Error::Data(m) | Error::NotFound(m) | Error::Conflict(m) => m.clone(),
            _ => error.to_string(),
        };
        ApiError::of_kind(kind, message)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        let message = format!("{error:#}");
        match error.downcast_ref::<Error>() {
            Some(engine) => ApiError::of_kind(engine.root_cause(), message),
            None => ApiError::of_kind(&Error::Internal(String::new()), message),
        }
    }
}

impl From<arrow::error::ArrowError> for ApiError {
    /// Arrow errors that reach a handler come from encoding what runnel holds: a bug.
    fn from(error: arrow::error::ArrowError) -> Self {
        ApiError::from(Error::Arrow(error))
    }
}

impl From<runnel_connectors::registry::OptionError> for ApiError {
    fn from(e: runnel_connectors::registry::OptionError) -> Self {
        ApiError::bad_request(e.message)
    }
}

impl From<SqlError> for ApiError {
    fn from(error: SqlError) -> Self {
        ApiError {
            position: Some((error.line, error.column)),
            ..ApiError::new(StatusCode::BAD_REQUEST, "sql_error", error.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some((line, column)) = self.position {
            error["line"] = json!(line);
            error["column"] = json!(column);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_error_kind() {
        let cases = [
            (Error::NotFound("topic t".into()), StatusCode::NOT_FOUND),
            (Error::Conflict("taken".into()), StatusCode::CONFLICT),
            (Error::Fenced("newer".into()), StatusCode::CONFLICT),
            (Error::Plan("bad plan".into()), StatusCode::BAD_REQUEST),
            (Error::Data("bad row".into()), StatusCode::BAD_REQUEST),
            (
                Error::external("storage", std::io::Error::other("down")),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                Error::Internal("bug".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(ApiError::from(error).status, status);
        }
        let subtask = Error::Subtask {
            node: "window".into(),
            subtask: 1,
            source: Box::new(Error::Data("null event time".into())),
        };
        let reply = ApiError::from(subtask);
        assert_eq!(
            (reply.status, reply.message.as_str()),
            (StatusCode::BAD_REQUEST, "null event time")
        );
    }

    #[test]
    fn anyhow_errors_keep_their_context_and_the_kind_inside() {
        let error = anyhow::Error::new(Error::NotFound("topic t does not exist".into()))
            .context("job j: input topic");
        let reply = ApiError::from(error);
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.message, "job j: input topic: topic t does not exist");
        let plain = ApiError::from(anyhow::anyhow!("no engine error here"));
        assert_eq!(plain.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
