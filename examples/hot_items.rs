//! Nexmark q5 "hot items" with the Rust API: the auction with the most bids in every
//! 10-second window sliding by 2 seconds.
//!
//! `cargo run --release --example hot_items` generates one million bids (a hundred seconds
//! of event time), runs the dataflow at parallelism 2 and prints the ranking of each
//! window. The same flow reads from the embedded log in `runnel demo`.

use std::sync::Arc;
use std::time::Duration;

use arrow::util::pretty::print_batches;
use runnel::connectors::channel::CollectSink;
use runnel::connectors::nexmark::{NexmarkOptions, NexmarkSource, NexmarkTable};
use runnel::operators::{StreamExt, WindowKind, count_star};
use runnel::runtime::{Dataflow, JobConfig, spawn};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bids = NexmarkSource::new(
        NexmarkTable::Bid,
        NexmarkOptions {
            partitions: 4,
            max_events: Some(1_000_000),
            out_of_order_group_size: 100,
            ..NexmarkOptions::default()
        },
    )?;
    let watermark = bids.watermark_strategy();
    let results = CollectSink::new();

    let flow = Dataflow::new("hot_items").with_parallelism(2);
    flow.source("bids", Arc::new(bids), watermark)?
        .key_by(&["auction"])?
        .window(
            WindowKind::Hopping {
                size: Duration::from_secs(10),
                slide: Duration::from_secs(2),
            },
            vec![count_star().alias("bids")],
        )?
        .top_k(1, &[("bids", true)])?
        .sink("hot_items", Arc::new(results.clone()))?;
    let graph = flow.build()?;
    println!("{}", graph.explain());

    spawn(graph, JobConfig::default()).await?.join().await?;
    print_batches(&results.batches())?;
    Ok(())
}
