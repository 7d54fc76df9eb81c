//! `connector = 'kafka'` in the registry: the source and the sink factories.

use std::sync::Arc;

use arrow::datatypes::DataType;
use async_trait::async_trait;
use runnel_runtime::{Error, Fault, Result, Sink, Source};

use super::decode::METADATA;
use super::options::{KafkaSinkOptions, KafkaSourceOptions};
use super::{KafkaSink, KafkaSource};
use crate::registry::{
    ConnectorContext, OptionError, Options, SinkDecl, SinkFactory, SourceDecl, SourceFactory,
};

/// The sink id a job's Kafka sink writes in its records' headers.
pub fn sink_id(job: &str) -> String {
    format!("{job}.kafka")
}

fn bootstrap(options: &Options) -> String {
    options
        .get("bootstrap.servers")
        .cloned()
        .unwrap_or_default()
}

/// At submission, a broker that does not answer is the statement's problem as far as its
/// author can tell (a wrong address, most often): a 400 naming the option, not a 503.
/// A running job that loses its broker fails and restarts like on any outside fault.
fn unreachable(servers: String) -> impl FnOnce(Error) -> Error {
    move |e| match e.fault() {
        Fault::External => Error::Plan(format!(
            "bootstrap.servers = '{servers}': no Kafka broker answered ({e})"
        )),
        _ => e,
    }
}

/// Kafka topics as sources.
pub struct KafkaSourceFactory;

#[async_trait]
impl SourceFactory for KafkaSourceFactory {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn validate(&self, source: &str, options: Options) -> Result<Options, OptionError> {
        KafkaSourceOptions::validate(source, options)
    }

    fn metadata(&self) -> &'static [(&'static str, DataType)] {
        METADATA
    }

    /// The broker answers and the topic exists.
    async fn check(&self, ctx: &ConnectorContext, decl: SourceDecl<'_>) -> Result<()> {
        let servers = bootstrap(&decl.spec.options);
        let opened = self.open(ctx, decl).await.map_err(unreachable(servers));
        opened.map(|_| ())
    }

    async fn open(&self, _ctx: &ConnectorContext, decl: SourceDecl<'_>) -> Result<Arc<dyn Source>> {
        let options = KafkaSourceOptions::from_options(&decl.spec.options)?;
        let source =
            KafkaSource::connect(options, decl.schema.clone(), decl.metadata.to_vec()).await?;
        Ok(Arc::new(source))
    }
}

/// Kafka topics as exactly-once sinks.
pub struct KafkaSinkFactory;

#[async_trait]
impl SinkFactory for KafkaSinkFactory {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn validate(&self, _sink: &str, options: Options) -> Result<Options, OptionError> {
        KafkaSinkOptions::validate(options)
    }

    /// The broker answers, the topic exists and the key column is one of the rows'.
    async fn check(&self, ctx: &ConnectorContext, decl: SinkDecl<'_>) -> Result<()> {
        let servers = bootstrap(&decl.spec.options);
        let opened = self.open(ctx, decl).await.map_err(unreachable(servers));
        opened.map(|_| ())
    }

    async fn open(&self, _ctx: &ConnectorContext, decl: SinkDecl<'_>) -> Result<Arc<dyn Sink>> {
        let options = KafkaSinkOptions::from_options(&decl.spec.options)?;
        let sink = KafkaSink::connect(options, &sink_id(decl.job), decl.schema).await?;
        Ok(Arc::new(sink))
    }
}
