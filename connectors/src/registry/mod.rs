//! The connector registry: every source and sink a SQL statement can name, keyed by its
//! `connector = '...'` option.
//!
//! A connector is one folder with a [`SourceFactory`] and/or a [`SinkFactory`] and one
//! line in [`Registry::builtin`]. A factory checks its options at submission (before
//! anything is created, so a refused statement leaves nothing behind), says which
//! columns it fixes or which metadata it offers, prepares what must exist (a topic, a
//! table) when the statement is applied, and opens the runtime source or sink when the
//! job starts, again after every restart. The engine's job manager and HTTP layer only
//! see [`ConnectorSpec`]s and this registry.

mod context;
mod factory;
mod reader;
mod spec;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

pub use context::{ConnectorContext, IcebergCatalogs};
pub use factory::{FixedSchema, SinkDecl, SinkFactory, SourceDecl, SourceFactory};
pub use reader::{OptionError, OptionReader};
pub use spec::{ConnectorSpec, Options};

/// Source and sink factories by connector name.
#[derive(Clone, Default)]
pub struct Registry {
    sources: BTreeMap<&'static str, Arc<dyn SourceFactory>>,
    sinks: BTreeMap<&'static str, Arc<dyn SinkFactory>>,
}

impl Registry {
    /// No connectors.
    pub fn empty() -> Self {
        Registry::default()
    }

    /// The connectors runnel ships: `log`, `nexmark`, `iceberg`, `kafka`.
    pub fn builtin() -> &'static Registry {
        static BUILTIN: OnceLock<Registry> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Registry::empty()
                .with_source(crate::log::connector::LogSourceFactory)
                .with_sink(crate::log::connector::LogSinkFactory)
                .with_source(crate::nexmark::connector::NexmarkFactory)
                .with_sink(crate::iceberg::connector::IcebergSinkFactory)
                .with_source(crate::kafka::connector::KafkaSourceFactory)
                .with_sink(crate::kafka::connector::KafkaSinkFactory)
        })
    }

    #[must_use]
    pub fn with_source(mut self, factory: impl SourceFactory + 'static) -> Self {
        self.sources.insert(factory.name(), Arc::new(factory));
        self
    }

    #[must_use]
    pub fn with_sink(mut self, factory: impl SinkFactory + 'static) -> Self {
        self.sinks.insert(factory.name(), Arc::new(factory));
        self
    }

    /// The source connector `name`, or an error listing the known ones.
    pub fn source(&self, name: &str) -> Result<&Arc<dyn SourceFactory>, OptionError> {
        self.sources.get(name).ok_or_else(|| {
            OptionError::at(
                "connector",
                format!(
                    "unknown source connector '{name}': expected one of {}",
                    quoted(self.sources.keys())
                ),
            )
        })
    }

    /// The sink connector `name`, or an error listing the known ones.
    pub fn sink(&self, name: &str) -> Result<&Arc<dyn SinkFactory>, OptionError> {
        self.sinks.get(name).ok_or_else(|| {
            OptionError::at(
                "connector",
                format!(
                    "unknown sink connector '{name}': expected one of {}",
                    quoted(self.sinks.keys())
                ),
            )
        })
    }

    /// Names of the source connectors.
    pub fn source_names(&self) -> String {
        quoted(self.sources.keys())
    }

    /// Names of the sink connectors.
    pub fn sink_names(&self) -> String {
        quoted(self.sinks.keys())
    }
}

fn quoted<'a>(names: impl Iterator<Item = &'a &'static str>) -> String {
    names
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("sources", &self.sources.keys().collect::<Vec<_>>())
            .field("sinks", &self.sinks.keys().collect::<Vec<_>>())
            .finish()
    }
}
