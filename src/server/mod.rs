//! `runnel serve`: the long-running process. It opens the data root, checks that the
//! object store can carry exactly-once jobs, resumes every durable job, and answers the
//! HTTP API until it is told to stop.

mod auth;
mod bounded_functions;
mod cancellable_plan;
mod console;
mod error;
mod event_times;
mod iceberg_rest;
mod ingest;
mod job_view;
mod jobs_api;
pub mod limits;
mod listen;
mod metrics_api;
mod query_api;
mod query_pool;
mod results_api;
mod results_format;
mod results_limits;
mod side_runtime;
mod sql_api;
mod sql_limits;
mod tables_api;
mod topics_api;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use runnel_runtime::checkpoint::probe_conditional_writes;

pub use error::ApiError;
pub use limits::ServerLimits;
pub use query_pool::{QueryLimits, QueryPool};
pub use results_limits::{ResultLimits, StreamSlots};
pub use sql_limits::{SqlLimits, WORKER_STACK_BYTES};

use runnel_connectors::log::EmbeddedLog;

use crate::data::DataRoot;
use crate::jobs::{JobManager, SourceCatalog};

/// What `runnel serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub checkpoint_interval: Duration,
    /// How long a shutdown waits for jobs to take their final checkpoint.
    pub shutdown_timeout: Duration,
    /// When set, every request but `/healthz` needs `Authorization: Bearer {token}`.
    pub token: Option<String>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Bounds of ad-hoc queries.
    pub query: QueryLimits,
    /// Bounds of results streams.
    pub results: ResultLimits,
    /// Connections, and how long a client may take to send a request.
    pub limits: ServerLimits,
    /// Bounds on SQL requests.
    pub sql_limits: SqlLimits,
}

/// Default of [`ServeOptions::max_body_bytes`].
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Shared by the request handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pub jobs: JobManager,
    pub data: DataRoot,
    pub log: EmbeddedLog,
    pub sources: SourceCatalog,
    /// Where ad-hoc queries run.
    pub queries: QueryPool,
    /// The places for open results streams.
    pub result_streams: StreamSlots,
    pub options: ServeOptions,
}

/// The HTTP API and the web console. Everything but `/healthz` and the console's files
/// (which hold no data) sits behind the bearer token (when one is set) and the body
/// size limit, and every error it answers is JSON.
pub fn router(state: AppState) -> Router {
    let token: auth::RequiredToken = state.options.token.as_deref().map(Into::into);
    let api = Router::new()
        .merge(jobs_api::routes())
        .merge(metrics_api::routes())
        .merge(results_api::routes())
        .merge(sql_api::routes())
        .merge(tables_api::routes())
        .merge(iceberg_rest::routes())
        .merge(query_api::routes())
        .merge(topics_api::routes())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(state.options.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            limits::BodyLimits {
                max_bytes: state.options.max_body_bytes,
                read_timeout: state.options.limits.body_read_timeout,
            },
            limits::limit_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_bearer,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(console::routes())
        .merge(api)
        .with_state(state)
}

/// Refuses a store on which the create-only checkpoint protocol would not fence.
pub async fn require_conditional_writes(data: &DataRoot) -> anyhow::Result<()> {
    // A scratch path of its own, so processes starting together do not race each other.
    let token = data.ambient.rng.next_u64();
    let scratch = data
        .root
        .clone()
        .join("probe")
        .join(format!("{token:016x}"));
    let report = probe_conditional_writes(data.store.as_ref(), &scratch)
        .await
        .with_context(|| format!("cannot probe the object store at {}", data.location))?;
    report.require_exactly_once()?;
    Ok(())
}

/// Runs the server on `data` until `shutdown` completes, then stops the jobs after a
/// final checkpoint. Prints `listening on http://ADDR` once requests are accepted.
pub async fn serve(
    data: DataRoot,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    require_conditional_writes(&data).await?;
    let jobs = JobManager::new(data.clone(), options.checkpoint_interval);
    let resumed = jobs.resume_all().await?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let address = listener.local_addr()?;
    let shutdown_timeout = options.shutdown_timeout;
    let limits = options.limits;
    tracing::info!(data = %data.location, resumed, "runnel serving on {address}");
    println!("listening on http://{address}");
    let queries =
        QueryPool::new(options.query.clone()).context("cannot start the query runtime")?;
    let app = router(AppState {
        jobs: jobs.clone(),
        queries,
        result_streams: StreamSlots::new(&options.results)
            .context("cannot start the results stream runtime")?,
        log: data.log(),
        sources: SourceCatalog::new(data.store.clone(), data.root.clone()),
        data,
        options,
    });
    listen::serve(listener, app, limits, shutdown).await;
    jobs.shutdown(shutdown_timeout).await;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::path::Path;
    use runnel_runtime::storage::{FaultConfig, FaultyStore};

    use super::*;

    fn ambient() -> runnel_runtime::Ambient {
        runnel_runtime::Ambient::system()
    }

    fn options() -> ServeOptions {
        ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            checkpoint_interval: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            query: QueryLimits::default(),
            results: ResultLimits::default(),
            limits: ServerLimits::default(),
            sql_limits: SqlLimits::default(),
        }
    }

    #[tokio::test]
    async fn a_store_that_ignores_conditional_creates_is_refused_at_start() {
        let lying = FaultyStore::new(
            Arc::new(InMemory::new()),
            FaultConfig::none().with_ignored_preconditions(),
            1,
        )
        .unwrap();
        let data = DataRoot::new(Arc::new(lying), Path::from("data"), "lying", ambient()).unwrap();
        let error = serve(data, options(), std::future::ready(()))
            .await
            .unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("does not honour conditional creates")
                && message.contains("cannot run exactly-once jobs"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn an_honest_store_is_accepted() {
        let data = DataRoot::new(
            Arc::new(InMemory::new()),
            Path::from("data"),
            "memory",
            ambient(),
        )
        .unwrap();
        serve(data, options(), std::future::ready(()))
            .await
            .unwrap();
    }
}
