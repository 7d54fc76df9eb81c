//! `connector = 'kafka'`: topics of any Kafka-protocol broker.
//!
//! * [`KafkaSource`] reads a topic's partitions by assignment (no consumer-group
//!   rebalancing: runnel's checkpoints hold the offsets and are the truth on restore),
//!   decodes JSON values into Arrow batches, offers partition, offset, timestamp, key and
//!   headers as metadata columns, picks up partitions added while it runs, and commits
//!   the offsets of completed checkpoints to its consumer group only so that lag monitors
//!   see progress.
//! * [`KafkaSink`] is exactly once without broker transactions: phase 1 keeps the epoch's
//!   rows with the checkpoint; phase 2 writes them with the idempotent producer, each
//!   record carrying the sink id, writer generation, epoch and sequence in its headers.
//!   Before writing an epoch again (after a restart) the sink reads the tail of each
//!   output partition and skips what is already there (see [`sink`]).
//!
//! The client is librdkafka (the `rdkafka` crate), built from source with the crate.

pub mod connector;
mod decode;
mod discovery;
mod options;
mod partitioner;
mod reader;
pub mod sink;
mod source;
mod tail;

pub use connector::{KafkaSinkFactory, KafkaSourceFactory};
pub use options::{KafkaSinkOptions, KafkaSourceOptions, StartupMode};
pub use partitioner::murmur2_partition;
pub use sink::KafkaSink;
pub use source::KafkaSource;
