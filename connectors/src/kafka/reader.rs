//! One source subtask's Kafka reader: takes what the client buffered, decodes it per
//! partition, and knows which partitions are read to their end.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use runnel_runtime::{Assignment, Result, SourcePoll, SourceReader};
use tokio::time::Instant;

use super::decode::{Decoder, Record};
use super::discovery::gained;
use super::source::{assign, kafka_error, partition_count};

/// Records taken per poll round.
const MAX_RECORDS_PER_POLL: usize = 16_384;
/// Sleep when nothing arrived, before reporting idle.
const IDLE_SLEEP: Duration = Duration::from_millis(10);

/// One subtask's reader.
pub(super) struct KafkaReader {
    pub(super) consumer: Arc<BaseConsumer>,
    pub(super) topic: String,
    /// Which partitions are ours as the topic grows (`None`: a fixed list).
    pub(super) owner: Option<Assignment>,
    /// Per partition read: the offset of the next record to take from the client.
    pub(super) next: BTreeMap<u32, i64>,
    /// Per partition: the offset after the last record handed to the runtime (what a
    /// checkpoint may store; records still in `pending` are not in it).
    pub(super) emitted: BTreeMap<u32, i64>,
    /// Timestamp startup: records before the time are dropped until one at or after it.
    pub(super) floors: HashMap<u32, i64>,
    pub(super) decoder: Decoder,
    pub(super) skip_bad: bool,
    /// Polls not handed out yet, each with the position its partition reaches after it.
    pub(super) pending: VecDeque<(SourcePoll, Option<(u32, i64)>)>,
    pub(super) discovery_interval: Duration,
    pub(super) discovered_at: Instant,
    /// Partitions the client last reported at their end (no record taken since).
    pub(super) at_end: BTreeSet<u32>,
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
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    self.at_end.insert(p as u32);
                    continue;
                }
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
            self.at_end.remove(&p);
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

    fn caught_up(&self, partition: u32) -> bool {
        let pending = self.pending.iter().any(|(poll, _)| match poll {
            SourcePoll::Batch { partition: p, .. } | SourcePoll::Rejected { partition: p, .. } => {
                *p == partition
            }
            _ => false,
        });
        self.at_end.contains(&partition) && !pending
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
