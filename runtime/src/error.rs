//! The runtime's error type.
//!
//! Every variant says whose fault it is (see [`Fault`]), so the job layer and the HTTP
//! layer can turn it into the right log line or status code without string matching.

use arrow::error::ArrowError;

/// Result alias used across runnel crates.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who has to act on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The user's job, SQL or data is wrong; retrying the same input fails again.
    User,
    /// Something outside runnel failed (storage, broker); a retry may succeed.
    External,
    /// A bug in runnel.
    Internal,
}

/// Errors raised while building or running a dataflow.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The dataflow description is invalid (unknown column, bad window size, ...).
    #[error("invalid dataflow: {0}")]
    Plan(String),
    /// A record does not fit the job (null event time, wrong type, ...).
    #[error("bad record: {0}")]
    Data(String),
    /// What the request names does not exist (a topic, a table, a job).
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what exists: a name taken with another definition, a
    /// producer's sequence number the log has moved past, a concurrent change that won.
    #[error("{0}")]
    Conflict(String),
    /// An Arrow kernel failed.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// A system outside runnel (object store, broker) failed.
    #[error("{context}: {source}")]
    External {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A subtask of the job failed; `source` is the cause.
    #[error("{node}[{subtask}]: {source}")]
    Subtask {
        node: String,
        subtask: usize,
        #[source]
        source: Box<Error>,
    },
    /// A newer instance of the job took over (its generation fenced this one out). Not
    /// retryable: this instance must stop and write nothing more.
    #[error("fenced: {0}")]
    Fenced(String),
    /// The job was cancelled before it finished.
    #[error("job cancelled")]
    Cancelled,
    /// An invariant of runnel itself was broken.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps an error from an external system with what runnel was doing at the time.
    pub fn external(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::External {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Whose fault this error is.
    pub fn fault(&self) -> Fault {
        match self {
            Error::Plan(_) | Error::Data(_) | Error::NotFound(_) | Error::Conflict(_) => {
                Fault::User
            }
            Error::External { .. } | Error::Fenced(_) => Fault::External,
            Error::Arrow(_) | Error::Internal(_) | Error::Cancelled => Fault::Internal,
            Error::Subtask { source, .. } => source.fault(),
        }
    }

    /// The error itself, or the cause a failed subtask reported.
    pub fn root_cause(&self) -> &Error {
        match self {
            Error::Subtask { source, .. } => source.root_cause(),
            other => other,
        }
    }

    /// Whether a newer instance of the job took over (see [`Error::Fenced`]).
    pub fn is_fenced(&self) -> bool {
        matches!(self.root_cause(), Error::Fenced(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtask_errors_keep_the_fault_of_their_cause() {
        let e = Error::Subtask {
            node: "window".into(),
            subtask: 1,
            source: Box::new(Error::Data("null event time".into())),
        };
        assert_eq!(e.fault(), Fault::User);
        assert_eq!(e.to_string(), "window[1]: bad record: null event time");
    }
}
