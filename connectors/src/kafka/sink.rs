//! The Kafka sink: exactly once on any Kafka-protocol broker, without transactions.
//!
//! Phase 1 keeps each subtask's rows with the checkpoint (the runtime stores them).
//! Phase 2 ([`Sink::commit`], once the checkpoint is durable) turns the epoch's rows into
//! records in a fixed order (subtask, then row), places each in a partition (by the key
//! column's murmur2 hash as Kafka's default partitioner does, else round-robin from the
//! subtask, over the partition count recorded in phase 1), numbers them per partition,
//! and writes them with the idempotent producer, each with the headers `runnel.sink`,
//! `runnel.generation`, `runnel.epoch`, `runnel.seq`, `runnel.subtask`.
//!
//! Committing an epoch again (after a crash in phase 2, the job resumes from it) first
//! reads back each partition's last record of this sink: an older epoch means none of
//! this epoch's records reached the partition; the same epoch means records `0..=seq`
//! did (the idempotent producer writes a partition's records in order, so what arrived
//! is a prefix) and only the rest are written; a newer writer generation means a newer
//! instance of the job took over, and this one is fenced.
//!
//! Every commit asks each partition's end offset first: when this instance's previous
//! commit wrote everything and the partition still ends where that commit left it,
//! nothing of this epoch (and no newer writer) is there, and the read-back is skipped.
//!
//! What remains: two instances committing the same epoch at the same moment (a zombie
//! the supervisor has not stopped yet, both past their read-back) could both write the
//! missing suffix. The job's checkpoint chain fences the old instance at its next
//! checkpoint, and the generation headers let a reader drop the older generation's
//! records; brokers with transactions could close this window, which this sink does
//! not depend on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::json::LineDelimitedWriter;
use async_trait::async_trait;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use runnel_runtime::{Epoch, Error, PreCommit, Result, Sink, SinkWriter, Staged};
use serde_json::json;
use tokio::sync::OnceCell;

use super::options::KafkaSinkOptions;
use super::partitioner::murmur2_partition;
use super::source::partition_count;
use super::tail::{
    EPOCH_HEADER, GENERATION_HEADER, Mark, SEQ_HEADER, SINK_HEADER, SUBTASK_HEADER, last_mark,
};

/// How long the producer may take to deliver an epoch's records.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// A Kafka topic as an exactly-once runnel sink.
pub struct KafkaSink {
    options: KafkaSinkOptions,
    sink_id: String,
    key_column: Option<usize>,
    partitions: u32,
    producer: OnceCell<FutureProducer>,
    /// Reads partitions back before a re-commit (blocking calls, off the async workers).
    reader: Arc<BaseConsumer>,
    /// What this instance's last commit wrote completely, if it did.
    written: std::sync::Mutex<Option<Written>>,
}

/// The epoch a commit wrote completely and, per partition, the offset after its last
/// record: a later epoch finding a partition still ending there needs no read-back.
#[derive(Debug, Clone)]
struct Written {
    epoch: Epoch,
    ends: BTreeMap<u32, i64>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.options.broker.topic)
            .field("sink_id", &self.sink_id)
            .finish()
    }
}

impl KafkaSink {
    /// Checks the topic exists and the key column is one of `schema`'s. `sink_id` must
    /// stay the same across restarts of the job (e.g. `"{job}.kafka"`).
    pub async fn connect(
        options: KafkaSinkOptions,
        sink_id: &str,
        schema: &SchemaRef,
    ) -> Result<Self> {
        let key_column = match &options.key {
            Some(column) => Some(schema.index_of(column).map_err(|_| {
                Error::Plan(format!(
                    "key.fields: the sink's rows have no column `{column}`"
                ))
            })?),
            None => None,
        };
        let consumer: BaseConsumer = options
            .broker
            .client(&[
                ("group.id", &format!("{sink_id}.readback")),
                ("enable.partition.eof", "true"),
                ("enable.auto.commit", "false"),
                ("fetch.wait.max.ms", "100"),
            ])
            .create()
            .map_err(|e| Error::external("kafka consumer", e))?;
        let consumer = Arc::new(consumer);
        let partitions = partition_count(consumer.clone(), &options.broker.topic).await?;
        Ok(KafkaSink {
            options,
            sink_id: sink_id.to_string(),
            key_column,
            partitions,
            producer: OnceCell::new(),
            reader: consumer,
            written: std::sync::Mutex::new(None),
        })
    }

    async fn producer(&self) -> Result<&FutureProducer> {
        self.producer
            .get_or_try_init(|| async {
                self.options
                    .broker
                    .client(&[
                        ("enable.idempotence", "true"),
                        ("acks", "all"),
                        ("linger.ms", "5"),
                        ("compression.type", "none"),
                    ])
                    .create()
                    .map_err(|e| Error::external("kafka producer", e))
            })
            .await
    }

    /// What of each partition's records is already in the topic; `ends` are the
    /// partition ends this instance's earlier commits left.
    async fn marks(
        &self,
        partitions: Vec<u32>,
        ends: BTreeMap<u32, i64>,
    ) -> Result<BTreeMap<u32, Mark>> {
        let consumer = self.reader.clone();
        let (topic, sink) = (self.options.broker.topic.clone(), self.sink_id.clone());
        tokio::task::spawn_blocking(move || {
            let mut marks = BTreeMap::new();
            for p in partitions {
                let known_end = ends.get(&p).copied();
                if let Some(mark) = last_mark(&consumer, &topic, p, &sink, known_end)? {
                    marks.insert(p, mark);
                }
            }
            Ok(marks)
        })
        .await
        .map_err(|e| Error::Internal(format!("kafka read-back: {e}")))?
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Internal("kafka sink: a commit panicked".into())
}

impl KafkaSink {
    /// The headers that tell which sink, writer generation, epoch, place in the epoch's
    /// records of its partition and subtask a record comes from.
    fn headers(&self, generation: u64, epoch: Epoch, seq: usize, subtask: usize) -> OwnedHeaders {
        let values = [
            (GENERATION_HEADER, generation.to_string()),
            (EPOCH_HEADER, epoch.to_string()),
            (SEQ_HEADER, seq.to_string()),
            (SUBTASK_HEADER, subtask.to_string()),
        ];
        let sink = OwnedHeaders::new().insert(Header {
            key: SINK_HEADER,
            value: Some(&self.sink_id),
        });
        values.iter().fold(sink, |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value),
            })
        })
    }
}

/// One record to write.
struct Out {
    key: Option<String>,
    value: Vec<u8>,
    subtask: usize,
}

/// Rows of `batch` as JSON lines.
fn json_lines(batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
    let mut writer = LineDelimitedWriter::new(Vec::new());
    writer.write(batch)?;
    writer.finish()?;
    let text = writer.into_inner();
    Ok(text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

impl KafkaSink {
    /// The epoch's records per partition, in their fixed order.
    fn records(&self, mut staged: Vec<Staged>) -> Result<BTreeMap<u32, Vec<Out>>> {
        staged.sort_by_key(|s| s.subtask);
        let mut out: BTreeMap<u32, Vec<Out>> = BTreeMap::new();
        for s in staged {
            let partitions = s.pre_commit.meta["partitions"]
                .as_u64()
                .map_or(self.partitions, |p| p as u32)
                .max(1);
            let mut row = 0usize;
            for batch in &s.pre_commit.batches {
                let values = json_lines(batch)?;
                let keys = match self.key_column {
                    Some(i) => Some(cast(batch.column(i), &DataType::Utf8)?),
                    None => None,
                };
                let keys = keys
                    .as_ref()
                    .and_then(|k| k.as_any().downcast_ref::<StringArray>());
                for (i, value) in values.into_iter().enumerate() {
                    let key = keys.and_then(|k| k.is_valid(i).then(|| k.value(i).to_string()));
                    let partition = match &key {
                        Some(k) => murmur2_partition(k.as_bytes(), partitions),
                        None => ((s.subtask + row) % partitions as usize) as u32,
                    };
                    row += 1;
                    out.entry(partition).or_default().push(Out {
                        key,
                        value,
                        subtask: s.subtask,
                    });
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Sink for KafkaSink {
    async fn open(&self, _subtask: usize, _parallelism: usize) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(KafkaWriter {
            partitions: self.partitions,
            batches: Vec::new(),
        }))
    }

    async fn commit(&self, epoch: Epoch, generation: u64, staged: Vec<Staged>) -> Result<()> {
        let records = self.records(staged)?;
        if records.is_empty() {
            return Ok(());
        }
        // Taken out for the commit: an error on the way leaves none, so the next commit
        // reads back.
        let previous = self.written.lock().map_err(poisoned)?.take();
        let mut ends = previous
            .filter(|w| w.epoch < epoch)
            .map(|w| w.ends)
            .unwrap_or_default();
        let marks = match self.options.exactly_once {
            true => {
                let partitions = records.keys().copied().collect();
                self.marks(partitions, ends.clone()).await?
            }
            false => BTreeMap::new(),
        };
        let producer = self.producer().await?;
        let topic = &self.options.broker.topic;
        let mut deliveries = Vec::new();
        for (partition, outs) in &records {
            let skip = match marks.get(partition) {
                Some(mark) if generation > 0 && mark.generation > generation => {
                    return Err(Error::Fenced(format!(
                        "kafka topic {topic} partition {partition} holds records of writer \
                         generation {} (this is {generation})",
                        mark.generation
                    )));
                }
                Some(mark) if mark.epoch > epoch => outs.len(),
                Some(mark) if mark.epoch == epoch => (mark.seq + 1) as usize,
                _ => 0,
            };
            for (seq, out) in outs.iter().enumerate().skip(skip) {
                let headers = self.headers(generation, epoch, seq, out.subtask);
                let mut record = FutureRecord::to(topic)
                    .partition(*partition as i32)
                    .payload(&out.value)
                    .headers(headers);
                if let Some(key) = &out.key {
                    record = record.key(key);
                }
                let delivery = producer.send_result(record).map_err(|(e, _)| {
                    Error::external(format!("writing to kafka topic {topic}"), e)
                })?;
                deliveries.push(delivery);
            }
        }
        for delivery in deliveries {
            let outcome = tokio::time::timeout(DELIVERY_TIMEOUT, delivery)
                .await
                .map_err(|_| {
                    Error::external(format!("kafka topic {topic}"), "delivery timed out")
                })?;
            let delivered = outcome
                .map_err(|_| Error::external(format!("kafka topic {topic}"), "producer went away"))?
                .map_err(|(e, _)| Error::external(format!("writing to kafka topic {topic}"), e))?;
            let end = ends.entry(delivered.partition as u32).or_insert(0);
            *end = (*end).max(delivered.offset + 1);
        }
        *self.written.lock().map_err(poisoned)? = Some(Written { epoch, ends });
        Ok(())
    }
}

/// One subtask's writer: keeps the epoch's rows for the checkpoint.
struct KafkaWriter {
    partitions: u32,
    batches: Vec<RecordBatch>,
}

#[async_trait]
impl SinkWriter for KafkaWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() > 0 {
            self.batches.push(batch);
        }
        Ok(())
    }

    async fn pre_commit(&mut self, _epoch: Epoch) -> Result<PreCommit> {
        Ok(PreCommit {
            meta: json!({ "partitions": self.partitions }),
            batches: std::mem::take(&mut self.batches),
        })
    }
}
