//! Idempotent producers: deciding whether an append is new, a retry, or out of order.
//!
//! A producer tags each append with `(producer_id, seq)`. Per (partition, producer) the
//! log follows Kafka's rules:
//!
//! - the first sequence number seen from a producer is accepted, whatever it is;
//! - `seq == last + 1` appends;
//! - `seq <= last` is a retry of an earlier append: if it is one of the last
//!   [`DEDUP_WINDOW`] appends of that producer, the original acknowledgement is returned
//!   again (nothing is appended); older than that it is refused, since its offsets are no
//!   longer known;
//! - `seq > last + 1` is a gap (an append was lost in between) and is refused.
//!
//! The table is pure state plus a decision function, so every case is a unit test; the
//! partition rebuilds it from segment footers (which carry the producer of each segment)
//! and records each append it makes.

use std::collections::{HashMap, VecDeque};

/// How many recent appends per producer can be acknowledged again on retry.
pub const DEDUP_WINDOW: usize = 5;

/// Who sent an append and its position in that producer's sequence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProducerSeq {
    /// Stable identity of the producer, e.g. `"{job}-{subtask}"`.
    pub producer_id: String,
    /// Increases by one with every append the producer makes to a partition.
    pub seq: u64,
}

impl ProducerSeq {
    /// The `seq`-th append of `producer_id`.
    pub fn new(producer_id: impl Into<String>, seq: u64) -> Self {
        ProducerSeq {
            producer_id: producer_id.into(),
            seq,
        }
    }
}

/// One append of a producer: its sequence number and the offsets it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    pub seq: u64,
    pub base: u64,
    pub next: u64,
}

/// What to do with an append that carries a producer sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqDecision {
    /// New: append it.
    Append,
    /// Already appended: acknowledge these offsets again.
    Duplicate { base: u64, next: u64 },
    /// Older than the dedup window: its outcome is unknown, refuse it.
    TooOld { last_seq: u64 },
    /// Sequence numbers were skipped: refuse it.
    Gap { last_seq: u64 },
}

/// The recent appends of every producer of one partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerTable {
    producers: HashMap<String, VecDeque<Appended>>,
}

impl ProducerTable {
    /// Decides what to do with an append from `producer`.
    pub fn decide(&self, producer: &ProducerSeq) -> SeqDecision {
        let Some(recent) = self.producers.get(&producer.producer_id) else {
            return SeqDecision::Append;
        };
        let Some(last) = recent.back() else {
            return SeqDecision::Append;
        };
        if producer.seq > last.seq {
            return if producer.seq - last.seq == 1 {
                SeqDecision::Append
            } else {
                SeqDecision::Gap { last_seq: last.seq }
            };
        }
        match recent.iter().find(|a| a.seq == producer.seq) {
            Some(a) => SeqDecision::Duplicate {
                base: a.base,
                next: a.next,
            },
            None => SeqDecision::TooOld { last_seq: last.seq },
        }
    }

    /// Records an append of `producer_id`, keeping the last [`DEDUP_WINDOW`].
    pub fn record(&mut self, producer_id: &str, appended: Appended) {
        let recent = match self.producers.get_mut(producer_id) {
            Some(recent) => recent,
            None => self.producers.entry(producer_id.to_owned()).or_default(),
        };
        recent.push_back(appended);
        while recent.len() > DEDUP_WINDOW {
            recent.pop_front();
        }
    }

    /// The last sequence number appended by `producer_id`, if any.
    pub fn last_seq(&self, producer_id: &str) -> Option<u64> {
        self.producers
            .get(producer_id)
            .and_then(|r| r.back())
            .map(|a| a.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(table: &mut ProducerTable, id: &str, seq: u64, base: u64) {
        let appended = Appended {
            seq,
            base,
            next: base + 10,
        };
        table.record(id, appended);
    }

    #[test]
    fn first_sequence_number_of_a_producer_is_accepted() {
        let table = ProducerTable::default();
        assert_eq!(
            table.decide(&ProducerSeq::new("p", 17)),
            SeqDecision::Append
        );
        assert_eq!(table.last_seq("p"), None);
    }

    #[test]
    fn next_appends_retries_dedupe_and_gaps_are_refused() {
        let mut table = ProducerTable::default();
        for seq in 0..8 {
            record(&mut table, "p", seq, seq * 10);
        }
        assert_eq!(table.last_seq("p"), Some(7));
        assert_eq!(table.decide(&ProducerSeq::new("p", 8)), SeqDecision::Append);
        assert_eq!(
            table.decide(&ProducerSeq::new("p", 9)),
            SeqDecision::Gap { last_seq: 7 }
        );
        // The last DEDUP_WINDOW appends (3..=7) are acknowledged again.
        for seq in 3..8 {
            assert_eq!(
                table.decide(&ProducerSeq::new("p", seq)),
                SeqDecision::Duplicate {
                    base: seq * 10,
                    next: seq * 10 + 10
                }
            );
        }
        assert_eq!(
            table.decide(&ProducerSeq::new("p", 2)),
            SeqDecision::TooOld { last_seq: 7 }
        );
        // Producers are independent.
        assert_eq!(table.decide(&ProducerSeq::new("q", 3)), SeqDecision::Append);
    }

    #[test]
    fn the_largest_sequence_number_does_not_overflow() {
        let mut table = ProducerTable::default();
        record(&mut table, "p", u64::MAX, 0);
        assert_eq!(
            table.decide(&ProducerSeq::new("p", u64::MAX)),
            SeqDecision::Duplicate { base: 0, next: 10 }
        );
    }
}
