//! Where ad-hoc queries (`POST /v1/query`) run: on a runtime of their own whose threads
//! run at the lowest CPU priority, a few at a time, each with a time limit, a memory
//! pool and a result-size limit. A runaway query then costs its own budget and
//! nothing else: the API's and the jobs' threads keep their cores, `/healthz` keeps
//! answering, and the query is cancelled when it runs out of time or its client
//! leaves (dropping the request drops the task).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::cancellable_plan::Cancel;
use super::error::ApiError;
use super::side_runtime::SideRuntime;

/// Nice value of the query threads: they get only the CPU the jobs and the API leave.
const LOWEST_PRIORITY: i32 = 19;

/// The bounds of ad-hoc queries; each is a `runnel serve` flag.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryLimits {
    /// Longest an ad-hoc query (`POST /v1/query`) may run before it is cancelled.
    #[arg(long = "query-timeout", id = "query-timeout", default_value = "30s", value_parser = crate::parse_duration)]
    pub timeout: Duration,
    /// Memory an ad-hoc query may hold: the tables it reads plus its operators' state
    /// (sorts, joins, aggregates); beyond it the query fails with a 400.
    #[arg(long = "query-max-memory-bytes", id = "query-max-memory-bytes", default_value_t = 512 << 20)]
    pub memory_bytes: usize,
    /// Largest ad-hoc query result, as Arrow IPC bytes.
    #[arg(long = "query-max-result-bytes", id = "query-max-result-bytes", default_value_t = 64 << 20)]
    pub result_bytes: usize,
    /// Ad-hoc queries running at once; more are refused with 429.
    #[arg(
        long = "query-concurrency",
        id = "query-concurrency",
        default_value_t = 2
    )]
    pub concurrency: usize,
    /// Threads of the ad-hoc query runtime (which run at the lowest CPU priority).
    #[arg(long = "query-threads", id = "query-threads", default_value_t = 1)]
    pub threads: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            timeout: Duration::from_secs(30),
            memory_bytes: 512 << 20,
            result_bytes: 64 << 20,
            concurrency: 2,
            threads: 1,
        }
    }
}

/// The runtime ad-hoc queries run on, and the permits that bound how many run.
#[derive(Debug, Clone)]
pub struct QueryPool {
    runtime: SideRuntime,
    permits: Arc<Semaphore>,
    pub limits: QueryLimits,
}

impl QueryPool {
    pub fn new(limits: QueryLimits) -> std::io::Result<Self> {
        Ok(QueryPool {
            runtime: SideRuntime::new("runnel-query", limits.threads, LOWEST_PRIORITY)?,
            permits: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            limits,
        })
    }

    /// A place for one more query, or 429 when `concurrency` are running.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_queries",
                format!(
                    "{} ad-hoc queries are running, the most at once (--query-concurrency); \
                     retry later",
                    self.limits.concurrency
                ),
            )
        })
    }

    /// Runs `query` on the pool within the time limit. The query is cancelled (its
    /// [`Cancel`] set and its task aborted) when the limit passes or when the caller's
    /// future is dropped (the client went away).
    pub async fn run<T, Q>(&self, query: impl FnOnce(Cancel) -> Q) -> Result<T, ApiError>
    where
        T: Send + 'static,
        Q: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        let cancel = Cancel::default();
        let task = CancelOnDrop {
            task: self.runtime.handle().spawn(query(cancel.clone())),
            cancel,
        };
        match tokio::time::timeout(self.limits.timeout, task).await {
            Ok(result) => result,
            Err(_) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "query_timeout",
                format!(
                    "the query ran longer than {:?}, the limit (--query-timeout), and was \
                     cancelled",
                    self.limits.timeout
                ),
            )),
        }
    }
}

/// A spawned query that is cancelled when this handle is dropped before it finished.
struct CancelOnDrop<T> {
    task: tokio::task::JoinHandle<Result<T, ApiError>>,
    cancel: Cancel,
}

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        self.cancel.set();
        self.task.abort();
    }
}

impl<T> Future for CancelOnDrop<T> {
    type Output = Result<T, ApiError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.task).poll(cx).map(|joined| {
            joined
                .unwrap_or_else(|e| Err(ApiError::internal(format!("the query task failed: {e}"))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(limits: QueryLimits) -> QueryPool {
        QueryPool::new(limits).unwrap()
    }

    #[tokio::test]
    async fn a_query_past_its_time_limit_is_cancelled_with_a_400() {
        let pool = pool(QueryLimits {
            timeout: Duration::from_millis(100),
            ..QueryLimits::default()
        });
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let error = pool
            .run(|cancel| async move {
                let _dropped = dropped_tx;
                // The flag is set before the task is aborted.
                while !cancel.is_set() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                std::future::pending::<()>().await;
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(error.code, "query_timeout");
        assert!(
            error.message.contains("--query-timeout"),
            "{}",
            error.message
        );
        // The task was aborted: its sender went away with it.
        assert!(dropped_rx.await.is_err());
    }

    #[tokio::test]
    async fn queries_beyond_the_concurrency_limit_get_429() {
        let pool = pool(QueryLimits {
            concurrency: 1,
            ..QueryLimits::default()
        });
        let first = pool.admit().unwrap();
        let refused = pool.admit().unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        drop(first);
        let _again = pool.admit().unwrap();
    }

    #[tokio::test]
    async fn queries_run_on_the_low_priority_threads() {
        let pool = pool(QueryLimits::default());
        let name = pool
            .run(|_| async { Ok(std::thread::current().name().map(str::to_owned)) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("runnel-query"));
        #[cfg(target_os = "linux")]
        {
            let nice = pool
                .run(|_| async { Ok(rustix::process::getpriority_process(None).unwrap()) })
                .await
                .unwrap();
            assert_eq!(nice, 19);
        }
    }
}
