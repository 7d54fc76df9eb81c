//! The bids both throughput benchmarks generate: seeded Nexmark bids at Nexmark's default
//! event rate, in large batches.

use runnel_connectors::nexmark::NexmarkOptions;

/// `events` bids (seed 7) in `partitions` generator partitions, 64 Ki rows per batch.
pub fn bid_options(events: u64, partitions: usize) -> NexmarkOptions {
    NexmarkOptions {
        seed: 7,
        // Nexmark's default event rate: 10 s windows hold ~92,000 bids.
        events_per_second: 10_000,
        max_events: Some(events),
        batch_size: 65_536,
        partitions,
        ..NexmarkOptions::default()
    }
}
