//! placeholder
pub mod channel;
pub mod log;
pub mod nexmark;
