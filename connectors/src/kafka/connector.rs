//! `connector = 'kafka'` in the registry: the source and the sink factories.

use std::sync::Arc;

use arrow::datatypes::DataType;
use async_trait::async_trait;
use runnel_runtime::{Result, Sink, Source};

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
        self.open(ctx, decl).await.map(|_| ())
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
        self.open(ctx, decl).await.map(|_| ())
    }

    async fn open(&self, _ctx: &ConnectorContext, decl: SinkDecl<'_>) -> Result<Arc<dyn Sink>> {
        let options = KafkaSinkOptions::from_options(&decl.spec.options)?;
        let sink = KafkaSink::connect(options, &sink_id(decl.job), decl.schema).await?;
        Ok(Arc::new(sink))
    }
}
