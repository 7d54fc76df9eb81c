//! Watermark generation at sources: bounded out-of-orderness per source partition.
//!
//! Each partition's watermark is `max event time seen - max_out_of_orderness`; a source
//! subtask's watermark is the minimum over its partitions that are not idle. A partition
//! that has not produced data for `idle_timeout` of processing time, and whose reader has
//! read all it holds, stops holding the watermark back (a partition still behind a
//! backlog never goes idle, whatever the time since its last rows); when every partition of the subtask is idle the subtask reports itself
//! idle so that downstream operators do not wait for it either.
//!
//! Checkpoints store each partition's largest event time next to its offset, and a
//! restored subtask starts from them: otherwise a partition with nothing left to read
//! would come back at the start of time and hold the subtask's watermark there (for
//! ever, without an idle timeout), though before the restore it had passed it.

use std::collections::HashMap;
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

    /// Starts each partition listed in `event_times` (the caller keeps to partitions
    /// this subtask owns) from the largest event time a checkpoint recorded for it; the
    /// others start from nothing.
    pub fn restored(mut self, event_times: &HashMap<u32, Millis>, now: Millis) -> Self {
        for (&partition, &t) in event_times {
            let p = self.entry(partition, now);
            p.max_event_time = p.max_event_time.max(t);
        }
        self
    }

    /// Each partition's largest event time seen (or restored), for the partitions that
    /// have one: what a checkpoint stores.
    pub fn event_times(&self) -> Vec<(u32, Millis)> {
        self.partitions
            .iter()
            .filter(|p| p.max_event_time > WATERMARK_START)
            .map(|p| (p.partition, p.max_event_time))
            .collect()
    }

    /// Records that `partition` delivered rows whose largest event time is `max_event_time`.
    /// A partition the tracker did not know (one the source gained while running) joins
    /// it: from now on it holds the watermark back like the others.
    pub fn observe(&mut self, partition: u32, max_event_time: Millis, now: Millis) {
        let p = self.entry(partition, now);
        p.max_event_time = p.max_event_time.max(max_event_time);
        p.last_data_at = now;
    }

    fn entry(&mut self, partition: u32, now: Millis) -> &mut PartitionState {
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
        &mut self.partitions[index]
    }

    /// The subtask's watermark status at processing time `now`; `caught_up` tells
    /// whether a partition has nothing left to read (only then may it go idle).
    pub fn status(&self, now: Millis, caught_up: impl Fn(u32) -> bool) -> WatermarkStatus {
        let active = self.partitions.iter().filter(|p| match self.idle_timeout {
            Some(timeout) => now - p.last_data_at < timeout || !caught_up(p.partition),
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

    fn all(_: u32) -> bool {
        true
    }

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
        assert_eq!(w.status(0, all), WatermarkStatus::Active(WATERMARK_START));
        w.observe(1, 500, 0);
        assert_eq!(w.status(0, all), WatermarkStatus::Active(400));
        w.observe(1, 300, 0); // out of order: the maximum stays
        assert_eq!(w.status(0, all), WatermarkStatus::Active(400));
    }

    #[test]
    fn idle_partition_stops_holding_back_then_rejoins() {
        let mut w = PartitionWatermarks::new(&strategy(Some(50)), &[0, 1], 0);
        w.observe(0, 1_000, 10);
        assert_eq!(w.status(40, all), WatermarkStatus::Active(WATERMARK_START));
        assert_eq!(w.status(55, all), WatermarkStatus::Active(900));
        assert_eq!(w.status(70, all), WatermarkStatus::Idle);
        w.observe(1, 2_000, 80);
        assert_eq!(w.status(80, all), WatermarkStatus::Active(1_900));
    }

    #[test]
    fn a_partition_behind_a_backlog_never_goes_idle() {
        let mut w = PartitionWatermarks::new(&strategy(Some(50)), &[0, 1], 0);
        w.observe(0, 1_000, 100);
        w.observe(1, 300, 0);
        // Partition 1 has delivered nothing for 100 ms but still holds unread rows.
        assert_eq!(w.status(100, |p| p != 1), WatermarkStatus::Active(200));
        assert_eq!(w.status(100, all), WatermarkStatus::Active(900));
    }

    #[test]
    fn partition_gained_while_running_joins_the_minimum() {
        let mut w = PartitionWatermarks::new(&strategy(None), &[0], 0);
        w.observe(0, 1_000, 0);
        assert_eq!(w.status(0, all), WatermarkStatus::Active(900));
        w.observe(4, 600, 5);
        assert_eq!(w.status(5, all), WatermarkStatus::Active(500));
        w.observe(4, 2_000, 6);
        assert_eq!(w.status(6, all), WatermarkStatus::Active(900));
    }

    #[test]
    fn restored_partitions_resume_from_their_recorded_event_times() {
        let mut w = PartitionWatermarks::new(&strategy(None), &[0, 1], 0);
        w.observe(0, 5_000, 0);
        w.observe(1, 3_000, 0);
        let saved: HashMap<u32, Millis> = w.event_times().into_iter().collect();
        // Partition 2 was gained while running; partition 1 has nothing left to read.
        let times = HashMap::from([(1, 3_000), (2, 4_000)]);
        let restored = PartitionWatermarks::new(&strategy(None), &[0, 1], 10).restored(&times, 10);
        assert_eq!(saved, HashMap::from([(0, 5_000), (1, 3_000)]));
        assert_eq!(
            restored.status(10, all),
            WatermarkStatus::Active(WATERMARK_START)
        );
        let mut restored = restored;
        restored.observe(0, 6_000, 11);
        assert_eq!(restored.status(11, all), WatermarkStatus::Active(2_900));
        assert_eq!(restored.event_times().len(), 3);
    }
}
