//! What a connector may use when it prepares or opens: the engine's embedded log, its
//! Iceberg catalog (opened on first use) and its clock and randomness.

use std::sync::Arc;

use async_trait::async_trait;
use runnel_runtime::Result;
use runnel_runtime::clock::Ambient;

use crate::iceberg::IcebergCatalog;
use crate::log::EmbeddedLog;

/// Opens the engine's Iceberg catalog; the data root implements it, so a job that
/// writes no table never opens one.
#[async_trait]
pub trait IcebergCatalogs: Send + Sync {
    async fn catalog(&self) -> Result<IcebergCatalog>;
}

/// The engine's services, as connectors see them.
#[derive(Clone)]
pub struct ConnectorContext {
    pub log: EmbeddedLog,
    pub iceberg: Arc<dyn IcebergCatalogs>,
    pub ambient: Ambient,
}
