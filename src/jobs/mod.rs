//! Durable jobs: definitions stored under the data root, run and resumed by any process
//! started on it.

pub mod catalog;
pub mod definition;
mod entry;
mod graphs;
pub mod manager;
pub mod rates;
pub mod snapshots;
pub mod sources;
pub mod topology;

pub use catalog::{Created, Finished, JobCatalog};
pub use definition::{HotItemsJob, JobDefinition, JobKind, LogInput, SqlJob};
pub use entry::{JobState, JobStatus};
pub use manager::JobManager;
pub use rates::{JobRates, JobRoles, OperatorRates};
pub use snapshots::SnapshotLookup;
pub use sources::SourceCatalog;
pub use topology::{JobTopology, NodeRole, TopologyEdge, TopologyNode};
