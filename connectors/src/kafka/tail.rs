//! Finding what a sink already wrote to a partition: the last record carrying its id.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use runnel_runtime::{Epoch, Error, Result};
use tokio::time::Instant;

/// Header names of a sink's records.
pub const SINK_HEADER: &str = "runnel.sink";
pub const GENERATION_HEADER: &str = "runnel.generation";
pub const EPOCH_HEADER: &str = "runnel.epoch";
pub const SEQ_HEADER: &str = "runnel.seq";
pub const SUBTASK_HEADER: &str = "runnel.subtask";

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading one window of a partition's tail may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Records read back first; the window grows fourfold while none of ours is found.
const FIRST_WINDOW: i64 = 256;

/// Where a sink's last record in a partition is in its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub generation: u64,
    pub epoch: Epoch,
    /// Position of the record among the epoch's records of the partition, from 0.
    pub seq: u64,
}

fn header<'a>(message: &'a BorrowedMessage<'_>, key: &str) -> Option<&'a str> {
    let headers = message.headers()?;
    headers
        .iter()
        .filter(|h| h.key == key)
        .last()
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}

/// The mark of `message` if `sink` wrote it.
fn mark_of(message: &BorrowedMessage<'_>, sink: &str) -> Option<Mark> {
    if header(message, SINK_HEADER)? != sink {
        return None;
    }
    Some(Mark {
        generation: header(message, GENERATION_HEADER)?.parse().ok()?,
        epoch: header(message, EPOCH_HEADER)?.parse().ok()?,
        seq: header(message, SEQ_HEADER)?.parse().ok()?,
    })
}

/// The last record `sink` wrote to `partition` of `topic`, reading back from the end in
/// growing windows (other writers' records may follow it). Blocking.
///
/// `known_end` is the partition's end right after this sink instance's previous commit
/// wrote everything it had: if the partition still ends there, no record of a later
/// epoch can be in it, and `None` is the answer without reading (one offsets request
/// instead of a fetch per commit).
pub(crate) fn last_mark(
    consumer: &BaseConsumer,
    topic: &str,
    partition: u32,
    sink: &str,
    known_end: Option<i64>,
) -> Result<Option<Mark>> {
    let context = || format!("reading back kafka topic {topic} partition {partition}");
    let (low, high) = consumer
        .fetch_watermarks(topic, partition as i32, REQUEST_TIMEOUT)
        .map_err(|e| Error::external(context(), e))?;
    if known_end == Some(high) {
        return Ok(None);
    }
    let (mut end, mut window) = (high, FIRST_WINDOW);
    while end > low {
        let start = (end - window).max(low);
        let found = read_window(consumer, topic, partition, start, end, sink)
            .map_err(|e| Error::external(context(), e))?;
        if found.is_some() {
            return Ok(found);
        }
        end = start;
        window = window.saturating_mul(4);
    }
    Ok(None)
}

/// The last mark of `sink` among the records in `[start, end)`.
fn read_window(
    consumer: &BaseConsumer,
    topic: &str,
    partition: u32,
    start: i64,
    end: i64,
    sink: &str,
) -> Result<Option<Mark>, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition as i32, Offset::Offset(start))?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut found = None;
    let result = loop {
        if Instant::now() > deadline {
            break Err(KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(_))) => break Ok(()),
            Some(Err(e)) => break Err(e),
            Some(Ok(message)) => {
                let offset = message.offset();
                if offset >= start && offset < end {
                    found = mark_of(&message, sink).or(found);
                }
                if offset >= end - 1 {
                    break Ok(());
                }
            }
        }
    };
    consumer.unassign()?;
    result.map(|()| found)
}
