//! `POST /v1/sql`: one or more SQL statements, checked as a whole before any of them
//! takes effect, so a refused text creates nothing.
//!
//! `CREATE SOURCE` declares a source (and creates its log topic if absent);
//! `CREATE SINK ... AS SELECT` plans the query and starts a durable job of the sink's
//! name; `SHOW SOURCES | SINKS | JOBS` list; `DROP SINK` stops the job after a final
//! checkpoint for good; `EXPLAIN CREATE SINK ...` shows the dataflow without creating it.
//! The reply has one entry per statement.

use std::collections::HashMap;

use arrow::datatypes::SchemaRef;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use runnel_connectors::registry::{ConnectorSpec, Registry, SinkDecl, SourceDecl};
use runnel_sql::{PipelinePlan, SinkDef, SourceDef, Statement};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::job_view::describe;
use super::sql_limits::on_planner_stack;
use crate::jobs::{JobDefinition, JobKind, SqlJob, definition::DEFINITION_VERSION};

/// Longest SQL text accepted.
pub const MAX_SQL_BYTES: usize = 256 * 1024;
/// Subtasks per operator of a SQL job.
pub const SQL_JOB_PARALLELISM: usize = 2;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/sql", post(submit))
}

/// A statement, checked and ready to run.
enum Action {
    CreateSource(SourceDef),
    CreateSink {
        sink: SinkDef,
        plan: PipelinePlan,
        topic: String,
        partitions: u32,
        external: Option<ConnectorSpec>,
    },
    Explain(PipelinePlan),
    ShowSources,
    ShowSinks,
    ShowJobs,
    DropSink {
        name: String,
        if_exists: bool,
    },
}

async fn submit(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    if body.len() > MAX_SQL_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "sql_too_long",
            format!(
                "the SQL text is {} bytes; the limit is {MAX_SQL_BYTES}",
                body.len()
            ),
        ));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request(format!("the SQL text is not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("no SQL statement given"));
    }
    let limits = state.options.sql_limits;
    let owned = text.to_string();
    let statements = on_planner_stack(move || {
        runnel_sql::parse_limited(&owned, Registry::builtin(), limits.sql())
    })
    .await??;
    let actions = check(&state, statements).await?;
    let mut results = Vec::new();
    for action in actions {
        results.push(run(&state, action).await?);
    }
    Ok(Json(json!({ "results": results })))
}

/// Checks every statement against the catalog as the earlier statements of the text
/// would leave it; nothing is created here.
async fn check(state: &AppState, statements: Vec<Statement>) -> Result<Vec<Action>, ApiError> {
    let stored = state.sources.list().await?;
    let mut sources: HashMap<String, SourceDef> =
        stored.into_iter().map(|s| (s.name.clone(), s)).collect();
    let mut new_jobs: Vec<String> = Vec::new();
    let mut actions = Vec::new();
    for statement in statements {
        actions.push(match statement {
            Statement::CreateSource(source) => {
                validate_name("source", &source.name)?;
                if let Some(existing) = sources.get(&source.name)
                    && existing != &source
                {
                    return Err(ApiError::conflict(format!(
                        "source {} already exists with another definition",
                        source.name
                    )));
                }
                check_source(state, &source).await?;
                sources.insert(source.name.clone(), source.clone());
                Action::CreateSource(source)
            }
            Statement::CreateSink(sink) => {
                validate_name("sink", &sink.name)?;
                if state.jobs.status(&sink.name).is_some() || new_jobs.contains(&sink.name) {
                    return Err(ApiError::conflict(format!(
                        "sink {} already exists",
                        sink.name
                    )));
                }
                let plan = plan(state, &sink, &sources).await?;
                let (topic, partitions, external) = sink_targets(state, &sink, &plan).await?;
                new_jobs.push(sink.name.clone());
                Action::CreateSink {
                    sink,
                    plan,
                    topic,
                    partitions,
                    external,
                }
            }
            Statement::Explain(sink) => Action::Explain(plan(state, &sink, &sources).await?),
            Statement::ShowSources => Action::ShowSources,
            Statement::ShowSinks => Action::ShowSinks,
            Statement::ShowJobs => Action::ShowJobs,
            Statement::DropSink { name, if_exists } => {
                if !if_exists && state.jobs.status(&name).is_none() && !new_jobs.contains(&name) {
                    return Err(ApiError::not_found(format!("no sink named {name:?}")));
                }
                Action::DropSink { name, if_exists }
            }
        });
    }
    Ok(actions)
}

/// Checks a source's connector can read it (a broker answers, a topic exists).
async fn check_source(state: &AppState, source: &SourceDef) -> Result<(), ApiError> {
    let (schema, metadata) = (source.schema(), source.metadata());
    let decl = source_decl(source, &schema, &metadata);
    let factory = Registry::builtin().source(&source.connector.connector)?;
    factory
        .check(&state.data.connectors(), decl)
        .await
        .map_err(|e| ApiError::from(e).context(format!("source {}", source.name)))
}

fn source_decl<'a>(
    source: &'a SourceDef,
    schema: &'a SchemaRef,
    metadata: &'a [(String, String)],
) -> SourceDecl<'a> {
    SourceDecl {
        name: &source.name,
        schema,
        metadata,
        spec: &source.connector,
    }
}

/// The log topic a sink's results go to (its own when its connector is a log topic,
/// else the results topic of its name) and the connector they also go to, checked.
async fn sink_targets(
    state: &AppState,
    sink: &SinkDef,
    plan: &PipelinePlan,
) -> Result<(String, u32, Option<ConnectorSpec>), ApiError> {
    let Some(spec) = &sink.connector else {
        return Ok((results_topic(&sink.name), 1, None));
    };
    let factory = Registry::builtin().sink(&spec.connector)?;
    if let Some((topic, partitions)) = factory.log_topic(&spec.options) {
        validate_topic(&topic)?;
        return Ok((topic, partitions, None));
    }
    let schema = plan.output_schema()?;
    let decl = SinkDecl {
        job: &sink.name,
        schema: &schema,
        spec,
    };
    factory
        .check(&state.data.connectors(), decl)
        .await
        .map_err(|e| ApiError::from(e).context(format!("sink {}", sink.name)))?;
    Ok((results_topic(&sink.name), 1, Some(spec.clone())))
}

/// Plans `sink` against the sources declared so far, on a planner thread.
async fn plan(
    state: &AppState,
    sink: &SinkDef,
    sources: &HashMap<String, SourceDef>,
) -> Result<PipelinePlan, ApiError> {
    let declared: Vec<SourceDef> = sources.values().cloned().collect();
    let (sink, limits) = (sink.clone(), state.options.sql_limits.sql());
    Ok(on_planner_stack(move || runnel_sql::plan_sink_limited(&sink, &declared, limits)).await??)
}

async fn run(state: &AppState, action: Action) -> Result<Value, ApiError> {
    Ok(match action {
        Action::CreateSource(source) => {
            let (schema, metadata) = (source.schema(), source.metadata());
            Registry::builtin()
                .source(&source.connector.connector)?
                .prepare(
                    &state.data.connectors(),
                    source_decl(&source, &schema, &metadata),
                )
                .await
                .map_err(|e| ApiError::from(e).context(format!("source {}", source.name)))?;
            state
                .sources
                .create(&source)
                .await
                .map_err(|e| ApiError::conflict(format!("{e:#}")))?;
            json!({ "statement": "create_source", "name": source.name })
        }
        Action::CreateSink {
            sink,
            plan,
            topic,
            partitions,
            external,
        } => {
            let schema = plan.output_schema()?;
            state
                .log
                .create_topic(&topic, partitions, schema)
                .await
                .map_err(|e| ApiError::from(e).context(format!("sink {}", sink.name)))?;
            let definition = JobDefinition {
                version: DEFINITION_VERSION,
                name: sink.name.clone(),
                parallelism: SQL_JOB_PARALLELISM,
                kind: JobKind::Sql(SqlJob {
                    statement: sink.query.sql.clone(),
                    plan,
                    output_topic: topic.clone(),
                    table: None,
                    sink: external.clone(),
                }),
            };
            state.jobs.submit(definition).await?;
            let table = external
                .as_ref()
                .filter(|s| s.connector == "iceberg")
                .and_then(|s| s.get("table"));
            json!({ "statement": "create_sink", "name": sink.name, "job": sink.name, "topic": topic, "table": table, "sink": external })
        }
        Action::Explain(plan) => json!({ "statement": "explain", "plan": plan.to_string() }),
        Action::ShowSources => {
            let sources = state.sources.list().await?;
            let sources: Vec<Value> = sources
                .iter()
                .map(|s| json!({ "name": s.name, "connector": s.connector, "watermark": s.watermark }))
                .collect();
            json!({ "statement": "show_sources", "sources": sources })
        }
        Action::ShowSinks => {
            let sinks: Vec<Value> = state
                .jobs
                .list()
                .iter()
                .map(|j| json!({ "name": j.definition.name, "topic": j.definition.output_topic(), "state": j.state }))
                .collect();
            json!({ "statement": "show_sinks", "sinks": sinks })
        }
        Action::ShowJobs => {
            let now = state.data.ambient.clock.now_millis();
            let jobs: Vec<Value> = state.jobs.list().iter().map(|j| describe(j, now)).collect();
            json!({ "statement": "show_jobs", "jobs": jobs })
        }
        Action::DropSink { name, if_exists } => {
            let timeout = state.options.shutdown_timeout;
            match state.jobs.drop_job(&name, timeout).await? {
                Some(status) => {
                    json!({ "statement": "drop_sink", "name": name, "state": status.state })
                }
                None if if_exists => {
                    json!({ "statement": "drop_sink", "name": name, "state": null })
                }
                None => return Err(ApiError::not_found(format!("no sink named {name:?}"))),
            }
        }
    })
}

/// The topic of a sink without a `WITH` clause: its rows only feed the results stream.
fn results_topic(sink: &str) -> String {
    format!("_results.{sink}")
}

fn validate_name(what: &str, name: &str) -> Result<(), ApiError> {
    Ok(runnel_runtime::checkpoint::layout::validate_name(
        what, name,
    )?)
}

fn validate_topic(name: &str) -> Result<(), ApiError> {
    Ok(runnel_connectors::log::validate_topic_name(name)?)
}
