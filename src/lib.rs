//! runnel: incremental stream processing on object storage.
//!
//! This crate is the CLI and the HTTP server; it re-exports the engine crates so
//! that a Rust user depends on one crate:
//! - [`runtime`]: dataflow graph, subtasks, channels, watermarks, the operator API;
//! - [`operators`]: project/filter, windows, top-K, trending;
//! - [`connectors`]: embedded log, Nexmark generator, Iceberg sink, in-process result sinks;
//! - [`sql`]: SQL text to a planned pipeline and to a dataflow.

// Tests may read the machine's clock; the library takes it injected (clippy.toml).
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_types))]
// Library code returns errors; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

pub use runnel_connectors as connectors;
pub use runnel_operators as operators;
pub use runnel_runtime as runtime;
pub use runnel_sql as sql;

pub mod client;
pub mod data;
pub mod demo;
mod duration_arg;
pub mod hot_items;
pub mod jobs;
pub mod server;

pub use duration_arg::parse_duration;
