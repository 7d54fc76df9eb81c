//! Bounds on what one SQL request may ask of the server, and the thread SQL is planned
//! on.
//!
//! A bound refuses a request with a 400 naming it, before anything is created: a deeply
//! nested expression would overflow the planner's stack. It is a `runnel serve` flag.

use super::error::ApiError;

/// Default of [`SqlLimits::max_expr_depth`].
pub const DEFAULT_MAX_EXPR_DEPTH: usize = runnel_sql::DEFAULT_MAX_EXPR_DEPTH;

/// Stack of the threads SQL is parsed and planned on. Depth is checked before planning,
/// but the parser builds (and then drops) a left-deep chain as long as the text allows
/// before it can be measured; this stack holds the longest chain a body within the
/// SQL size limit can spell. Only the pages touched are ever committed.
const PLANNER_STACK_BYTES: usize = 512 * 1024 * 1024;

/// Stack of the server's worker threads: DataFusion plans a `/v1/query` body (of at most
/// [`SqlLimits::max_expr_depth`] levels) on them.
pub const WORKER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Bounds on SQL requests (`POST /v1/sql`, `POST /v1/query`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct SqlLimits {
    /// Deepest nesting of SQL expressions (`a + b + c` is two levels); deeper ones would
    /// exhaust the planner's stack.
    #[arg(long = "sql-max-expr-depth", default_value_t = DEFAULT_MAX_EXPR_DEPTH)]
    pub max_expr_depth: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_expr_depth: DEFAULT_MAX_EXPR_DEPTH,
        }
    }
}

impl SqlLimits {
    /// The SQL crate's share of the limits.
    pub fn sql(&self) -> runnel_sql::Limits {
        runnel_sql::Limits {
            max_expr_depth: self.max_expr_depth,
        }
    }

    /// Refuses a `/v1/query` body nesting deeper than [`Self::max_expr_depth`]; run first
    /// in the handler, so DataFusion only ever plans trees of a bounded depth.
    pub async fn check_query(&self, sql: &str) -> Result<(), ApiError> {
        let (sql, limits) = (sql.to_string(), self.sql());
        on_planner_stack(move || runnel_sql::check_query_depth(&sql, limits))
            .await?
            .map_err(|e| ApiError::bad_request(e.message))
    }
}

/// Runs `f` on a thread of its own with a stack of [`PLANNER_STACK_BYTES`], so that SQL
/// parsing and planning never run out of stack; a panic in it is an internal error.
pub async fn on_planner_stack<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("sql-planner".into())
        .stack_size(PLANNER_STACK_BYTES)
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(outcome);
        })
        .map_err(ApiError::internal)?;
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        _ => Err(ApiError::internal("the SQL planner failed")),
    }
}
