//! The Kafka source: partitions read by assignment, positions from runnel's checkpoints.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use runnel_runtime::{Assignment, Error, Result, Source, SourcePoll, SourceReader};
use tokio::time::Instant;

use super::decode::{Decoder, Record};
use super::discovery::gained;
use super::options::{BadRecords, KafkaSourceOptions, StartupMode};

/// How long a metadata or offset request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Records taken per poll round.
const MAX_RECORDS_PER_POLL: usize = 16_384;
/// Sleep when nothing arrived, before reporting idle.
const IDLE_SLEEP: Duration = Duration::from_millis(10);

/// A Kafka topic as a runnel source.
#[derive(Debug, Clone)]
pub struct KafkaSource {
    options: KafkaSourceOptions,
    schema: SchemaRef,
    metadata: Vec<(String, String)>,
    partitions: u32,
}

fn kafka_error(context: impl Into<String>) -> impl FnOnce(KafkaError) -> Error {
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
            ("enable.partition.eof", "false"),
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
fn assign(
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

/// One subtask's reader.
struct KafkaReader {
    consumer: Arc<BaseConsumer>,
    topic: String,
    /// Which partitions are ours as the topic grows (`None`: a fixed list).
    owner: Option<Assignment>,
    /// Per partition read: the offset of the next record to take from the client.
    next: BTreeMap<u32, i64>,
    /// Per partition: the offset after the last record handed to the runtime (what a
    /// checkpoint may store; records still in `pending` are not in it).
    emitted: BTreeMap<u32, i64>,
    /// Timestamp startup: records before the time are dropped until one at or after it.
    floors: HashMap<u32, i64>,
    decoder: Decoder,
    skip_bad: bool,
    /// Polls not handed out yet, each with the position its partition reaches after it.
    pending: VecDeque<(SourcePoll, Option<(u32, i64)>)>,
    discovery_interval: Duration,
    discovered_at: Instant,
}

impl KafkaReader {
    /// Starts reading the partitions the topic gained that are ours, from their start.
    async fn discover(&mut self) -> Result<()> {
        self.discovered_at = Instant::now();
        if self.owner.is_none() {
            return Ok(());
        }
        let count = match partition_count(self.consumer.clone(), &self.topic).await {
            Ok(count) => count,
            Err(e) => {
                tracing::warn!(topic = self.topic, "partition discovery: {e}");
                return Ok(());
            }
        };
        let new: BTreeMap<u32, i64> = gained(self.owner.as_ref(), &self.next, count)
            .into_iter()
            .map(|p| (p, 0))
            .collect();
        if !new.is_empty() {
            tracing::info!(topic = self.topic, partitions = ?new.keys(), "reading new partitions");
            assign(&self.consumer, &self.topic, &new, true)?;
            self.emitted.extend(new.clone());
            self.next.extend(new);
        }
        Ok(())
    }

    /// Takes what the client has buffered, by partition.
    fn poll_records(&mut self) -> Result<BTreeMap<u32, Vec<Record>>> {
        let mut out: BTreeMap<u32, Vec<Record>> = BTreeMap::new();
        for _ in 0..MAX_RECORDS_PER_POLL {
            let message = match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(message)) => message,
                Some(Err(e)) if transient(&e) => {
                    tracing::debug!(topic = self.topic, "kafka consumer: {e}");
                    break;
                }
                Some(Err(e)) => {
                    return Err(kafka_error(format!("reading kafka topic {}", self.topic))(
                        e,
                    ));
                }
            };
            let p = message.partition() as u32;
            let Some(next) = self.next.get_mut(&p) else {
                continue;
            };
            // The client may hand back records before the requested offset: never twice.
            if message.offset() < *next {
                continue;
            }
            *next = message.offset() + 1;
            let timestamp = message.timestamp().to_millis();
            if let Some(floor) = self.floors.get(&p) {
                if timestamp.is_some_and(|t| t < *floor) {
                    continue;
                }
                self.floors.remove(&p);
            }
            out.entry(p).or_default().push(Record {
                offset: message.offset(),
                timestamp,
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
                headers: message.headers().map(|h| {
                    let object: serde_json::Map<String, serde_json::Value> = h
                        .iter()
                        .map(|h| {
                            let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                            (h.key.to_string(), value.into())
                        })
                        .collect();
                    serde_json::Value::Object(object).to_string()
                }),
            });
        }
        Ok(out)
    }
}

impl KafkaReader {
    /// The next pending poll; the position of its partition moves past it.
    fn take_pending(&mut self) -> Option<SourcePoll> {
        let (poll, reached) = self.pending.pop_front()?;
        if let Some((p, offset)) = reached {
            self.emitted.insert(p, offset);
        }
        Some(poll)
    }
}

/// Errors the client reports and recovers from by itself.
fn transient(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::PartitionEOF
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
        )
    )
}

#[async_trait]
impl SourceReader for KafkaReader {
    async fn next(&mut self) -> Result<SourcePoll> {
        if let Some(poll) = self.take_pending() {
            return Ok(poll);
        }
        if self.discovered_at.elapsed() >= self.discovery_interval {
            self.discover().await?;
        }
        let records = self.poll_records()?;
        // Partitions whose records were all dropped (before a startup time) are read.
        for (p, next) in &self.next {
            if !records.contains_key(p) {
                self.emitted.insert(*p, *next);
            }
        }
        if records.is_empty() {
            tokio::time::sleep(IDLE_SLEEP).await;
            return Ok(SourcePoll::Idle);
        }
        for (partition, records) in records {
            let decoded = self.decoder.decode(partition, &records, self.skip_bad)?;
            let mut polls = Vec::new();
            if let Some(batch) = decoded.rows {
                polls.push(SourcePoll::Batch { partition, batch });
            }
            if let Some(rows) = decoded.rejected {
                polls.push(SourcePoll::Rejected { partition, rows });
            }
            let reached = self.next.get(&partition).map(|n| (partition, *n));
            let last = polls.len().saturating_sub(1);
            for (i, poll) in polls.into_iter().enumerate() {
                self.pending
                    .push_back((poll, if i == last { reached } else { None }));
            }
        }
        Ok(self.take_pending().unwrap_or(SourcePoll::Idle))
    }

    fn positions(&self) -> Vec<(u32, u64)> {
        self.emitted.iter().map(|(p, o)| (*p, *o as u64)).collect()
    }

    /// Commits the checkpoint's offsets to the consumer group, for lag monitors only.
    async fn checkpoint_done(&mut self, positions: &[(u32, u64)]) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for (p, offset) in positions {
            tpl.add_partition_offset(&self.topic, *p as i32, Offset::Offset(*offset as i64))
                .map_err(kafka_error("kafka offsets"))?;
        }
        self.consumer
            .commit(&tpl, CommitMode::Async)
            .map_err(kafka_error(format!("committing offsets of {}", self.topic)))
    }
}
