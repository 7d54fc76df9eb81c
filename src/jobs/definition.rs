//! What a durable job is: the definition stored under the data root, from which any
//! process rebuilds the job's dataflow after a restart.
//!
//! Definitions are plain JSON with a `version`, so a newer runnel can still read the
//! jobs an older one created. Durations are whole milliseconds. The only kind today is
//! the hot-items job over a log topic; SQL-defined jobs become another kind.

use std::time::Duration;

use runnel_connectors::registry::ConnectorSpec;
use serde::{Deserialize, Serialize};

use crate::hot_items::HotItems;

/// Current format of stored definitions.
pub const DEFINITION_VERSION: u32 = 1;

/// A job as stored in `{root}/jobs/{name}/definition.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDefinition {
    pub version: u32,
    /// Job name: also its id in the HTTP API and the directory of its checkpoints.
    pub name: String,
    /// Subtasks per operator; may change between restarts (state moves by key group).
    pub parallelism: usize,
    #[serde(flatten)]
    pub kind: JobKind,
}

/// What a job computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    /// Nexmark q5 over a topic of bids, ranked windows appended to another topic.
    HotItems(HotItemsJob),
    /// A `CREATE SINK ... AS SELECT` job: the planned pipeline and its output topic.
    Sql(SqlJob),
}

/// A job submitted as SQL, planned at submission and stored as its plan (which holds
/// the source definition it was planned against), so a restart rebuilds the same job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlJob {
    /// The `CREATE SINK` statement as submitted, for display.
    pub statement: String,
    pub plan: runnel_sql::PipelinePlan,
    /// Topic the job's committed results are appended to (the results stream reads it).
    pub output_topic: String,
    /// Iceberg table the results are also committed to, exactly once, as definitions
    /// written before `sink` named it; read as `sink` = iceberg with this table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Where the results also go, exactly once (a connector of the registry), besides
    /// the output topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<ConnectorSpec>,
}

impl SqlJob {
    /// The job's sink besides its output topic, however the definition stored it.
    pub fn external_sink(&self) -> Option<ConnectorSpec> {
        self.sink.clone().or_else(|| {
            let table = self.table.clone()?;
            Some(ConnectorSpec::new(
                "iceberg",
                [("table".to_string(), table)].into_iter().collect(),
            ))
        })
    }
}

/// A hot-items job between two topics of the embedded log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotItemsJob {
    pub input: LogInput,
    /// Topic the ranked windows are appended to, exactly once (created if absent).
    pub output_topic: String,
    pub window_millis: u64,
    pub slide_millis: u64,
    pub top: usize,
    pub max_out_of_orderness_millis: u64,
    pub idle_timeout_millis: u64,
}

/// A topic of the embedded log as a job's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogInput {
    pub topic: String,
    /// End offset of every partition (index = partition) for a job over a fixed input:
    /// the job ends there, and ends there again after any restart. `None`: the job
    /// tails the topic forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Vec<u64>>,
}

impl JobDefinition {
    /// A hot-items job named `name` with the shape of `shape`.
    pub fn hot_items(
        name: impl Into<String>,
        input: LogInput,
        output_topic: impl Into<String>,
        shape: &HotItems,
    ) -> Self {
        let millis = |d: Duration| d.as_millis() as u64;
        JobDefinition {
            version: DEFINITION_VERSION,
            name: name.into(),
            parallelism: shape.parallelism,
            kind: JobKind::HotItems(HotItemsJob {
                input,
                output_topic: output_topic.into(),
                window_millis: millis(shape.window),
                slide_millis: millis(shape.slide),
                top: shape.top,
                max_out_of_orderness_millis: millis(shape.max_out_of_orderness),
                idle_timeout_millis: millis(shape.idle_timeout),
            }),
        }
    }

    /// The log topic the job's committed results go to.
    pub fn output_topic(&self) -> &str {
        match &self.kind {
            JobKind::HotItems(job) => &job.output_topic,
            JobKind::Sql(job) => &job.output_topic,
        }
    }

    /// The Iceberg table the job also commits its results to, and the sink id its
    /// snapshots carry (`runnel.sink-id`): `"{job}.table"`, stable across restarts.
    pub fn table_sink(&self) -> Option<(String, String)> {
        let JobKind::Sql(job) = &self.kind else {
            return None;
        };
        let sink = job.external_sink().filter(|s| s.connector == "iceberg")?;
        let table = sink.get("table")?.to_string();
        Some((
            table,
            runnel_connectors::iceberg::connector::sink_id(&self.name),
        ))
    }

    /// Short name of the job's kind, for status output.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            JobKind::HotItems(_) => "hot_items",
            JobKind::Sql(_) => "sql",
        }
    }
}

impl HotItemsJob {
    /// The dataflow shape this definition describes, at `parallelism`.
    pub fn shape(&self, parallelism: usize) -> HotItems {
        HotItems {
            window: Duration::from_millis(self.window_millis),
            slide: Duration::from_millis(self.slide_millis),
            top: self.top,
            max_out_of_orderness: Duration::from_millis(self.max_out_of_orderness_millis),
            idle_timeout: Duration::from_millis(self.idle_timeout_millis),
            parallelism,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_round_trip_through_json_with_their_kind_tag() {
        let definition = JobDefinition::hot_items(
            "hot",
            LogInput {
                topic: "bids".into(),
                until: Some(vec![10, 7]),
            },
            "hot_out",
            &HotItems {
                top: 3,
                ..HotItems::default()
            },
        );
        let json = serde_json::to_value(&definition).unwrap();
        assert_eq!(json["kind"], "hot_items");
        assert_eq!(json["input"]["until"][1], 7);
        let back: JobDefinition = serde_json::from_value(json).unwrap();
        assert_eq!(back, definition);
        assert_eq!(back.table_sink(), None);
        let JobKind::HotItems(job) = &back.kind else {
            panic!("{back:?}")
        };
        let shape = job.shape(4);
        assert_eq!((shape.top, shape.parallelism), (3, 4));
        assert_eq!(shape.window, HotItems::default().window);
    }

    #[test]
    fn sql_jobs_round_trip_with_their_plan() {
        let text = "CREATE SOURCE bids (auction BIGINT, date_time TIMESTAMP(3), \
                    WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND) \
                    WITH (connector = 'log', topic = 'bids', partitions = '2'); \
                    CREATE SINK counts AS SELECT auction, window_start, window_end, COUNT(*) AS n \
                    FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) \
                    GROUP BY auction, window_start, window_end";
        let statements = runnel_sql::parse(text).unwrap();
        let (runnel_sql::Statement::CreateSource(bids), runnel_sql::Statement::CreateSink(sink)) =
            (&statements[0], &statements[1])
        else {
            panic!("{statements:?}")
        };
        let plan = runnel_sql::plan_sink(sink, std::slice::from_ref(bids)).unwrap();
        let definition = JobDefinition {
            version: DEFINITION_VERSION,
            name: "counts".into(),
            parallelism: 2,
            kind: JobKind::Sql(SqlJob {
                statement: text.into(),
                plan,
                output_topic: "counts".into(),
                table: Some("counts".into()),
                sink: None,
            }),
        };
        let json = serde_json::to_string(&definition).unwrap();
        let back: JobDefinition = serde_json::from_str(&json).unwrap();
        assert_eq!(back, definition);
        assert_eq!((back.kind_name(), back.output_topic()), ("sql", "counts"));
        assert_eq!(
            back.table_sink(),
            Some(("counts".to_string(), "counts.table".to_string()))
        );
    }

    #[test]
    fn an_unbounded_input_has_no_until() {
        let input: LogInput = serde_json::from_str(r#"{"topic":"bids"}"#).unwrap();
        assert_eq!(input.until, None);
        assert!(
            !serde_json::to_string(&input).unwrap().contains("until"),
            "absent, not null"
        );
    }
}
