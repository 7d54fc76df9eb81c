//! Options of the Nexmark generator and how they map onto the `nexmark` crate.
//!
//! **Seeds.** The `nexmark` crate (0.2) draws every event's fields from a `SmallRng` seeded
//! with the event's *id*, `first_event_id + event_number`; it takes no other seed. A seed
//! therefore selects a disjoint window of event ids: `first_event_id = seed *
//! SEED_STRIDE_EVENTS`. Seed 0 is the canonical Nexmark stream (ids from 1000, identical to
//! nexmark-rs and RisingWave's generator); seed `s` is a different, equally valid stream
//! whose person and auction ids start near `s * 2^32`. Streams of different seeds share no
//! event for their first [`SEED_STRIDE_EVENTS`] events. The stride is a multiple of the
//! 50-event proportion cycle, so event types and ids stay consistent with each other
//! (a bid always refers to an auction and bidder of its own stream).
//!
//! **Event time.** `events_per_second` is Nexmark's event rate: event number `n` of the
//! global stream (all three tables, 1 person : 3 auctions : 46 bids) has time
//! `base_time + round(n * 1000 / events_per_second)` ms, computed exactly in integers (the
//! crate computes it in `f32`, which loses whole milliseconds after ~2^24 events; auction
//! `expires` keeps the crate's auction length on top of the exact time). It says nothing
//! about how fast events are produced in processing time; see
//! `NexmarkSource::with_rate_limit` for that.
//!
//! **Out of order.** With `out_of_order_group_size = g > 1`, the rows of each table are
//! permuted inside consecutive groups of `g` rows (Nexmark's `953 * n mod g` shuffle, applied
//! per table because the crate ignores its own shuffle for single-table streams). Every row
//! still appears exactly once and lags the largest earlier event time by at most
//! [`NexmarkOptions::max_out_of_orderness`].

use std::time::Duration;

use nexmark::config::{NexmarkConfig, RateShape};
use runnel_runtime::{Error, Result};

use super::schema::NexmarkTable;

/// Events in one Nexmark proportion cycle (1 person + 3 auctions + 46 bids).
pub(crate) const CYCLE_EVENTS: u64 = 50;

/// Width of each seed's window of event ids: 50 * 2^32 (about 2.1e11 events).
pub const SEED_STRIDE_EVENTS: u64 = CYCLE_EVENTS << 32;

/// Largest accepted seed; one stride below the end of the id space keeps ids from
/// overflowing `u64` (and person/auction ids within `BIGINT`).
pub const MAX_SEED: u64 = u64::MAX / SEED_STRIDE_EVENTS - 2;

/// Largest accepted batch size (rows).
pub const MAX_BATCH_SIZE: usize = 1 << 20;

/// Multiplier of Nexmark's out-of-order shuffle (a prime).
const SHUFFLE_PRIME: u64 = 953;

/// How to generate a Nexmark stream. Two generators with equal options produce identical
/// batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexmarkOptions {
    /// Selects the stream; see the module docs. At most [`MAX_SEED`].
    pub seed: u64,
    /// Event time of the first event, in milliseconds since the Unix epoch (`>= 0`).
    pub base_time_millis: i64,
    /// Event-time rate: events (of all three tables together) per second of event time.
    pub events_per_second: u64,
    /// Rows generated per table over all partitions; `None` is unbounded.
    pub max_events: Option<u64>,
    /// Rows per generated batch.
    pub batch_size: usize,
    /// Number of partitions the stream is split into (partition `p` of `N` generates
    /// rows `p, p + N, p + 2N, ...` of each table).
    pub partitions: usize,
    /// Rows of a table are shuffled within groups of this size; 1 keeps them in order.
    /// Must not be a multiple of 953 (the shuffle would not be a permutation).
    pub out_of_order_group_size: u64,
}

impl Default for NexmarkOptions {
    /// Seed 0, a fixed base time (2023-11-14T22:13:20Z, so runs are reproducible),
    /// 10,000 events per second (Nexmark's default), unbounded, 4096-row batches, one
    /// partition, in order.
    fn default() -> Self {
        NexmarkOptions {
            seed: 0,
            base_time_millis: 1_700_000_000_000,
            events_per_second: 10_000,
            max_events: None,
            batch_size: 4096,
            partitions: 1,
            out_of_order_group_size: 1,
        }
    }
}

impl NexmarkOptions {
    /// Checks the options; every error is [`Error::Plan`].
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Plan(format!("nexmark: {msg}")));
        if self.seed > MAX_SEED {
            return fail(format!("seed {} exceeds the maximum {MAX_SEED}", self.seed));
        }
        if self.base_time_millis < 0 {
            return fail(format!(
                "base_time_millis must be >= 0, got {}",
                self.base_time_millis
            ));
        }
        if self.events_per_second == 0 || usize::try_from(self.events_per_second).is_err() {
            return fail(format!(
                "events_per_second must be positive, got {}",
                self.events_per_second
            ));
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return fail(format!(
                "batch_size must be in 1..={MAX_BATCH_SIZE}, got {}",
                self.batch_size
            ));
        }
        if self.partitions == 0 || u32::try_from(self.partitions).is_err() {
            return fail(format!(
                "partitions must be in 1..=u32::MAX, got {}",
                self.partitions
            ));
        }
        let g = self.out_of_order_group_size;
        if g == 0 || g.is_multiple_of(SHUFFLE_PRIME) {
            return fail(format!(
                "out_of_order_group_size must be positive and not a multiple of {SHUFFLE_PRIME}, got {g}"
            ));
        }
        Ok(())
    }

    /// The `nexmark` crate configuration for these options (assumes `validate` passed).
    pub(crate) fn config(&self) -> NexmarkConfig {
        let rate = usize::try_from(self.events_per_second).unwrap_or(usize::MAX);
        NexmarkConfig {
            first_event_id: usize::try_from(self.seed.saturating_mul(SEED_STRIDE_EVENTS))
                .unwrap_or(usize::MAX),
            first_event_number: 0,
            base_time: u64::try_from(self.base_time_millis).unwrap_or(0),
            // A constant rate: one inter-event delay, no rate shape.
            rate_shape: RateShape::Square,
            first_rate: rate,
            next_rate: rate,
            us_per_unit: 1_000_000,
            num_event_generators: 1,
            // The crate's shuffle does not apply to single-table streams; ours does.
            out_of_order_group_size: 1,
            ..NexmarkConfig::default()
        }
    }

    /// Rows partition `partition` generates of each table, or `None` when unbounded.
    pub fn partition_rows(&self, partition: usize) -> Option<u64> {
        let max = self.max_events?;
        let (p, n) = (partition as u64, self.partitions.max(1) as u64);
        Some(if max > p { (max - p).div_ceil(n) } else { 0 })
    }

    /// The row of the in-order table stream emitted at position `row` of the shuffled one.
    pub(crate) fn shuffle(&self, row: u64) -> u64 {
        let g = self.out_of_order_group_size.max(1);
        let within = (u128::from(row % g) * u128::from(SHUFFLE_PRIME % g)) % u128::from(g);
        // `within < g`, so it fits in u64.
        (row / g) * g + u64::try_from(within).unwrap_or(0)
    }

    /// Event time of event number `event_number` of the global stream, in milliseconds.
    pub fn event_time_millis(&self, event_number: u64) -> i64 {
        let eps = u128::from(self.events_per_second.max(1));
        let offset = (u128::from(event_number) * 1000 + eps / 2) / eps;
        let base = self.base_time_millis.max(0) as u128;
        i64::try_from(base + offset).unwrap_or(i64::MAX)
    }

    /// An upper bound on how far a row's event time can lag behind the largest event time
    /// of the rows before it in the same table stream (for a watermark strategy): zero
    /// when in order, else the event-time span of one shuffle group plus one cycle.
    pub fn max_out_of_orderness(&self, table: NexmarkTable) -> Duration {
        let g = self.out_of_order_group_size.max(1);
        if g == 1 {
            return Duration::ZERO;
        }
        let per_cycle = match table {
            NexmarkTable::Bid => 46,
            NexmarkTable::Auction => 3,
            NexmarkTable::Person => 1,
        };
        let events = ((g - 1) / per_cycle + 2).saturating_mul(CYCLE_EVENTS);
        let micros = events.saturating_mul(1_000_000) / self.events_per_second.max(1);
        Duration::from_millis(micros / 1000 + 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportions_match_the_crate() {
        let cfg = NexmarkConfig::default();
        let cycle = cfg.person_proportion + cfg.auction_proportion + cfg.bid_proportion;
        assert_eq!(cycle as u64, CYCLE_EVENTS);
        assert_eq!(
            (
                cfg.person_proportion,
                cfg.auction_proportion,
                cfg.bid_proportion
            ),
            (1, 3, 46)
        );
    }

    #[test]
    fn invalid_options_are_plan_errors() {
        let ok = NexmarkOptions::default();
        assert!(ok.validate().is_ok());
        let bad = [
            NexmarkOptions {
                seed: MAX_SEED + 1,
                ..ok.clone()
            },
            NexmarkOptions {
                base_time_millis: -1,
                ..ok.clone()
            },
            NexmarkOptions {
                events_per_second: 0,
                ..ok.clone()
            },
            NexmarkOptions {
                batch_size: 0,
                ..ok.clone()
            },
            NexmarkOptions {
                batch_size: MAX_BATCH_SIZE + 1,
                ..ok.clone()
            },
            NexmarkOptions {
                partitions: 0,
                ..ok.clone()
            },
            NexmarkOptions {
                out_of_order_group_size: 0,
                ..ok.clone()
            },
            NexmarkOptions {
                out_of_order_group_size: 953 * 2,
                ..ok.clone()
            },
        ];
        for options in bad {
            assert!(
                matches!(options.validate(), Err(Error::Plan(_))),
                "{options:?}"
            );
        }
        let max = NexmarkOptions {
            seed: MAX_SEED,
            ..ok
        };
        assert!(max.validate().is_ok());
    }

    #[test]
    fn shuffle_is_a_permutation_within_groups() {
        for g in [1u64, 2, 7, 100, 954, 1000] {
            let options = NexmarkOptions {
                out_of_order_group_size: g,
                ..Default::default()
            };
            let n = 3 * g;
            let mut seen = vec![false; n as usize];
            for row in 0..n {
                let to = options.shuffle(row);
                assert_eq!(to / g, row / g, "g={g} row={row}");
                assert!(!seen[to as usize], "g={g}: {to} twice");
                seen[to as usize] = true;
            }
            if g == 1 {
                assert!((0..n).all(|r| options.shuffle(r) == r));
            }
        }
    }

    #[test]
    fn partition_rows_split_the_bound() {
        let options = NexmarkOptions {
            max_events: Some(10),
            partitions: 4,
            ..Default::default()
        };
        let rows: Vec<_> = (0..4).map(|p| options.partition_rows(p).unwrap()).collect();
        assert_eq!(rows, vec![3, 3, 2, 2]);
        let few = NexmarkOptions {
            max_events: Some(2),
            partitions: 4,
            ..Default::default()
        };
        assert_eq!(few.partition_rows(3), Some(0));
        assert_eq!(NexmarkOptions::default().partition_rows(0), None);
    }
}
