//! The `runnel` command line.

// Errors are returned to the user; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "runnel",
    version,
    about = "Incremental stream processing on object storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate Nexmark bids into the embedded log and show the hot items live.
    Demo(DemoArgs),
    /// Run every durable job of a data root and serve the HTTP API.
    Serve(ServeArgs),
    /// Submit SQL statements to a running server.
    Sql(SqlArgs),
    /// Append a file of records (JSON lines, Parquet or Arrow IPC) to a topic.
    Produce(ProduceArgs),
    /// Print a job's committed results as they arrive.
    Tail(TailArgs),
}

/// How a client command reaches the server.
#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// Base URL of the runnel server.
    #[arg(long, default_value = "http://127.0.0.1:7878")]
    server: String,
    /// Bearer token, when the server requires one.
    #[arg(long, env = "RUNNEL_TOKEN")]
    token: Option<String>,
}

impl ServerArgs {
    fn server(self) -> runnel::client::Server {
        runnel::client::Server {
            url: self.server,
            token: self.token,
        }
    }
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false, id = "statements")]
struct SqlArgs {
    /// File of SQL statements.
    #[arg(short = 'f', long = "file", group = "statements")]
    file: Option<PathBuf>,
    /// SQL statements given inline.
    #[arg(short = 'e', long = "execute", group = "statements")]
    execute: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, clap::Args)]
struct ProduceArgs {
    /// Topic to append to.
    topic: String,
    /// JSON lines, Parquet, an Arrow IPC stream or an Arrow IPC file.
    file: PathBuf,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, clap::Args)]
struct TailArgs {
    /// The job whose results to follow.
    job: String,
    /// `earliest` (every committed result) or `latest` (from now on).
    #[arg(long, default_value = "latest")]
    from: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Data root: a local directory (created if missing) or `s3://bucket/prefix`.
    #[arg(long, default_value = "./runnel-data")]
    data: String,
    /// Keep Iceberg tables in this REST catalog (e.g. `http://host:8181`) instead of the
    /// data root's own catalog; the sinks' commit ledgers stay in the data root.
    #[arg(long, env = "RUNNEL_ICEBERG_REST")]
    iceberg_rest: Option<String>,
    /// Address of the HTTP API (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: std::net::SocketAddr,
    /// Time between checkpoints, e.g. `10s`, `500ms`.
    #[arg(long, default_value = "10s", value_parser = runnel::parse_duration)]
    checkpoint_interval: Duration,
    /// Require `Authorization: Bearer TOKEN` on every request but `/healthz`.
    #[arg(long, env = "RUNNEL_TOKEN")]
    token: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = runnel::server::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    #[command(flatten)]
    query: runnel::server::QueryLimits,
    #[command(flatten)]
    results: runnel::server::ResultLimits,
    /// Connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = runnel::server::limits::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Time a client has to send a request's head, e.g. `10s`.
    #[arg(long, default_value = "10s", value_parser = runnel::parse_duration)]
    header_read_timeout: Duration,
    /// Time a client has to send a request's whole body, e.g. `60s`.
    #[arg(long, default_value = "60s", value_parser = runnel::parse_duration)]
    body_read_timeout: Duration,
    #[command(flatten)]
    sql_limits: runnel::server::SqlLimits,
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Data directory (object-store root) for the log.
    #[arg(long, default_value = "./runnel-data")]
    data: PathBuf,
    /// How long to run, e.g. `30s`, `2m`; Ctrl-C stops earlier.
    #[arg(long, default_value = "30s", value_parser = runnel::parse_duration)]
    duration: Duration,
    /// Bids generated per second.
    #[arg(long, default_value_t = 200_000)]
    rate: u64,
    /// Partitions of the `bids` topic.
    #[arg(long, default_value_t = 4)]
    partitions: usize,
    /// Subtasks per operator.
    #[arg(long, default_value_t = 2)]
    parallelism: usize,
    /// Auctions shown per window.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // The process's one clock and seed; everything below is handed them.
    #[allow(clippy::disallowed_methods)]
    let ambient = runnel::runtime::Ambient::system();
    tracing::debug!(seed = ambient.rng.seed(), "random seed");
    // Request handlers plan SQL with DataFusion, whose recursive passes need far more
    // than tokio's default 2 MiB per nested expression level in unoptimized builds;
    // only the stack pages touched are committed.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(runnel::server::WORKER_STACK_BYTES)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => {
                runnel::demo::run(runnel::demo::DemoOptions {
                    data: args.data,
                    duration: args.duration,
                    rate: args.rate,
                    partitions: args.partitions,
                    parallelism: args.parallelism,
                    top: args.top,
                    ambient,
                })
                .await
            }
            Command::Sql(args) => {
                let text = match (args.file, args.execute) {
                    (Some(file), _) => std::fs::read_to_string(&file)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?,
                    (None, Some(text)) => text,
                    (None, None) => unreachable!("clap requires one of -f and -e"),
                };
                runnel::client::run_sql(&args.server.server(), text).await
            }
            Command::Produce(args) => {
                let server = args.server.server();
                runnel::client::produce(&server, &args.topic, &args.file, &ambient.rng)
                    .await
                    .map(|_| ())
            }
            Command::Tail(args) => {
                runnel::client::tail(&args.server.server(), &args.job, &args.from).await
            }
            Command::Serve(args) => {
                anyhow::ensure!(
                    !args.checkpoint_interval.is_zero(),
                    "--checkpoint-interval must be longer than zero"
                );
                let mut data = runnel::data::DataRoot::open(&args.data, ambient)?;
                if let Some(uri) = &args.iceberg_rest {
                    data = data.with_iceberg_rest(uri);
                }
                let options = runnel::server::ServeOptions {
                    listen: args.listen,
                    checkpoint_interval: args.checkpoint_interval,
                    shutdown_timeout: Duration::from_secs(30),
                    token: args.token,
                    max_body_bytes: args.max_body_bytes,
                    query: args.query,
                    results: args.results,
                    limits: runnel::server::ServerLimits {
                        max_connections: args.max_connections,
                        header_read_timeout: args.header_read_timeout,
                        body_read_timeout: args.body_read_timeout,
                    },
                    sql_limits: args.sql_limits,
                };
                runnel::server::serve(data, options, runnel::server::shutdown_signal()).await
            }
        }
    })
}
