//! The `WITH` options of Kafka sources and sinks, checked at submission and read back
//! from a stored definition at every start.
//!
//! Common: `topic`, `bootstrap.servers` (aliases `properties.bootstrap.servers`),
//! `format` (`json`), and any `properties.<librdkafka key>` passed to the client as is.
//! Source: `scan.startup.mode` (`earliest` | `latest` | `timestamp` | `group-offsets`),
//! `scan.startup.timestamp-millis`, `properties.group.id`,
//! `scan.topic-partition-discovery.interval-ms`, `bad-records` (`fail` | `skip`).
//! Sink: `key.fields` (one column whose value keys the record and picks its partition,
//! as Kafka's default partitioner would), `delivery` (`exactly-once` | `at-least-once`).

use std::time::Duration;

use rdkafka::config::ClientConfig;
use runnel_runtime::{Error, Result};

use crate::registry::{OptionError, OptionReader, Options};

/// Where a source starts reading a partition it has no checkpointed position for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupMode {
    Earliest,
    Latest,
    /// The first record whose timestamp is at or after this many Unix milliseconds.
    Timestamp(i64),
    /// The consumer group's committed offsets (earliest where it has none).
    GroupOffsets,
}

/// What a source does with a record it cannot decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRecords {
    /// Fail the job, naming the partition and offset.
    Fail,
    /// Count it and send it to the source's rejected-rows output.
    Skip,
}

const COMMON: &[&str] = &["topic", "bootstrap.servers", "format", "properties.*"];

/// The broker options both directions share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub bootstrap: String,
    pub topic: String,
    /// `properties.*` without the prefix.
    pub properties: Vec<(String, String)>,
}

impl Broker {
    fn read(r: &mut OptionReader) -> Result<Self, OptionError> {
        let bootstrap = r.required(&["bootstrap.servers", "properties.bootstrap.servers"])?;
        let topic = r.required(&["topic"])?;
        check_topic(&topic)?;
        r.choice(&["format"], &["json"], "json")?;
        let properties = r
            .prefixed("properties.")
            .into_iter()
            .map(|(k, v)| (k["properties.".len()..].to_string(), v))
            .collect();
        Ok(Broker {
            bootstrap,
            topic,
            properties,
        })
    }

    fn from_options(options: &Options) -> Result<Self> {
        let get = |k: &str| {
            options
                .get(k)
                .cloned()
                .ok_or_else(|| Error::Plan(format!("kafka connector without `{k}`")))
        };
        Ok(Broker {
            bootstrap: get("bootstrap.servers")?,
            topic: get("topic")?,
            properties: options
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("properties.")?.to_string(), v.clone())))
                .collect(),
        })
    }

    /// A client configuration: ours, then the user's `properties.*` over it.
    pub fn client(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config.set("topic.metadata.refresh.interval.ms", "5000");
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }
}

/// Kafka's own rule: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic(topic: &str) -> Result<(), OptionError> {
    let valid = !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    match valid {
        true => Ok(()),
        false => Err(OptionError::at(
            "topic",
            format!("'{topic}' is not a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)"),
        )),
    }
}

/// A Kafka source's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSourceOptions {
    pub broker: Broker,
    pub startup: StartupMode,
    /// The consumer group offsets are committed to (for lag monitoring only).
    pub group: String,
    pub discovery_interval: Duration,
    pub bad_records: BadRecords,
}

impl KafkaSourceOptions {
    /// Checks a source's options and returns them canonical.
    pub fn validate(source: &str, options: Options) -> Result<Options, OptionError> {
        let mut r = OptionReader::new(options);
        Broker::read(&mut r)?;
        let mode = r.choice(
            &["scan.startup.mode"],
            &["earliest", "latest", "timestamp", "group-offsets"],
            "group-offsets",
        )?;
        let millis = r.parsed::<i64>(&["scan.startup.timestamp-millis"], "milliseconds")?;
        match (mode.as_str(), millis) {
            ("timestamp", None) => {
                return Err(OptionError::at(
                    "scan.startup.mode",
                    "scan.startup.mode = 'timestamp' needs scan.startup.timestamp-millis",
                ));
            }
            ("timestamp", Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(OptionError::at(
                    "scan.startup.timestamp-millis",
                    "scan.startup.timestamp-millis is only for scan.startup.mode = 'timestamp'",
                ));
            }
        }
        r.text_or(&["properties.group.id"], &format!("runnel.{source}"));
        let interval = r.parsed::<u64>(
            &["scan.topic-partition-discovery.interval-ms"],
            "milliseconds",
        )?;
        if interval == Some(0) {
            return Err(OptionError::at(
                "scan.topic-partition-discovery.interval-ms",
                "the discovery interval must be at least 1 ms",
            ));
        }
        r.choice(&["bad-records"], &["fail", "skip"], "fail")?;
        let mut known = COMMON.to_vec();
        known.extend([
            "scan.startup.mode",
            "scan.startup.timestamp-millis",
            "scan.topic-partition-discovery.interval-ms",
            "bad-records",
        ]);
        r.finish("kafka", &known)
    }

    /// The options of a stored (canonical) definition.
    pub fn from_options(options: &Options) -> Result<Self> {
        let broker = Broker::from_options(options)?;
        let get = |k: &str| options.get(k).map(String::as_str);
        let startup = match get("scan.startup.mode").unwrap_or("group-offsets") {
            "earliest" => StartupMode::Earliest,
            "latest" => StartupMode::Latest,
            "timestamp" => StartupMode::Timestamp(
                get("scan.startup.timestamp-millis")
                    .and_then(|m| m.parse().ok())
                    .ok_or_else(|| Error::Plan("kafka timestamp startup without a time".into()))?,
            ),
            _ => StartupMode::GroupOffsets,
        };
        let group = broker
            .properties
            .iter()
            .find(|(k, _)| k == "group.id")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "runnel".into());
        let interval = get("scan.topic-partition-discovery.interval-ms")
            .and_then(|m| m.parse().ok())
            .unwrap_or(5_000);
        Ok(KafkaSourceOptions {
            broker,
            startup,
            group,
            discovery_interval: Duration::from_millis(interval),
            bad_records: match get("bad-records") {
                Some("skip") => BadRecords::Skip,
                _ => BadRecords::Fail,
            },
        })
    }
}

/// A Kafka sink's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSinkOptions {
    pub broker: Broker,
    /// The column keying each record, if any.
    pub key: Option<String>,
    /// `false` with `delivery = 'at-least-once'`: no tail read, a restart may repeat
    /// the epoch it resumes from.
    pub exactly_once: bool,
}

impl KafkaSinkOptions {
    /// Checks a sink's options and returns them canonical.
    pub fn validate(options: Options) -> Result<Options, OptionError> {
        let mut r = OptionReader::new(options);
        Broker::read(&mut r)?;
        r.text(&["key.fields"]);
        r.choice(
            &["delivery"],
            &["exactly-once", "at-least-once"],
            "exactly-once",
        )?;
        let mut known = COMMON.to_vec();
        known.extend(["key.fields", "delivery"]);
        r.finish("kafka", &known)
    }

    pub fn from_options(options: &Options) -> Result<Self> {
        Ok(KafkaSinkOptions {
            broker: Broker::from_options(options)?,
            key: options.get("key.fields").cloned(),
            exactly_once: options.get("delivery").map(String::as_str) != Some("at-least-once"),
        })
    }
}
