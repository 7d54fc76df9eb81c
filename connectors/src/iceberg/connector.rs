//! `connector = 'iceberg'`: an Iceberg table (`table`, default the sink's name) of the
//! engine's catalog, committed exactly once per checkpoint.

use std::sync::Arc;

use async_trait::async_trait;
use runnel_runtime::checkpoint::layout::validate_name;
use runnel_runtime::{Error, Result, Sink};

use super::IcebergSink;
use crate::registry::{
    ConnectorContext, OptionError, OptionReader, Options, SinkDecl, SinkFactory,
};

/// Sinks into Iceberg tables.
pub struct IcebergSinkFactory;

/// The sink id a job's table sink records in its snapshots: stable across restarts.
pub fn sink_id(job: &str) -> String {
    format!("{job}.table")
}

fn table_of(options: &Options) -> Result<&str> {
    options
        .get("table")
        .map(String::as_str)
        .ok_or_else(|| Error::Plan("an iceberg connector without a table".into()))
}

#[async_trait]
impl SinkFactory for IcebergSinkFactory {
    fn name(&self) -> &'static str {
        "iceberg"
    }

    fn validate(&self, sink: &str, options: Options) -> Result<Options, OptionError> {
        let mut r = OptionReader::new(options);
        let table = r.text_or(&["table"], sink);
        validate_name("table", &table).map_err(|e| OptionError::at("table", e.to_string()))?;
        r.finish("iceberg", &["table"])
    }

    /// Refuses rows the table cannot take (a type Iceberg lacks, or an existing table
    /// with other columns).
    async fn check(&self, ctx: &ConnectorContext, decl: SinkDecl<'_>) -> Result<()> {
        let catalog = ctx.iceberg.catalog().await?;
        catalog
            .check_sink(table_of(&decl.spec.options)?, decl.schema)
            .await
    }

    async fn open(&self, ctx: &ConnectorContext, decl: SinkDecl<'_>) -> Result<Arc<dyn Sink>> {
        let catalog = ctx.iceberg.catalog().await?;
        let table = table_of(&decl.spec.options)?;
        let sink =
            IcebergSink::new(catalog, table, &sink_id(decl.job), decl.schema.clone()).await?;
        Ok(Arc::new(sink))
    }
}
