//! Throughput of the Nexmark generator (rows are events), one thread and all cores.
//! `cargo bench -p runnel-benches --bench nexmark_generator`.

// A benchmark measures wall-clock time.
#![allow(clippy::disallowed_methods)]

use runnel_connectors::nexmark::{
    NexmarkGenerator, NexmarkOptions, NexmarkTable, generate_bids, generate_partition,
};

fn main() {
    for (table, count) in [
        (NexmarkTable::Bid, 2_000_000),
        (NexmarkTable::Auction, 300_000),
        (NexmarkTable::Person, 300_000),
    ] {
        let o = NexmarkOptions {
            max_events: Some(count),
            batch_size: 8192,
            ..Default::default()
        };
        let start = std::time::Instant::now();
        let batches = generate_partition(&o, table, 0).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        println!("{table}: {:.0} events/s on one thread", rows as f64 / secs);
    }
    // Live generation: batches are dropped as they are made, as in a running job.
    let o = NexmarkOptions {
        max_events: Some(2_000_000),
        batch_size: 8192,
        ..Default::default()
    };
    let mut generator = NexmarkGenerator::new(o, 0).unwrap();
    let start = std::time::Instant::now();
    let mut rows = 0;
    while let Some(batch) = generator.next_batch(NexmarkTable::Bid).unwrap() {
        rows += batch.num_rows();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "bid, live: {:.0} events/s on one thread",
        rows as f64 / secs
    );
    let o = NexmarkOptions {
        partitions: 2,
        batch_size: 8192,
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let batches = generate_bids(&o, 10_000_000).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    println!(
        "generate_bids(10M, 2 partitions): {secs:.2}s, {:.0} bids/s",
        rows as f64 / secs
    );
}
