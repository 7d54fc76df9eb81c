//! runnel-connectors: where a dataflow's rows come from and where they go.
//!
//! Each module is one connector, with the runtime's `Source` and/or `Sink` traits:
//! - [`log`]: the embedded log: topics of Arrow IPC segments on any object store, dense
//!   offsets, idempotent producers; a replayable [`log::LogSource`] and an exactly-once
//!   [`log::LogSink`] (the default input and the edge between chained jobs);
//! - [`nexmark`]: the Nexmark generator (bids, auctions, persons) as a replayable source;
//! - [`iceberg`]: the exactly-once Iceberg sink, its catalogs (embedded sqlite, pointers on
//!   an object store, REST), compaction and snapshot retention;
//! - [`kafka`]: topics of a Kafka-protocol broker, as a replayable source and an
//!   exactly-once sink that needs no broker transactions;
//! - [`channel`]: in-process, at-least-once sinks (a bounded channel, a collecting vector)
//!   for results that stay in the same process.
//!
//!
//! [`registry`] names them for SQL: a factory per connector checks its `WITH` options,
//! prepares what must exist and opens the runtime source or sink.
//!
//! This crate knows the runtime and no operator, and nothing of SQL.

// Tests may read the machine's clock; the library takes it injected (clippy.toml).
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_types))]
// Library code returns errors; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

pub mod channel;
pub mod iceberg;
pub mod kafka;
pub mod log;
pub mod nexmark;
pub mod registry;
