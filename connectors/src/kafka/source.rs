//! The Kafka source: partitions read by assignment, positions from runnel's checkpoints.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use runnel_runtime::{Assignment, Error, Result, Source, SourceReader};
use tokio::time::Instant;

use super::decode::Decoder;
use super::options::{BadRecords, KafkaSourceOptions, StartupMode};
use super::reader::KafkaReader;

/// How long a metadata or offset request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kafka topic as a runnel source.
#[derive(Debug, Clone)]
pub struct KafkaSource {
    options: KafkaSourceOptions,
    schema: SchemaRef,
    metadata: Vec<(String, String)>,
    partitions: u32,
}

pub(super) fn kafka_error(context: impl Into<String>) -> impl FnOnce(KafkaError) -> Error {
    let context = context.into();
    move |e| Error::external(context, e)
}

/// Runs a blocking client call off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("kafka client call: {e}")))?
}

/// The number of partitions of `topic` (a `NotFound` error when it does not exist).
pub(crate) async fn partition_count(consumer: Arc<BaseConsumer>, topic: &str) -> Result<u32> {
    let topic = topic.to_string();
    blocking(move || {
        let metadata = consumer
            .fetch_metadata(Some(&topic), REQUEST_TIMEOUT)
            .map_err(kafka_error(format!("metadata of kafka topic {topic}")))?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        match found {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                Ok(t.partitions().len() as u32)
            }
            _ => Err(Error::NotFound(format!(
                "kafka topic {topic} does not exist"
            ))),
        }
    })
    .await
}

impl KafkaSource {
    /// Connects to the broker and reads the topic's partitions.
    pub async fn connect(
        options: KafkaSourceOptions,
        schema: SchemaRef,
        metadata: Vec<(String, String)>,
    ) -> Result<Self> {
        Decoder::new(&schema, &metadata)?;
        let consumer = Arc::new(consumer(&options)?);
        let partitions = partition_count(consumer, &options.broker.topic).await?;
        Ok(KafkaSource {
            options,
            schema,
            metadata,
            partitions,
        })
    }

    async fn reader(
        &self,
        owner: Option<Assignment>,
        partitions: &[u32],
        positions: &HashMap<u32, u64>,
    ) -> Result<Box<dyn SourceReader>> {
        let consumer = Arc::new(consumer(&self.options)?);
        let topic = self.options.broker.topic.clone();
        let restoring = !positions.is_empty();
        let mut next = BTreeMap::new();
        let mut floors = HashMap::new();
        for &p in partitions {
            let start = match (positions.get(&p), restoring) {
                (Some(offset), _) => *offset as i64,
                // A partition the checkpoint did not know was added since: all of it.
                (None, true) => 0,
                (None, false) => {
                    let mode = self.options.startup;
                    if let StartupMode::Timestamp(t) = mode {
                        floors.insert(p, t);
                    }
                    startup_offset(consumer.clone(), &topic, p, mode).await?
                }
            };
            next.insert(p, start);
        }
        assign(&consumer, &topic, &next, false)?;
        Ok(Box::new(KafkaReader {
            consumer,
            topic,
            owner,
            emitted: next.clone(),
            next,
            floors,
            decoder: Decoder::new(&self.schema, &self.metadata)?,
            skip_bad: self.options.bad_records == BadRecords::Skip,
            pending: VecDeque::new(),
            discovery_interval: self.options.discovery_interval,
            discovered_at: Instant::now(),
            at_end: BTreeSet::new(),
        }))
    }
}

fn consumer(options: &KafkaSourceOptions) -> Result<BaseConsumer> {
    options
        .broker
        .client(&[
            ("group.id", &options.group),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            // The end of a partition is reported: only a partition read to its end may
            // go idle.
            ("enable.partition.eof", "true"),
            // Offsets come from checkpoints; one the broker no longer has (retention)
            // restarts at the oldest it has.
            ("auto.offset.reset", "earliest"),
            ("fetch.wait.max.ms", "100"),
        ])
        .create()
        .map_err(kafka_error("kafka consumer"))
}

/// The first offset of partition `p` to read under `mode`.
async fn startup_offset(
    consumer: Arc<BaseConsumer>,
    topic: &str,
    p: u32,
    mode: StartupMode,
) -> Result<i64> {
    let topic = topic.to_string();
    blocking(move || {
        let context = format!("start of kafka topic {topic} partition {p}");
        let (low, high) = consumer
            .fetch_watermarks(&topic, p as i32, REQUEST_TIMEOUT)
            .map_err(kafka_error(context.clone()))?;
        let lookup = |offset: Offset| -> Result<Offset> {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, p as i32, offset)
                .map_err(kafka_error(context.clone()))?;
            let found = match mode {
                StartupMode::Timestamp(_) => consumer.offsets_for_times(tpl, REQUEST_TIMEOUT),
                _ => consumer.committed_offsets(tpl, REQUEST_TIMEOUT),
            }
            .map_err(kafka_error(context.clone()))?;
            Ok(found
                .elements()
                .first()
                .map_or(Offset::Invalid, |e| e.offset()))
        };
        Ok(match mode {
            StartupMode::Earliest => low,
            StartupMode::Latest => high,
            StartupMode::Timestamp(t) => match lookup(Offset::Offset(t))? {
                Offset::Offset(o) => o.clamp(low, high),
                _ => high,
            },
            StartupMode::GroupOffsets => match lookup(Offset::Invalid)? {
                Offset::Offset(o) => o.clamp(low, high),
                _ => low,
            },
        })
    })
    .await
}

/// Assigns `partitions` at their offsets (added to the assignment when `incremental`).
pub(super) fn assign(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &BTreeMap<u32, i64>,
    incremental: bool,
) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    for (p, offset) in partitions {
        tpl.add_partition_offset(topic, *p as i32, Offset::Offset(*offset))
            .map_err(kafka_error("kafka assignment"))?;
    }
    match incremental {
        true => consumer.incremental_assign(&tpl),
        false => consumer.assign(&tpl),
    }
    .map_err(kafka_error(format!("assigning kafka topic {topic}")))
}

#[async_trait]
impl Source for KafkaSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn partitions(&self) -> usize {
        self.partitions as usize
    }

    async fn open_at(
        &self,
        partitions: &[u32],
        positions: &HashMap<u32, u64>,
    ) -> Result<Box<dyn SourceReader>> {
        self.reader(None, partitions, positions).await
    }

    async fn open_assigned(
        &self,
        assignment: &Assignment,
        positions: &HashMap<u32, u64>,
    ) -> Result<Box<dyn SourceReader>> {
        self.reader(Some(assignment.clone()), &assignment.partitions, positions)
            .await
    }
}
