//! Watermark generation at sources: bounded out-of-orderness per source partition.
//!
//! Each partition's watermark is `max event time seen - max_out_of_orderness`; a source
//! subtask's watermark is the minimum over its partitions that are not idle. A partition
//! that has not produced data for `idle_timeout` of processing time stops holding the
//! watermark back; when every partition of the subtask is idle the subtask reports itself
//! idle so that downstream operators do not wait for it either.

use std::time::Duration;

use crate::message::{Millis, WATERMARK_START};

/// How a source derives watermarks from the event times it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkStrategy {
    /// Column holding event time (timestamp, or BIGINT milliseconds).
    pub time_column: String,
    /// How far behind the largest event time seen an event may still arrive.
    pub max_out_of_orderness: Duration,
    /// Processing time after which a partition without data stops holding back the
    /// watermark; `None` waits forever.
    pub idle_timeout: Option<Duration>,
}

impl WatermarkStrategy {
    /// Watermarks that trail the largest event time by `max_out_of_orderness`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use runnel_runtime::WatermarkStrategy;
    /// let wm = WatermarkStrategy::bounded("date_time", Duration::from_secs(5))
    ///     .with_idle_timeout(Duration::from_secs(30));
    /// assert_eq!(wm.time_column, "date_time");
    /// ```
    pub fn bounded(time_column: impl Into<String>, max_out_of_orderness: Duration) -> Self {
        WatermarkStrategy {
            time_column: time_column.into(),
            max_out_of_orderness,
            idle_timeout: None,
        }
    }

    /// Sets the idle timeout.
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = Some(idle_timeout);
        self
    }
}

#[derive(Debug, Clone)]
struct PartitionState {
    partition: u32,
    max_event_time: Millis,
    last_data_at: Millis,
}

/// What a source subtask should announce downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatermarkStatus {
    /// At least one partition is active; the watermark is their minimum.
    Active(Millis),
    /// Every partition is idle.
    Idle,
}

/// Tracks per-partition event time for one source subtask.
#[derive(Debug)]
pub struct PartitionWatermarks {
    delay: Millis,
    idle_timeout: Option<Millis>,
    partitions: Vec<PartitionState>,
}

impl PartitionWatermarks {
    /// A tracker for the given partitions; `now` is the current processing time, from
    /// which idleness is measured.
    pub fn new(strategy: &WatermarkStrategy, partitions: &[u32], now: Millis) -> Self {
        PartitionWatermarks {
            delay: strategy.max_out_of_orderness.as_millis() as Millis,
            idle_timeout: strategy.idle_timeout.map(|d| d.as_millis() as Millis),
            partitions: partitions
                .iter()
                .map(|&partition| PartitionState {
                    partition,
                    max_event_time: WATERMARK_START,
                    last_data_at: now,
                })
                .collect(),
        }
    }

    /// Records that `partition` delivered rows whose largest event time is `max_event_time`.
    /// A partition the tracker did not know (one the source gained while running) joins
    /// it: from now on it holds the watermark back like the others.
    pub fn observe(&mut self, partition: u32, max_event_time: Millis, now: Millis) {
        let index = match self
            .partitions
            .iter()
            .position(|p| p.partition == partition)
        {
            Some(index) => index,
            None => {
                self.partitions.push(PartitionState {
                    partition,
                    max_event_time: WATERMARK_START,
                    last_data_at: now,
                });
                self.partitions.len() - 1
            }
        };
        let p = &mut self.partitions[index];
        p.max_event_time = p.max_event_time.max(max_event_time);
        p.last_data_at = now;
    }

    /// The subtask's watermark status at processing time `now`.
    pub fn status(&self, now: Millis) -> WatermarkStatus {
        let active = self.partitions.iter().filter(|p| match self.idle_timeout {
            Some(timeout) => now - p.last_data_at < timeout,
            None => true,
        });
        active
            .map(|p| p.max_event_time.saturating_sub(self.delay))
            .min()
            .map_or(WatermarkStatus::Idle, WatermarkStatus::Active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(idle: Option<u64>) -> WatermarkStrategy {
        let s = WatermarkStrategy::bounded("t", Duration::from_millis(100));
        match idle {
            Some(ms) => s.with_idle_timeout(Duration::from_millis(ms)),
            None => s,
        }
    }

    #[test]
    fn watermark_is_min_over_partitions_minus_delay() {
        let mut w = PartitionWatermarks::new(&strategy(None), &[0, 1], 0);
        w.observe(0, 1_000, 0);
        assert_eq!(w.status(0), WatermarkStatus::Active(WATERMARK_START));
        w.observe(1, 500, 0);
        assert_eq!(w.status(0), WatermarkStatus::Active(400));
        w.observe(1, 300, 0); // out of order: the maximum stays
        assert_eq!(w.status(0), WatermarkStatus::Active(400));
    }

    #[test]
    fn idle_partition_stops_holding_back_then_rejoins() {
        let mut w = PartitionWatermarks::new(&strategy(Some(50)), &[0, 1], 0);
        w.observe(0, 1_000, 10);
        assert_eq!(w.status(40), WatermarkStatus::Active(WATERMARK_START));
        assert_eq!(w.status(55), WatermarkStatus::Active(900));
        assert_eq!(w.status(70), WatermarkStatus::Idle);
        w.observe(1, 2_000, 80);
        assert_eq!(w.status(80), WatermarkStatus::Active(1_900));
    }

    #[test]
    fn partition_gained_while_running_joins_the_minimum() {
        let mut w = PartitionWatermarks::new(&strategy(None), &[0], 0);
        w.observe(0, 1_000, 0);
        assert_eq!(w.status(0), WatermarkStatus::Active(900));
        w.observe(4, 600, 5);
        assert_eq!(w.status(5), WatermarkStatus::Active(500));
        w.observe(4, 2_000, 6);
        assert_eq!(w.status(6), WatermarkStatus::Active(900));
    }
}
