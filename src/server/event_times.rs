//! Which columns of a topic some declared source reads as its event time.
//!
//! A topic's schema may let a column be null that a `CREATE SOURCE ... WATERMARK FOR`
//! over it needs on every row: a record without an event time would be accepted, then
//! fail every job reading the topic, on every restart. Appends look the columns up here
//! and refuse such records instead. Source definitions are create-only, so the list of
//! them is read again at most once a second, not on every append.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use runnel_sql::SourceDef;

use crate::jobs::sources::SourceCatalog;

/// How long a read of the declared sources is reused.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// The declared sources, and when they were read.
type Snapshot = (Instant, Arc<Vec<SourceDef>>);

/// A short-lived copy of the declared sources.
#[derive(Debug, Clone, Default)]
pub struct EventTimes {
    cached: Arc<Mutex<Option<Snapshot>>>,
}

impl EventTimes {
    /// The event-time columns of the log sources over `topic`.
    pub async fn of_topic(
        &self,
        catalog: &SourceCatalog,
        topic: &str,
    ) -> anyhow::Result<Vec<String>> {
        let sources = self.sources(catalog).await?;
        let mut columns: Vec<String> = sources
            .iter()
            .filter(|s| s.connector.connector == "log" && s.connector.get("topic") == Some(topic))
            .map(|s| s.watermark.column.clone())
            .collect();
        columns.sort();
        columns.dedup();
        Ok(columns)
    }

    async fn sources(&self, catalog: &SourceCatalog) -> anyhow::Result<Arc<Vec<SourceDef>>> {
        let now = Instant::now();
        let fresh = self
            .cached
            .lock()
            .ok()
            .and_then(|cached| cached.clone())
            .filter(|(at, _)| now.duration_since(*at) < FRESH_FOR);
        if let Some((_, sources)) = fresh {
            return Ok(sources);
        }
        let sources = Arc::new(catalog.list().await?);
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((now, sources.clone()));
        }
        Ok(sources)
    }
}
