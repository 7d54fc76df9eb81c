//! The Nexmark benchmark as Arrow: a deterministic, partitioned, replayable generator of
//! the `bid`, `auction` and `person` tables, and a runnel source over it.
//!
//! Events come from the `nexmark` crate (0.2, RisingWave's port of the Beam/Flink
//! generator), so the data has Nexmark's distributions (hot auctions, hot bidders, hot
//! channels, ...). This module adds what a stream processor needs around it:
//! * [`schema`]: the three tables' Arrow schemas, named as in the Flink/RisingWave suites;
//! * [`options`]: seeds, event-time rate and disorder, and their mapping onto the crate;
//! * [`generator`]: splitting each table's stream into partitions and building batches;
//! * [`source`]: [`NexmarkSource`], with positions for replay and an optional
//!   processing-time rate limit.
//!
//! ```
//! use runnel_connectors::nexmark::{generate_bids, NexmarkOptions};
//! let options = NexmarkOptions { partitions: 2, batch_size: 1000, ..Default::default() };
//! let batches = generate_bids(&options, 10_000)?;
//! assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 10_000);
//! # Ok::<(), runnel_runtime::Error>(())
//! ```

mod batch;
pub mod connector;
pub mod generator;
pub mod options;
pub mod schema;
pub mod source;

pub use generator::{NexmarkGenerator, generate, generate_bids, generate_partition};
pub use options::{MAX_BATCH_SIZE, MAX_SEED, NexmarkOptions, SEED_STRIDE_EVENTS};
pub use schema::NexmarkTable;
pub use source::{NexmarkReader, NexmarkSource};
