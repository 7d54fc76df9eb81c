//! The output side of a subtask: sends batches along its out-edges and broadcasts control
//! messages to every downstream channel.
//!
//! Every message is counted into the receiving subtask's input queue before it is sent
//! (the receiver counts it out), and a send that finds the channel full is timed: that
//! wait is the sender's time blocked by backpressure ([`crate::metrics`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::graph::Port;
use crate::keys::{hash_rows, key_group, subtask_for_key_group};
use crate::message::Message;
use crate::metrics::SubtaskMetrics;

/// How one out-edge picks the downstream subtask of a batch.
#[derive(Debug)]
pub(crate) enum Route {
    /// One downstream channel (forward at equal parallelism).
    Direct,
    /// Batches spread over the downstream channels in turn.
    RoundRobin { next: usize },
    /// Rows split by key group.
    Hash {
        columns: Vec<usize>,
        max_key_groups: u32,
    },
}

/// The sending end of one channel and the counters of the subtask it feeds.
#[derive(Debug)]
pub(crate) struct Outlet {
    pub(crate) tx: Sender<Message>,
    pub(crate) queue: Arc<SubtaskMetrics>,
}

/// One out-edge of a subtask: a route and one sender per downstream subtask it reaches.
#[derive(Debug)]
pub(crate) struct OutEdge {
    pub(crate) port: Port,
    pub(crate) route: Route,
    pub(crate) senders: Vec<Outlet>,
}

pub(crate) struct Router {
    edges: Vec<OutEdge>,
    metrics: Arc<SubtaskMetrics>,
    clock: Arc<dyn Clock>,
    hashes: Vec<u64>,
}

impl Router {
    pub(crate) fn new(
        edges: Vec<OutEdge>,
        metrics: Arc<SubtaskMetrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Router {
            edges,
            metrics,
            clock,
            hashes: Vec::new(),
        }
    }

    /// Sends `batch` on every edge of `port`.
    pub(crate) async fn send(&mut self, port: Port, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if port == Port::Main {
            self.metrics
                .rows_out
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        }
        let blocked = Blocked {
            clock: self.clock.as_ref(),
            total: &self.metrics,
        };
        for e in 0..self.edges.len() {
            if self.edges[e].port != port {
                continue;
            }
            let edge = &mut self.edges[e];
            match &mut edge.route {
                Route::Direct => {
                    let message = Message::Batch(batch.clone());
                    send(&edge.senders[0], message, &blocked).await?
                }
                Route::RoundRobin { next } => {
                    let i = *next % edge.senders.len();
                    *next = i + 1;
                    let message = Message::Batch(batch.clone());
                    send(&edge.senders[i], message, &blocked).await?;
                }
                Route::Hash {
                    columns,
                    max_key_groups,
                } => {
                    let parts = split_by_key(
                        &batch,
                        columns,
                        *max_key_groups,
                        edge.senders.len(),
                        &mut self.hashes,
                    )?;
                    for (target, part) in parts {
                        send(&edge.senders[target], Message::Batch(part), &blocked).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends a control message to every downstream channel.
    pub(crate) async fn broadcast(&mut self, message: Message) -> Result<()> {
        let blocked = Blocked {
            clock: self.clock.as_ref(),
            total: &self.metrics,
        };
        for edge in &self.edges {
            for sender in &edge.senders {
                send(sender, message.clone(), &blocked).await?;
            }
        }
        Ok(())
    }
}

/// Where a sender adds the time it waited for room.
struct Blocked<'a> {
    clock: &'a dyn Clock,
    total: &'a SubtaskMetrics,
}

/// Sends `message`, counting it into the receiver's queue first; waits for room if the
/// channel is full, and adds the wait to the sender's blocked time.
async fn send(outlet: &Outlet, message: Message, blocked: &Blocked<'_>) -> Result<()> {
    outlet.queue.input_queued.fetch_add(1, Ordering::Relaxed);
    let sent = match outlet.tx.try_send(message) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(message)) => {
            let start = blocked.clock.monotonic();
            let sent = outlet.tx.send(message).await.map_err(drop);
            let micros = blocked.clock.elapsed(start).as_micros();
            let micros = u64::try_from(micros).unwrap_or(u64::MAX);
            blocked
                .total
                .send_blocked_micros
                .fetch_add(micros, Ordering::Relaxed);
            sent
        }
        Err(TrySendError::Closed(_)) => Err(()),
    };
    // The receiver only goes away when its subtask stopped, which means the job is
    // failing or being cancelled; the cause is reported by that subtask.
    sent.map_err(|()| {
        outlet.queue.input_queued.fetch_sub(1, Ordering::Relaxed);
        Error::Cancelled
    })
}

/// Splits `batch` into one batch per downstream subtask by the key group of each row.
/// One hash pass, one counting sort of row indices, one `take`, then zero-copy slices.
pub(crate) fn split_by_key(
    batch: &RecordBatch,
    columns: &[usize],
    max_key_groups: u32,
    parallelism: usize,
    hashes: &mut Vec<u64>,
) -> Result<Vec<(usize, RecordBatch)>> {
    if parallelism == 1 {
        return Ok(vec![(0, batch.clone())]);
    }
    let keys: Vec<_> = columns.iter().map(|&c| batch.column(c).clone()).collect();
    hash_rows(&keys, hashes)?;
    let targets: Vec<u32> = hashes
        .iter()
        .map(|&h| {
            subtask_for_key_group(key_group(h, max_key_groups), max_key_groups, parallelism) as u32
        })
        .collect();
    let mut counts = vec![0usize; parallelism];
    for &t in &targets {
        counts[t as usize] += 1;
    }
    if let Some(only) = counts.iter().position(|&c| c == batch.num_rows()) {
        return Ok(vec![(only, batch.clone())]);
    }
    let mut starts = Vec::with_capacity(parallelism);
    let mut acc = 0;
    for &c in &counts {
        starts.push(acc);
        acc += c;
    }
    let mut cursor = starts.clone();
    let mut order = vec![0u32; targets.len()];
    for (row, &t) in targets.iter().enumerate() {
        order[cursor[t as usize]] = row as u32;
        cursor[t as usize] += 1;
    }
    let sorted = take_record_batch(batch, &UInt32Array::from(order))?;
    Ok((0..parallelism)
        .filter(|&t| counts[t] > 0)
        .map(|t| (t, sorted.slice(starts[t], counts[t])))
        .collect())
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    #[test]
    fn every_row_lands_once_in_the_subtask_of_its_key_group() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let keys: Vec<i64> = (0..1000).map(|i| (i * 7919) % 101).collect();
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(keys.clone()))]).unwrap();
        let mut scratch = Vec::new();
        let parts = split_by_key(&batch, &[0], 128, 3, &mut scratch).unwrap();
        let mut seen = Vec::new();
        for (target, part) in parts {
            let col = part.column(0).clone();
            let mut h = Vec::new();
            hash_rows(std::slice::from_ref(&col), &mut h).unwrap();
            for (v, h) in col.as_primitive::<Int64Type>().values().iter().zip(h) {
                assert_eq!(subtask_for_key_group(key_group(h, 128), 128, 3), target);
                seen.push(*v);
            }
        }
        let mut expected = keys;
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected);
    }
}
