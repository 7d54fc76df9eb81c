//! A topic: a schema and N partitions, each an independent dense sequence of rows.
//!
//! [`Topic`] is a cheap handle (an `Arc`); every handle of one topic from one
//! [`EmbeddedLog`](super::EmbeddedLog) shares the partitions' segment indexes and
//! append locks. Appends are checked against the topic schema (names and types; schema
//! and field metadata are ignored) and stored with the topic's own schema, so readers
//! always see exactly the topic schema.

use std::fmt;
use std::sync::Arc;

use arrow::compute::concat_batches;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use object_store::ObjectStore;
use object_store::path::Path;
use runnel_runtime::{Epoch, Error, Result};

use super::names::partition_dir;
use super::partition::Partition;
use super::producer::ProducerSeq;
use super::segment;

/// The outcome of an append: the offsets its rows were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendAck {
    /// Partition appended to.
    pub partition: u32,
    /// Offset of the first row appended.
    pub base_offset: u64,
    /// Offset one past the last row appended: the end of the partition right after it.
    pub next_offset: u64,
    /// The append was a retry of one already in the log: nothing new was written and
    /// the offsets are those of the original append.
    pub duplicate: bool,
}

/// Rows read from a partition.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// The rows, in offset order, with the topic schema. Empty when caught up.
    pub batches: Vec<RecordBatch>,
    /// One entry per batch: the epoch whose exactly-once commit appended it
    /// ([`Topic::append_committed`]), or `None` for a plain append (and for segments
    /// written before the log recorded epochs).
    pub epochs: Vec<Option<Epoch>>,
    /// Offset of the row after the last one returned (where to read next).
    pub next_offset: u64,
}

/// A handle to a topic of an [`EmbeddedLog`](super::EmbeddedLog).
#[derive(Clone)]
pub struct Topic {
    inner: Arc<TopicInner>,
}

struct TopicInner {
    name: String,
    schema: SchemaRef,
    partitions: Vec<Partition>,
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.inner.name)
            .field("partitions", &self.inner.partitions.len())
            .finish()
    }
}

impl Topic {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        dir: &Path,
        name: &str,
        schema: SchemaRef,
        partitions: u32,
    ) -> Self {
        let partitions = (0..partitions)
            .map(|p| {
                let label = format!("{name}/{p}");
                let dir = partition_dir(dir, p);
                Partition::new(store.clone(), dir, label, p, schema.clone())
            })
            .collect();
        let name = name.to_owned();
        Topic {
            inner: Arc::new(TopicInner {
                name,
                schema,
                partitions,
            }),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The schema of every row of the topic.
    pub fn schema(&self) -> SchemaRef {
        self.inner.schema.clone()
    }

    /// Number of partitions.
    pub fn partitions(&self) -> u32 {
        self.inner.partitions.len() as u32
    }

    fn partition(&self, partition: u32) -> Result<&Partition> {
        self.inner
            .partitions
            .get(partition as usize)
            .ok_or_else(|| {
                Error::Plan(format!(
                    "topic {} has {} partitions; there is no partition {partition}",
                    self.inner.name,
                    self.inner.partitions.len()
                ))
            })
    }

    /// Appends `batches` to `partition` as one segment and returns once it is durable.
    ///
    /// With a `producer`, a retry (same producer id and sequence number) is acknowledged
    /// with the original offsets and `duplicate: true` instead of appending again; see
    /// [`ProducerSeq`] for the rules. An append of zero rows is refused.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::Int64Array;
    /// # use arrow::datatypes::{DataType, Field, Schema};
    /// # use arrow::record_batch::RecordBatch;
    /// # use object_store::{memory::InMemory, path::Path};
    /// # use runnel_connectors::log::{EmbeddedLog, ProducerSeq};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let log = EmbeddedLog::new(Arc::new(InMemory::new()), Path::from(""));
    /// let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    /// let topic = log.create_topic("numbers", 2, schema.clone()).await?;
    /// let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])?;
    /// let ack = topic.append(1, &[batch.clone()], Some(ProducerSeq::new("me", 0))).await?;
    /// assert_eq!((ack.base_offset, ack.next_offset), (0, 3));
    /// let retry = topic.append(1, &[batch], Some(ProducerSeq::new("me", 0))).await?;
    /// assert!(retry.duplicate && retry.base_offset == 0);
    /// let read = topic.read(1, 1, 100).await?;
    /// assert_eq!((read.batches[0].num_rows(), read.next_offset), (2, 3));
    /// # Ok::<_, runnel_runtime::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn append(
        &self,
        partition: u32,
        batches: &[RecordBatch],
        producer: Option<ProducerSeq>,
    ) -> Result<AppendAck> {
        self.append_segment(partition, batches, producer, None)
            .await
    }

    /// [`Topic::append`] for phase 2 of an exactly-once sink: the segment also records
    /// the checkpoint `epoch` that commits it, which readers get back in
    /// [`ReadResult::epochs`] (and [`Topic::first_offset_from_epoch`] searches). A retry
    /// acknowledged as a duplicate keeps the epoch of the original append.
    pub async fn append_committed(
        &self,
        partition: u32,
        batches: &[RecordBatch],
        producer: ProducerSeq,
        epoch: Epoch,
    ) -> Result<AppendAck> {
        self.append_segment(partition, batches, Some(producer), Some(epoch))
            .await
    }

    async fn append_segment(
        &self,
        partition: u32,
        batches: &[RecordBatch],
        producer: Option<ProducerSeq>,
        epoch: Option<Epoch>,
    ) -> Result<AppendAck> {
        let target = self.partition(partition)?;
        let schema = &self.inner.schema;
        let mut checked = Vec::with_capacity(batches.len());
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            checked.push(conform(schema, batch, &self.inner.name)?);
        }
        let rows: u64 = checked.iter().map(|b| b.num_rows() as u64).sum();
        if rows == 0 {
            return Err(Error::Data(format!(
                "an append to {}/{partition} must hold at least one row",
                self.inner.name
            )));
        }
        if checked.len() > 1 && segment::has_dictionaries(schema) {
            checked = vec![concat_batches(schema, &checked)?];
        }
        let payload = segment::encode(schema, &checked, rows, producer.as_ref(), epoch)?;
        target.append(payload, rows, producer.as_ref()).await
    }

    /// The offset the next row appended to `partition` will get, from a fresh listing.
    pub async fn end_offset(&self, partition: u32) -> Result<u64> {
        self.partition(partition)?.refresh().await
    }

    /// Reads up to `max_rows` rows of `partition` starting at offset `from`.
    ///
    /// Reads stop at the end this handle knows; a read starting there lists the
    /// partition again, so a tailing reader sees other writers' rows one call later.
    /// Returns no rows (and `next_offset == from`) when `from` is the end; an offset past
    /// the end is an error. Whole segments are fetched (several concurrently) and
    /// decoded zero-copy, then sliced to the requested range.
    pub async fn read(&self, partition: u32, from: u64, max_rows: usize) -> Result<ReadResult> {
        self.partition(partition)?.read(from, max_rows).await
    }

    /// The offset of the first row of `partition` committed by `epoch` or a later one
    /// (the end of the partition if none is yet), so a reader that has seen everything up
    /// to epoch `epoch - 1` resumes there. Rows of plain appends count as epoch 0. The
    /// search assumes epochs do not go down along a partition, as an exactly-once sink
    /// appends them; filter [`ReadResult::epochs`] as well where that is not certain.
    pub async fn first_offset_from_epoch(&self, partition: u32, epoch: Epoch) -> Result<u64> {
        self.partition(partition)?
            .first_offset_from_epoch(epoch)
            .await
    }

    /// The last sequence number `producer_id` appended to `partition`, so a restarted
    /// producer can continue its sequence.
    pub async fn last_producer_seq(
        &self,
        partition: u32,
        producer_id: &str,
    ) -> Result<Option<u64>> {
        self.partition(partition)?
            .last_producer_seq(producer_id)
            .await
    }
}

/// Checks `batch` against the topic schema and returns it carrying that schema.
pub(crate) fn conform(schema: &SchemaRef, batch: &RecordBatch, topic: &str) -> Result<RecordBatch> {
    check_schema(schema, &batch.schema(), topic)?;
    let options = RecordBatchOptions::new()
        .with_match_field_names(false)
        .with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), batch.columns().to_vec(), &options)
        .map_err(|e| Error::Data(format!("batch does not fit topic {topic}: {e}")))
}

fn check_schema(topic_schema: &Schema, batch: &Schema, topic: &str) -> Result<()> {
    let expected = topic_schema.fields();
    let got = batch.fields();
    if expected.len() != got.len() {
        let names =
            |s: &Schema| -> Vec<String> { s.fields().iter().map(|f| f.name().clone()).collect() };
        return Err(Error::Data(format!(
            "batch has columns {:?} but topic {topic} has {:?}",
            names(batch),
            names(topic_schema)
        )));
    }
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        if e.name() != g.name() {
            return Err(Error::Data(format!(
                "column {i} of the batch is {:?} but topic {topic} expects {:?}",
                g.name(),
                e.name()
            )));
        }
        if !e.data_type().equals_datatype(g.data_type()) {
            return Err(Error::Data(format!(
                "column {:?} has type {} but topic {topic} expects {}",
                e.name(),
                g.data_type(),
                e.data_type()
            )));
        }
    }
    Ok(())
}
