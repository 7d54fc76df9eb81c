//! `connector = 'nexmark'`: the generator as a source whose columns it fixes.
//!
//! Options (canonical key first, then aliases): `table` (`type`, `nexmark.table.type`;
//! bid, auction or person), `events_per_second` (`rate`), `seed`, `max_events`
//! (`nexmark.event.num`; unbounded when absent), `partitions`.

use std::sync::Arc;

use async_trait::async_trait;
use runnel_runtime::{Error, Result, Source};

use super::{NexmarkOptions, NexmarkSource, NexmarkTable};
use crate::log::MAX_PARTITIONS;
use crate::registry::{
    ConnectorContext, ConnectorSpec, FixedSchema, OptionError, OptionReader, Options, SourceDecl,
    SourceFactory,
};

const KNOWN: &[&str] = &[
    "table",
    "events_per_second",
    "seed",
    "max_events",
    "partitions",
];

/// The Nexmark generator.
pub struct NexmarkFactory;

/// The generator a (canonical) `nexmark` connector describes.
pub fn source_of(spec: &ConnectorSpec) -> Result<NexmarkSource> {
    let number = |key: &str| -> Result<Option<u64>> {
        spec.get(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| Error::Plan(format!("nexmark option {key} = '{v}'")))
            })
            .transpose()
    };
    let table: NexmarkTable = spec.get("table").unwrap_or("bid").parse()?;
    let options = NexmarkOptions {
        seed: number("seed")?.unwrap_or(0),
        events_per_second: number("events_per_second")?.unwrap_or(10_000),
        max_events: number("max_events")?,
        partitions: number("partitions")?.unwrap_or(1) as usize,
        ..NexmarkOptions::default()
    };
    NexmarkSource::new(table, options)
}

#[async_trait]
impl SourceFactory for NexmarkFactory {
    fn name(&self) -> &'static str {
        "nexmark"
    }

    fn validate(&self, _source: &str, options: Options) -> Result<Options, OptionError> {
        let mut r = OptionReader::new(options);
        let table = r.text_or(&["table", "type", "nexmark.table.type"], "bid");
        let parsed: NexmarkTable = table.parse().map_err(|_| {
            r.error(
                "table",
                format!("unknown Nexmark event type '{table}': expected bid, auction or person"),
            )
        })?;
        r.set("table", parsed.name());
        let rate = r.parsed::<u64>(&["events_per_second", "rate"], "a non-negative integer")?;
        r.set("events_per_second", rate.unwrap_or(10_000).to_string());
        let seed = r.parsed::<u64>(&["seed"], "a non-negative integer")?;
        r.set("seed", seed.unwrap_or(0).to_string());
        r.parsed::<u64>(
            &["max_events", "nexmark.event.num"],
            "a non-negative integer",
        )?;
        let partitions = r.count(&["partitions"], MAX_PARTITIONS)?;
        r.set("partitions", partitions.unwrap_or(1).to_string());
        let canonical = r.finish("nexmark", KNOWN)?;
        source_of(&ConnectorSpec::new("nexmark", canonical.clone()))
            .map_err(|e| OptionError::clause(e.to_string()))?;
        Ok(canonical)
    }

    fn fixed_schema(&self, options: &Options) -> Option<FixedSchema> {
        let table: NexmarkTable = options.get("table")?.parse().ok()?;
        Some(FixedSchema {
            schema: table.schema(),
            event_time: table.event_time_column().to_string(),
        })
    }

    async fn open(&self, _ctx: &ConnectorContext, decl: SourceDecl<'_>) -> Result<Arc<dyn Source>> {
        Ok(Arc::new(source_of(decl.spec)?))
    }
}
