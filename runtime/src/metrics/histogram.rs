//! A latency histogram with fixed buckets: lock-free to update from the checkpoint
//! coordinator, readable at any time in the shape Prometheus expects.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in seconds, of the buckets of a [`LatencyHistogram`]: from a local log
/// append (milliseconds) to a slow catalog commit on remote storage (seconds).
pub const LATENCY_BUCKETS_SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A latency histogram with fixed buckets ([`LATENCY_BUCKETS_SECONDS`]), lock-free to
/// update, in the shape Prometheus expects (cumulative buckets, a sum and a count).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative); the last entry is above every bound.
    buckets: [AtomicU64; LATENCY_BUCKETS_SECONDS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// What a [`LatencyHistogram`] held when it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations at or below it)`, cumulative, ending with
    /// `f64::INFINITY` and the count.
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl LatencyHistogram {
    /// Adds one observation.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = LATENCY_BUCKETS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS_SECONDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The histogram now. Read while observations land, the buckets may be one
    /// observation ahead of or behind the count; the count is the last bucket.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let bounds = LATENCY_BUCKETS_SECONDS.iter().copied();
        let buckets = bounds
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.buckets)
            .map(|(bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (bound, cumulative)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: cumulative,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_into_cumulative_buckets() {
        let histogram = LatencyHistogram::default();
        for millis in [0, 1, 3, 40, 40, 700, 60_000] {
            histogram.observe(Duration::from_millis(millis));
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 7);
        assert!((snapshot.sum_seconds - 60.784).abs() < 1e-9, "{snapshot:?}");
        let at = |bound: f64| {
            snapshot
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map(|(_, n)| *n)
        };
        assert_eq!(at(0.001), Some(2), "0 ms and 1 ms are at or below 1 ms");
        assert_eq!(at(0.005), Some(3));
        assert_eq!(at(0.05), Some(5));
        assert_eq!(at(1.0), Some(6));
        assert_eq!(at(10.0), Some(6), "a minute is above every bound");
        assert_eq!(snapshot.buckets.last(), Some(&(f64::INFINITY, 7)));
        assert!(snapshot.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
