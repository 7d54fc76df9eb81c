//! The data root: the one object-store location that holds everything a runnel
//! process keeps (the embedded log, job definitions, checkpoints).
//!
//! Compute is stateless between checkpoints, so a process started on the same data root
//! (on this machine or another) picks up exactly where the last one stopped.

use std::fmt;
use std::path::Path as FsPath;
use std::sync::Arc;

use anyhow::Context;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use runnel_connectors::iceberg::IcebergCatalog;
use runnel_connectors::log::{EmbeddedLog, SyncedLocal};
use runnel_connectors::registry::{ConnectorContext, IcebergCatalogs};
use runnel_runtime::Ambient;
use runnel_runtime::storage::{RetryPolicy, RetryingStore};

/// An object store and the prefix under which runnel's data lives.
#[derive(Clone)]
pub struct DataRoot {
    /// Retries calls that failed without a definite answer (every write is create-only,
    /// so a retry cannot apply anything twice).
    pub store: Arc<dyn ObjectStore>,
    /// Prefix inside `store` (empty for a local directory).
    pub root: Path,
    /// Where it is, for messages.
    pub location: String,
    /// The directory, when the root is a local one (the embedded Iceberg catalog lives
    /// there: `catalog.db` and `warehouse/`).
    pub local_dir: Option<std::path::PathBuf>,
    /// The URL of the store's objects (`s3://bucket`), when the root is in an object
    /// store: Iceberg tables then live in the store too, under `{root}/warehouse/`.
    store_url: Option<String>,
    /// An Iceberg REST catalog that holds the tables instead.
    iceberg_rest: Option<String>,
    /// The process's clock and seeded randomness, handed to everything built on the root.
    pub ambient: Ambient,
    iceberg: Arc<tokio::sync::OnceCell<IcebergCatalog>>,
}

impl fmt::Debug for DataRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataRoot")
            .field("location", &self.location)
            .finish()
    }
}

impl DataRoot {
    /// Opens `location`: a local directory (created if missing) or `s3://bucket/prefix`.
    /// S3 takes the usual AWS environment variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and `AWS_ENDPOINT` plus `AWS_ALLOW_HTTP=true`
    /// for an S3-compatible server); conditional writes use ETags, and the start-up
    /// probe refuses a server that does not honour them.
    pub fn open(location: &str, ambient: Ambient) -> anyhow::Result<Self> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(!bucket.is_empty(), "data root {location}: no bucket named");
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .with_context(|| format!("cannot open data root {location}"))?;
            let mut data = Self::new(
                Arc::new(store),
                Path::from(prefix.trim_matches('/')),
                location,
                ambient,
            )?;
            data.store_url = Some(format!("s3://{bucket}"));
            return Ok(data);
        }
        if let Some((scheme, _)) = location.split_once("://") {
            anyhow::bail!(
                "data root {location}: `{scheme}://` is not supported; use a local directory \
                 or s3://bucket/prefix"
            );
        }
        Self::local(FsPath::new(location), ambient)
    }

    /// A local directory, through a store that fsyncs every write before it returns.
    pub fn local(dir: &FsPath, ambient: Ambient) -> anyhow::Result<Self> {
        let store = SyncedLocal::open(dir)
            .with_context(|| format!("cannot open data directory {}", dir.display()))?;
        let location = dir.display().to_string();
        let mut data = Self::new(Arc::new(store), Path::from(""), location, ambient)?;
        data.local_dir = Some(dir.to_path_buf());
        Ok(data)
    }

    /// Any object store; `store` is wrapped in a [`RetryingStore`].
    pub fn new(
        store: Arc<dyn ObjectStore>,
        root: Path,
        location: impl Into<String>,
        ambient: Ambient,
    ) -> anyhow::Result<Self> {
        let store = RetryingStore::new(store, RetryPolicy::default())?;
        Ok(DataRoot {
            store: Arc::new(store),
            root,
            location: location.into(),
            local_dir: None,
            store_url: None,
            iceberg_rest: None,
            ambient,
            iceberg: Arc::default(),
        })
    }

    /// Keeps Iceberg tables in the REST catalog at `uri`.
    #[must_use]
    pub fn with_iceberg_rest(mut self, uri: &str) -> Self {
        self.iceberg_rest = Some(uri.to_string());
        self
    }

    /// The Iceberg catalog of the data root, opened on first use: a REST catalog when one
    /// was given, else the embedded SQL catalog on sqlite for a local directory, the
    /// object-store catalog (pointers, metadata and data files in the same bucket) for S3.
    pub async fn iceberg(&self) -> anyhow::Result<IcebergCatalog> {
        let catalog = self
            .iceberg
            .get_or_try_init(|| async {
                let (store, root, ambient) =
                    (self.store.clone(), self.root.clone(), self.ambient.clone());
                if let Some(uri) = &self.iceberg_rest {
                    return IcebergCatalog::rest(uri, store, root, ambient)
                        .await
                        .with_context(|| format!("cannot open the Iceberg REST catalog {uri}"));
                }
                match (&self.local_dir, &self.store_url) {
                    (Some(dir), _) => {
                        IcebergCatalog::embedded(dir, ambient)
                            .await
                            .with_context(|| {
                                format!("cannot open the Iceberg catalog in {}", dir.display())
                            })
                    }
                    (None, Some(url)) => {
                        Ok(IcebergCatalog::on_object_store(store, root, url, ambient))
                    }
                    (None, None) => anyhow::bail!(
                        "Iceberg tables need a local data directory or an S3 data root; {} \
                         is neither",
                        self.location
                    ),
                }
            })
            .await?;
        Ok(catalog.clone())
    }

    /// What connectors may use: the log, the Iceberg catalog (opened on first use), the
    /// clock and randomness.
    pub fn connectors(&self) -> ConnectorContext {
        ConnectorContext {
            log: self.log(),
            iceberg: Arc::new(self.clone()),
            ambient: self.ambient.clone(),
        }
    }

    /// The embedded log under `{root}/log/`.
    pub fn log(&self) -> EmbeddedLog {
        EmbeddedLog::new(self.store.clone(), self.root.clone())
    }
}

#[async_trait::async_trait]
impl IcebergCatalogs for DataRoot {
    async fn catalog(&self) -> runnel_runtime::Result<IcebergCatalog> {
        self.iceberg()
            .await
            .map_err(|e| runnel_runtime::Error::external("Iceberg catalog", e))
    }
}
