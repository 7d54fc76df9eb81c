//! How each kind of durable job becomes a dataflow: what is opened once per job (topics,
//! tables, sources), and a builder that makes the graph afresh for every attempt.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use arrow::datatypes::SchemaRef;
use runnel_connectors::log::{EmbeddedLog, LogSink, LogSource, Topic};
use runnel_connectors::registry::{Registry, SinkDecl, SourceDecl};
use runnel_runtime::{Dataflow, JobGraph};

use super::definition::{HotItemsJob, JobDefinition, SqlJob};
use crate::data::DataRoot;

/// Builds a job's graph afresh for every attempt.
pub(super) type GraphBuilder = Box<dyn Fn() -> runnel_runtime::Result<JobGraph> + Send + Sync>;

/// Opens the plan's source, output topic and sink once (through the connector
/// registry), then returns how to build the graph for each attempt.
pub(super) async fn sql(
    data: &DataRoot,
    definition: &JobDefinition,
    job: &SqlJob,
) -> anyhow::Result<GraphBuilder> {
    let (name, registry, ctx) = (
        definition.name.clone(),
        Registry::builtin(),
        data.connectors(),
    );
    let declared = &job.plan.source;
    let source = {
        let (schema, metadata) = (declared.schema(), declared.metadata());
        let decl = SourceDecl {
            name: &declared.name,
            schema: &schema,
            metadata: &metadata,
            spec: &declared.connector,
        };
        registry
            .source(&declared.connector.connector)?
            .open(&ctx, decl)
            .await
            .with_context(|| format!("job {name}: source {}", declared.name))?
    };
    let schema = job.plan.output_schema()?;
    let output = output_topic(&ctx.log, &name, &job.output_topic, &schema).await?;
    let sources = HashMap::from([(declared.name.clone(), source)]);
    let (plan, parallelism) = (job.plan.clone(), definition.parallelism);
    let producer = format!("{name}.sink");
    let external: Option<(&'static str, Arc<dyn runnel_runtime::Sink>)> = match job.external_sink()
    {
        Some(spec) => {
            let factory = registry.sink(&spec.connector)?;
            let decl = SinkDecl {
                job: &name,
                schema: &schema,
                spec: &spec,
            };
            let sink = factory
                .open(&ctx, decl)
                .await
                .with_context(|| format!("job {name}: {spec}"))?;
            Some((sink_node(factory.name()), sink))
        }
        None => None,
    };
    Ok(Box::new(move || {
        let flow = Dataflow::new(&name).with_parallelism(parallelism);
        let sink = LogSink::new(output.clone(), producer.clone())?;
        let results = runnel_sql::build(&plan, &flow, &sources)?;
        // The external sink first: sinks commit in graph order, so by the time the
        // results stream serves an epoch's rows, the table or topic holds them.
        if let Some((node, external)) = &external {
            results.sink(*node, external.clone())?;
        }
        results.sink("output", Arc::new(sink))?;
        flow.build()
    }))
}

/// The graph node of a job's external sink; an Iceberg sink's keeps the name that
/// checkpoints written before the registry use.
fn sink_node(connector: &'static str) -> &'static str {
    match connector {
        "iceberg" => "table",
        other => other,
    }
}

/// The job's output topic. It is created at submission (with the partitions asked for);
/// a job whose topic is gone gets a new one-partition topic.
async fn output_topic(
    log: &EmbeddedLog,
    job: &str,
    topic: &str,
    schema: &SchemaRef,
) -> anyhow::Result<Topic> {
    let output = match log.topic(topic).await {
        Ok(topic) => topic,
        Err(_) => log
            .create_topic(topic, 1, schema.clone())
            .await
            .with_context(|| format!("job {job}: output topic"))?,
    };
    anyhow::ensure!(
        output.schema().fields() == schema.fields(),
        "job {job}: topic {topic} holds rows of another schema than the query's",
    );
    Ok(output)
}

/// Resolves the topics once, then returns how to build the graph for each attempt.
pub(super) async fn hot_items(
    log: &EmbeddedLog,
    definition: &JobDefinition,
    job: &HotItemsJob,
) -> anyhow::Result<GraphBuilder> {
    let input = log
        .topic(&job.input.topic)
        .await
        .with_context(|| format!("job {}: input topic", definition.name))?;
    let source = {
        let source = LogSource::new(input);
        match &job.input.until {
            Some(until) => source.until((0..).zip(until.iter().copied()).collect()),
            None => source,
        }
    };
    let shape = job.shape(definition.parallelism);
    let name = definition.name.clone();
    // The output schema, from a throw-away build (a `Dataflow` is not `Send`, so it
    // must be gone before the next await).
    let schema = {
        let probe = Dataflow::new(&name);
        shape
            .stream(&probe, Arc::new(source.clone()))?
            .schema()
            .clone()
    };
    let output: Topic = log
        .create_topic(&job.output_topic, 1, schema)
        .await
        .with_context(|| format!("job {name}: output topic"))?;
    let producer = format!("{name}.sink");
    Ok(Box::new(move || {
        let flow = Dataflow::new(&name).with_parallelism(shape.parallelism);
        let sink = LogSink::new(output.clone(), producer.clone())?;
        shape
            .stream(&flow, Arc::new(source.clone()))?
            .sink("output", Arc::new(sink))?;
        flow.build()
    }))
}
