//! runnel: incremental stream processing on object storage.
//!
//! This crate is the CLI and the HTTP server; it re-exports the engine crates so
//! that a Rust user depends on one crate:
//! - [`runtime`]: dataflow graph, subtasks, channels, watermarks, the operator API;
//! - [`operators`]: project/filter, windows, top-K, trending;
//! - [`connectors`]: embedded log, Nexmark generator, in-process result sinks.

pub use runnel_connectors as connectors;
pub use runnel_operators as operators;
pub use runnel_runtime as runtime;

pub mod client;
pub mod data;
pub mod demo;
pub mod hot_items;
pub mod jobs;
pub mod server;
