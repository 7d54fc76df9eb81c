//! placeholder
pub mod channel;
pub mod iceberg;
pub mod log;
pub mod nexmark;
