//! Checkpoints on object storage: the manifest chain, fencing, state files and GC.
//!
//! A job's checkpoint data lives under `{root}/jobs/{job}/` ([`layout`]):
//!
//! ```text
//! manifests/{seq:020}.json                                  create-only chain
//! checkpoints/{epoch:020}-g{generation}/{node}/{subtask:05}.arrow   state (Arrow IPC)
//! ```
//!
//! The chain is the single source of truth. A starting instance reads it, restores the
//! checkpoint its newest manifest names, and claims the next number with a *fence* of a
//! higher generation; a running instance appends one *checkpoint* manifest per completed
//! epoch. Every append is a `PutMode::Create`, so two writers can never both take a
//! number, and an instance that finds its number taken by a newer generation is fenced
//! for good. No leases, no clocks, no `PutMode::Update`: it works on `LocalFileSystem`.
//!
//! The design follows "protocols as pure decision functions, I/O at the edge":
//! * [`manifest`]: the serde types and their checksummed encoding;
//! * [`protocol`]: pure decisions (how to start, what a lost create race means);
//! * [`gc`]: a pure plan of what may be deleted;
//! * [`store`]: the small I/O trait and its `object_store` implementation;
//! * [`driver`]: the loops that read, ask the protocol, and write;
//! * [`probe`]: checks that a store's conditional creates are atomic;
//! * [`state`]: Arrow IPC encoding of state, verified by size and CRC-32.

pub mod driver;
pub mod gc;
pub mod layout;
pub mod manifest;
pub mod probe;
pub mod protocol;
pub mod state;
pub mod store;

#[cfg(test)]
mod driver_tests;
#[cfg(test)]
mod probe_tests;
#[cfg(test)]
mod protocol_tests;
#[cfg(test)]
mod race_tests;

pub use driver::{
    CommitOutcome, GcOutcome, StartRefused, Started, collect_garbage, commit_checkpoint,
    read_chain, start,
};
pub use gc::{DEFAULT_RETAIN, GcPlan, plan_gc};
pub use layout::StateFileKey;
pub use manifest::{
    CheckpointMeta, CorruptManifest, Manifest, ManifestKind, OperatorState, SinkCommit,
    SourcePosition, StateFile,
};
pub use probe::{CreateSupport, ProbeReport, UpdateSupport, probe_conditional_writes};
pub use protocol::{
    ChainPosition, ConflictDecision, CorruptPolicy, Phase, StartDecision, decide_start,
    on_create_conflict,
};
pub use state::{CorruptState, decode_state, encode_state};
pub use store::{CheckpointStore, CreateOutcome, ObjectStoreCheckpoints, read_state, write_state};
