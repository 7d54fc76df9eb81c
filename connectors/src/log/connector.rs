//! `connector = 'log'`: a topic of the embedded log, as a source (`topic`, `partitions`)
//! or as a sink whose topic the job's result stream reads.

use std::sync::Arc;

use async_trait::async_trait;
use runnel_runtime::{Result, Sink, Source};

use super::{LogSink, LogSource, MAX_PARTITIONS, validate_topic_name};
use crate::registry::{
    ConnectorContext, OptionError, OptionReader, Options, SinkDecl, SinkFactory, SourceDecl,
    SourceFactory,
};

const KNOWN: &[&str] = &["topic", "partitions"];

/// Reads `topic` (default: the source or sink name) and `partitions`.
fn topic_options(
    name: &str,
    options: Options,
    default_partitions: Option<u32>,
) -> Result<Options, OptionError> {
    let mut r = OptionReader::new(options);
    let topic = r.text_or(&["topic"], name);
    validate_topic_name(&topic).map_err(|e| OptionError::at("topic", e.to_string()))?;
    let partitions = r.count(&["partitions"], MAX_PARTITIONS)?;
    if let (None, Some(n)) = (partitions, default_partitions) {
        r.set("partitions", n.to_string());
    }
    r.finish("log", KNOWN)
}

fn topic_of(options: &Options) -> Result<(&str, u32)> {
    let topic = options
        .get("topic")
        .ok_or_else(|| runnel_runtime::Error::Plan("a log connector without a topic".into()))?;
    let partitions = options
        .get("partitions")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    Ok((topic, partitions))
}

/// Sources reading a topic of the embedded log.
pub struct LogSourceFactory;

#[async_trait]
impl SourceFactory for LogSourceFactory {
    fn name(&self) -> &'static str {
        "log"
    }

    fn validate(&self, source: &str, options: Options) -> Result<Options, OptionError> {
        topic_options(source, options, Some(1))
    }

    /// Creates the topic with the declared columns (an existing topic must hold them).
    async fn prepare(&self, ctx: &ConnectorContext, decl: SourceDecl<'_>) -> Result<()> {
        let (topic, partitions) = topic_of(&decl.spec.options)?;
        ctx.log
            .create_topic(topic, partitions, decl.schema.clone())
            .await?;
        Ok(())
    }

    async fn open(&self, ctx: &ConnectorContext, decl: SourceDecl<'_>) -> Result<Arc<dyn Source>> {
        let (topic, _) = topic_of(&decl.spec.options)?;
        Ok(Arc::new(LogSource::new(ctx.log.topic(topic).await?)))
    }
}

/// Sinks writing a topic of the embedded log, exactly once.
pub struct LogSinkFactory;

#[async_trait]
impl SinkFactory for LogSinkFactory {
    fn name(&self) -> &'static str {
        "log"
    }

    fn validate(&self, sink: &str, options: Options) -> Result<Options, OptionError> {
        topic_options(sink, options, None)
    }

    fn log_topic(&self, options: &Options) -> Option<(String, u32)> {
        topic_of(options).ok().map(|(t, p)| (t.to_string(), p))
    }

    async fn open(&self, ctx: &ConnectorContext, decl: SinkDecl<'_>) -> Result<Arc<dyn Sink>> {
        let (topic, _) = topic_of(&decl.spec.options)?;
        let topic = ctx.log.topic(topic).await?;
        Ok(Arc::new(LogSink::new(topic, format!("{}.sink", decl.job))?))
    }
}
