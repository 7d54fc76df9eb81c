//! Object-storage utilities shared by the checkpoint layer and the tests that break it.
//!
//! Wrappers are [`StoreLayer`]s: each overrides the calls it changes and
//! [`Layered`] forwards the rest. [`RetryingStore`] retries transient failures;
//! [`FaultyStore`] is a seeded fault-injecting wrapper around any
//! `object_store::ObjectStore`. Exact recovery and fencing must survive the failures real
//! object stores produce: requests that fail, requests that succeed but whose response
//! is lost, slow requests, and torn writes. Wrapping the store the job runs against in a
//! `FaultyStore` reproduces those failures at a configurable rate, and the same seed and
//! call order reproduce the same failures, so a failing run can be replayed. A store can
//! also be armed to crash at a named call ([`CrashPoint`]): that call is applied and every
//! later one fails, as if the process had died right after it.
//!
//! ```
//! # use std::sync::Arc;
//! # use object_store::{ObjectStore, memory::InMemory};
//! use runnel_runtime::storage::{FaultConfig, FaultyStore};
//! let store = FaultyStore::new(Arc::new(InMemory::new()), FaultConfig::failures(0.2), 42)?;
//! let faults = store.controller();
//! let store: Arc<dyn ObjectStore> = Arc::new(store);
//! // ... run the job against `store`; later heal it:
//! faults.set_enabled(false);
//! # Ok::<(), runnel_runtime::Error>(())
//! ```

mod config;
mod crash;
mod faulty;
mod injector;
mod layer;
mod retry;

#[cfg(test)]
mod tests;

pub use config::{FaultConfig, OpKind, OpSet};
pub use crash::{CrashPoint, CrashReport};
pub use faulty::{FaultLayer, FaultyStore};
pub use injector::{
    FAULTY_STORE_NAME, FaultController, FaultStats, InjectedError, InjectedFault, injected_fault,
    is_injected,
};
pub use layer::{Layered, StoreLayer};
pub use retry::{DELETE_CHUNK, RetryLayer, RetryPolicy, RetryStats, RetryingStore, is_retryable};
