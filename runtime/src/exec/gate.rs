//! The input side of a subtask: merges its input channels, aligns watermarks and barriers.
//!
//! - The watermark handed to the operator is the minimum over the channels that are
//!   neither ended nor idle, and it never goes backwards.
//! - A channel that delivered `Barrier(e)` is not read again until every open channel has
//!   delivered it (aligned checkpoints): what follows the barrier belongs to the next epoch.
//! - Channels are polled round-robin so one busy upstream cannot starve another.
//! - Every message taken is counted out of the subtask's input queue, which its senders
//!   counted it into ([`crate::metrics`]).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc::Receiver;

use crate::message::{Epoch, Message, Millis, WATERMARK_START};
use crate::metrics::SubtaskMetrics;

/// What the gate hands to the subtask loop.
#[derive(Debug)]
pub(crate) enum GateEvent {
    Batch(usize, RecordBatch),
    Watermark(Millis),
    /// Every open input is idle.
    Idle,
    Barrier(Epoch),
    /// Every input ended.
    End,
    /// An upstream subtask went away without `End`: it failed or the job is being torn down.
    Broken,
}

struct Channel {
    input: usize,
    rx: Receiver<Message>,
    watermark: Millis,
    idle: bool,
    ended: bool,
    blocked_by: Option<Epoch>,
}

pub(crate) struct InputGate {
    channels: Vec<Channel>,
    next: usize,
    watermark: Millis,
    idle: bool,
    pending: VecDeque<GateEvent>,
    /// The counters of the subtask the gate feeds.
    metrics: Arc<SubtaskMetrics>,
}

impl InputGate {
    /// A gate over `(input index, receiver)` pairs of the subtask counted in `metrics`.
    pub(crate) fn new(
        receivers: Vec<(usize, Receiver<Message>)>,
        metrics: Arc<SubtaskMetrics>,
    ) -> Self {
        InputGate {
            channels: receivers
                .into_iter()
                .map(|(input, rx)| Channel {
                    input,
                    rx,
                    watermark: WATERMARK_START,
                    idle: false,
                    ended: false,
                    blocked_by: None,
                })
                .collect(),
            next: 0,
            watermark: WATERMARK_START,
            idle: false,
            pending: VecDeque::new(),
            metrics,
        }
    }

    /// Starts from a watermark the subtask had reached before a restore: later watermarks
    /// below it are not announced again.
    pub(crate) fn restore_watermark(&mut self, watermark: Millis) {
        self.watermark = self.watermark.max(watermark);
        for channel in &mut self.channels {
            channel.watermark = channel.watermark.max(watermark);
        }
    }

    /// The watermark handed to the subtask so far.
    pub(crate) fn watermark(&self) -> Millis {
        self.watermark
    }

    /// The next event for the subtask.
    pub(crate) async fn next(&mut self) -> GateEvent {
        if self.channels.is_empty() {
            return GateEvent::End;
        }
        loop {
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
            let (index, message) = poll_fn(|cx| {
                let n = self.channels.len();
                for k in 0..n {
                    let i = (self.next + k) % n;
                    let ch = &mut self.channels[i];
                    if ch.ended || ch.blocked_by.is_some() {
                        continue;
                    }
                    if let Poll::Ready(message) = ch.rx.poll_recv(cx) {
                        self.next = (i + 1) % n;
                        return Poll::Ready((i, message));
                    }
                }
                Poll::Pending
            })
            .await;
            self.handle(index, message);
        }
    }

    fn handle(&mut self, index: usize, message: Option<Message>) {
        if message.is_some() {
            self.metrics.input_queued.fetch_sub(1, Ordering::Relaxed);
        }
        let ch = &mut self.channels[index];
        match message {
            None => self.pending.push_back(GateEvent::Broken),
            Some(Message::Batch(batch)) => {
                ch.idle = false;
                self.idle = false;
                self.pending.push_back(GateEvent::Batch(ch.input, batch));
            }
            Some(Message::Watermark(w)) => {
                ch.idle = false;
                ch.watermark = ch.watermark.max(w);
                self.update_watermark();
            }
            Some(Message::Idle) => {
                ch.idle = true;
                self.update_watermark();
            }
            Some(Message::Barrier(epoch)) => {
                ch.blocked_by = Some(epoch);
                self.check_alignment();
            }
            Some(Message::End) => {
                ch.ended = true;
                self.update_watermark();
                self.check_alignment();
                if self.channels.iter().all(|c| c.ended) {
                    self.pending.push_back(GateEvent::End);
                }
            }
        }
    }

    fn update_watermark(&mut self) {
        let open = self.channels.iter().filter(|c| !c.ended);
        let active: Vec<Millis> = open
            .clone()
            .filter(|c| !c.idle)
            .map(|c| c.watermark)
            .collect();
        match active.iter().min() {
            Some(&min) if min > self.watermark => {
                self.watermark = min;
                self.idle = false;
                self.pending.push_back(GateEvent::Watermark(min));
            }
            Some(_) => {}
            None if open.count() > 0 && !self.idle => {
                self.idle = true;
                self.pending.push_back(GateEvent::Idle);
            }
            None => {}
        }
    }

    fn check_alignment(&mut self) {
        let Some(epoch) = self.channels.iter().find_map(|c| c.blocked_by) else {
            return;
        };
        if self
            .channels
            .iter()
            .all(|c| c.ended || c.blocked_by.is_some())
        {
            for c in &mut self.channels {
                c.blocked_by = None;
            }
            self.pending.push_back(GateEvent::Barrier(epoch));
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc::channel;

    use super::*;

    fn wm(event: GateEvent) -> Millis {
        match event {
            GateEvent::Watermark(w) => w,
            other => panic!("expected a watermark, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn watermark_is_the_minimum_and_idle_inputs_do_not_hold_it() {
        let (a, ra) = channel(8);
        let (b, rb) = channel(8);
        let mut gate = InputGate::new(vec![(0, ra), (0, rb)], Arc::default());
        a.send(Message::Watermark(10)).await.unwrap();
        b.send(Message::Watermark(5)).await.unwrap();
        assert_eq!(wm(gate.next().await), 5);
        b.send(Message::Idle).await.unwrap();
        assert_eq!(wm(gate.next().await), 10);
        a.send(Message::Idle).await.unwrap();
        assert!(matches!(gate.next().await, GateEvent::Idle));
        b.send(Message::Watermark(20)).await.unwrap();
        assert_eq!(wm(gate.next().await), 20);
        // a is idle; b ending leaves only idle inputs, then a ends too
        b.send(Message::End).await.unwrap();
        assert!(matches!(gate.next().await, GateEvent::Idle));
        a.send(Message::End).await.unwrap();
        assert!(matches!(gate.next().await, GateEvent::End));
    }

    #[tokio::test]
    async fn barrier_blocks_a_channel_until_all_have_it() {
        let (a, ra) = channel(8);
        let (b, rb) = channel(8);
        let mut gate = InputGate::new(vec![(0, ra), (1, rb)], Arc::default());
        a.send(Message::Barrier(1)).await.unwrap();
        let after = arrow::record_batch::RecordBatch::new_empty(std::sync::Arc::new(
            arrow::datatypes::Schema::empty(),
        ));
        a.send(Message::Batch(after)).await.unwrap();
        b.send(Message::Batch(RecordBatch::new_empty(std::sync::Arc::new(
            arrow::datatypes::Schema::empty(),
        ))))
        .await
        .unwrap();
        // b's batch comes first: a is blocked behind its barrier
        assert!(matches!(gate.next().await, GateEvent::Batch(1, _)));
        b.send(Message::Barrier(1)).await.unwrap();
        assert!(matches!(gate.next().await, GateEvent::Barrier(1)));
        assert!(matches!(gate.next().await, GateEvent::Batch(0, _)));
        drop(a);
        assert!(matches!(gate.next().await, GateEvent::Broken));
    }
}
