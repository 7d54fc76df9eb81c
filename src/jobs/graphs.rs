//! How each kind of durable job becomes a dataflow: what is opened once per job (topics,
//! tables, sources), and a builder that makes the graph afresh for every attempt.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use runnel_connectors::iceberg::IcebergSink;
use runnel_connectors::log::{EmbeddedLog, LogSink, LogSource, Topic};
use runnel_runtime::{Dataflow, JobGraph, Source};
use runnel_sql::SourceConnector;

use super::definition::{HotItemsJob, JobDefinition, SqlJob};
use crate::data::DataRoot;

/// Builds a job's graph afresh for every attempt.
pub(super) type GraphBuilder = Box<dyn Fn() -> runnel_runtime::Result<JobGraph> + Send + Sync>;

/// Opens the plan's source and output topic once, then returns how to build the
/// graph for each attempt.
pub(super) async fn sql(
    data: &DataRoot,
    log: &EmbeddedLog,
    definition: &JobDefinition,
    job: &SqlJob,
) -> anyhow::Result<GraphBuilder> {
    let name = definition.name.clone();
    let declared = &job.plan.source;
    let source: Arc<dyn Source> = match &declared.connector {
        SourceConnector::Log { topic, .. } => {
            let topic = log
                .topic(topic)
                .await
                .with_context(|| format!("job {name}: topic of source {}", declared.name))?;
            Arc::new(LogSource::new(topic))
        }
        SourceConnector::Nexmark { .. } => match declared.nexmark() {
            Some(source) => Arc::new(source?),
            None => unreachable!("a nexmark connector has a generator"),
        },
    };
    // The topic is created at submission (with the partitions asked for); a job
    // whose topic is gone gets a new one-partition topic.
    let schema = job.plan.output_schema()?;
    let output = match log.topic(&job.output_topic).await {
        Ok(topic) => topic,
        Err(_) => log
            .create_topic(&job.output_topic, 1, schema.clone())
            .await
            .with_context(|| format!("job {name}: output topic"))?,
    };
    anyhow::ensure!(
        output.schema().fields() == schema.fields(),
        "job {name}: topic {} holds rows of another schema than the query's",
        job.output_topic
    );
    let sources = HashMap::from([(declared.name.clone(), source)]);
    let (plan, parallelism) = (job.plan.clone(), definition.parallelism);
    let producer = format!("{name}.sink");
    // The sink id names the job, so it survives restarts, rescaling and upgrades.
    let table: Option<Arc<dyn runnel_runtime::Sink>> = match definition.table_sink() {
        Some((table, sink_id)) => {
            let catalog = data.iceberg().await?;
            let sink = IcebergSink::new(catalog, table, &sink_id, schema)
                .await
                .with_context(|| format!("job {name}: Iceberg table {table}"))?;
            Some(Arc::new(sink))
        }
        None => None,
    };
    Ok(Box::new(move || {
        let flow = Dataflow::new(&name).with_parallelism(parallelism);
        let sink = LogSink::new(output.clone(), producer.clone())?;
        let results = runnel_sql::build(&plan, &flow, &sources)?;
        // The table first: sinks commit in graph order, so by the time the results
        // stream serves an epoch's rows, the table holds that epoch's snapshot.
        if let Some(table) = &table {
            results.sink("table", table.clone())?;
        }
        results.sink("output", Arc::new(sink))?;
        flow.build()
    }))
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
