//! The one error of the SQL layer: what is wrong with the text, and where.
//!
//! Every refusal (a syntax error, an unknown source or column, a query shape the engine
//! cannot run incrementally) is the user's to fix, so each carries the line and column
//! of the offending token. A server maps it to a 4xx reply; nothing is created when a
//! statement is refused, because this crate only returns statements and plans.

use std::fmt;

use datafusion::sql::sqlparser::tokenizer::Location;

/// A refused SQL text: `message` says why, `line` and `column` (1-based) point at the
/// offending token.
///
/// ```
/// let err = runnel_sql::parse("SHOW TABLES").unwrap_err();
/// assert_eq!((err.line, err.column), (1, 6));
/// assert!(err.to_string().starts_with("line 1, column 6: "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// Why the text is refused.
    pub message: String,
    /// Line of the offending token, from 1.
    pub line: u64,
    /// Column of the offending token, from 1.
    pub column: u64,
}

/// Results of the SQL layer.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

impl SqlError {
    /// An error at `location` (line and column from 1).
    pub fn at(location: Location, message: impl Into<String>) -> Self {
        SqlError {
            message: message.into(),
            line: location.line.max(1),
            column: location.column.max(1),
        }
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for SqlError {}
