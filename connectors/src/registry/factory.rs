//! The two factory traits a connector implements.

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use runnel_runtime::{Result, Sink, Source};

use super::context::ConnectorContext;
use super::reader::OptionError;
use super::spec::{ConnectorSpec, Options};

/// The columns a connector fixes (a generator's): declared columns must match them.
#[derive(Debug, Clone)]
pub struct FixedSchema {
    pub schema: SchemaRef,
    /// The event-time column when the statement declares no watermark (with no delay:
    /// the connector produces it in order).
    pub event_time: String,
}

/// A declared source, as its connector opens it.
#[derive(Debug, Clone, Copy)]
pub struct SourceDecl<'a> {
    /// The source's name in SQL.
    pub name: &'a str,
    /// All declared columns in order, metadata columns included.
    pub schema: &'a SchemaRef,
    /// `(column, key)` of each `METADATA FROM 'key'` column.
    pub metadata: &'a [(String, String)],
    pub spec: &'a ConnectorSpec,
}

/// A connector rows come from.
#[async_trait]
pub trait SourceFactory: Send + Sync {
    /// The `connector = '...'` value.
    fn name(&self) -> &'static str;

    /// Checks the options of a source named `source` (without `connector`) and returns
    /// them canonical: defaults filled, aliases resolved. Nothing is created.
    fn validate(&self, source: &str, options: Options) -> Result<Options, OptionError>;

    /// The columns this source always has, if it fixes them.
    fn fixed_schema(&self, options: &Options) -> Option<FixedSchema> {
        let _ = options;
        None
    }

    /// The `METADATA FROM` keys the source offers and their types.
    fn metadata(&self) -> &'static [(&'static str, DataType)] {
        &[]
    }

    /// Checks, without changing anything, that the source can be read (a broker answers,
    /// a topic exists): before any statement of a request is applied.
    async fn check(&self, ctx: &ConnectorContext, decl: SourceDecl<'_>) -> Result<()> {
        let _ = (ctx, decl);
        Ok(())
    }

    /// Makes what the source needs exist (when the statement is applied).
    async fn prepare(&self, ctx: &ConnectorContext, decl: SourceDecl<'_>) -> Result<()> {
        let _ = (ctx, decl);
        Ok(())
    }

    /// The runtime source of a job (at every start of the job).
    async fn open(&self, ctx: &ConnectorContext, decl: SourceDecl<'_>) -> Result<Arc<dyn Source>>;
}

/// A sink of a job, as its connector opens it.
#[derive(Debug, Clone, Copy)]
pub struct SinkDecl<'a> {
    /// The job (= SQL sink) name; sink ids derive from it, so they survive restarts.
    pub job: &'a str,
    /// The rows the sink receives.
    pub schema: &'a SchemaRef,
    pub spec: &'a ConnectorSpec,
}

/// A connector rows go to.
#[async_trait]
pub trait SinkFactory: Send + Sync {
    /// The `connector = '...'` value.
    fn name(&self) -> &'static str;

    /// Checks the options of the sink named `sink` and returns them canonical.
    fn validate(&self, sink: &str, options: Options) -> Result<Options, OptionError>;

    /// A sink that *is* a topic of the embedded log names it and its partitions: the
    /// job writes its results there (the job's result stream reads it) and opens no
    /// other sink. Others: `None`.
    fn log_topic(&self, options: &Options) -> Option<(String, u32)> {
        let _ = options;
        None
    }

    /// Checks, without changing anything, that the sink can take `decl.schema` (before
    /// any statement of a request is applied).
    async fn check(&self, ctx: &ConnectorContext, decl: SinkDecl<'_>) -> Result<()> {
        let _ = (ctx, decl);
        Ok(())
    }

    /// Makes what the sink needs exist (when the statement is applied).
    async fn prepare(&self, ctx: &ConnectorContext, decl: SinkDecl<'_>) -> Result<()> {
        let _ = (ctx, decl);
        Ok(())
    }

    /// The runtime sink (at every start of the job).
    async fn open(&self, ctx: &ConnectorContext, decl: SinkDecl<'_>) -> Result<Arc<dyn Sink>>;
}
