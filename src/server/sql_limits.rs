//! Bounds on what one SQL request may ask of the server, and the thread SQL is planned
//! on.
//!
//! Each bound refuses a request with a 400 naming it, before anything is created: a
//! deeply nested expression would overflow the planner's stack, a hopping window with a
//! tiny slide multiplies every row into thousands of windows, a topic with tens of
//! thousands of partitions makes an idle job spin and its manifests grow, and thousands
//! of sinks make an idle server busy. Each is a `runnel serve` flag.

use super::error::ApiError;

/// Default of [`SqlLimits::max_expr_depth`].
pub const DEFAULT_MAX_EXPR_DEPTH: usize = runnel_sql::DEFAULT_MAX_EXPR_DEPTH;
/// Default of [`SqlLimits::max_windows_per_row`].
pub const DEFAULT_MAX_WINDOWS_PER_ROW: u64 = 1_024;
/// Default of [`SqlLimits::max_partitions`].
pub const DEFAULT_MAX_PARTITIONS: u32 = 1_024;
/// Default of [`SqlLimits::max_sinks`].
pub const DEFAULT_MAX_SINKS: usize = 256;
/// Default of [`SqlLimits::max_statements`].
pub const DEFAULT_MAX_STATEMENTS: usize = 100;

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
    /// Most windows one row may fall into (a HOP's size divided by its slide); each is
    /// state and output per row.
    #[arg(long = "sql-max-windows-per-row", default_value_t = DEFAULT_MAX_WINDOWS_PER_ROW)]
    pub max_windows_per_row: u64,
    /// Most partitions of a log topic created by SQL (a source's or a sink's); every
    /// partition is polled and recorded in every checkpoint.
    #[arg(long = "sql-max-partitions", default_value_t = DEFAULT_MAX_PARTITIONS)]
    pub max_partitions: u32,
    /// Most sinks (jobs) the server runs at once.
    #[arg(long = "max-sinks", default_value_t = DEFAULT_MAX_SINKS)]
    pub max_sinks: usize,
    /// Most statements in one `POST /v1/sql` request.
    #[arg(long = "sql-max-statements", default_value_t = DEFAULT_MAX_STATEMENTS)]
    pub max_statements: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_expr_depth: DEFAULT_MAX_EXPR_DEPTH,
            max_windows_per_row: DEFAULT_MAX_WINDOWS_PER_ROW,
            max_partitions: DEFAULT_MAX_PARTITIONS,
            max_sinks: DEFAULT_MAX_SINKS,
            max_statements: DEFAULT_MAX_STATEMENTS,
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
