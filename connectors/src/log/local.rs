//! A local-directory object store whose writes survive a machine crash.
//!
//! `object_store`'s `LocalFileSystem` writes a staging file and renames it into place,
//! which is atomic but not durable: nothing is fsynced, so an acknowledged append could
//! vanish in a power loss. [`SyncedLocalFileSystem`] wraps it and, before a put returns,
//! fsyncs the new file and every directory from it up to the store's root (a segment's
//! partition directory may itself be new). It is the store [`EmbeddedLog::local`]
//! uses, so "acknowledged" means "on disk" for the default deployment too.
//!
//! [`EmbeddedLog::local`]: super::EmbeddedLog::local

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutOptions, PutPayload, PutResult, Result};
use runnel_runtime::storage::{Layered, StoreLayer};

/// `LocalFileSystem` with fsync after every put (multipart uploads are not synced; the
/// log does not use them).
pub type SyncedLocalFileSystem = Layered<SyncedLocal>;

/// The layer of a [`SyncedLocalFileSystem`]: syncs after each put, forwards the rest.
#[derive(Debug)]
pub struct SyncedLocal {
    local: Arc<LocalFileSystem>,
    inner: Arc<dyn ObjectStore>,
    root: PathBuf,
}

impl SyncedLocal {
    /// A store rooted at `dir`, which is created if missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<SyncedLocalFileSystem> {
        let root: PathBuf = dir.into();
        std::fs::create_dir_all(&root).map_err(|e| object_store::Error::Generic {
            store: "SyncedLocalFileSystem",
            source: Box::new(e),
        })?;
        let root = root.canonicalize().unwrap_or(root);
        let local = Arc::new(LocalFileSystem::new_with_prefix(&root)?);
        let inner: Arc<dyn ObjectStore> = local.clone();
        Ok(Layered::wrap(SyncedLocal { local, inner, root }))
    }
}

impl SyncedLocal {
    async fn sync(&self, location: &Path) -> Result<()> {
        let file = self.local.path_to_filesystem(location)?;
        let root = self.root.clone();
        let synced = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::File::open(&file)?.sync_all()?;
            let mut dir = file.parent();
            while let Some(d) = dir.filter(|d| d.starts_with(&root)) {
                std::fs::File::open(d)?.sync_all()?;
                dir = d.parent();
            }
            Ok(())
        })
        .await;
        let error = match synced {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => Box::new(e) as Box<dyn std::error::Error + Send + Sync>,
            Err(e) => Box::new(e),
        };
        Err(object_store::Error::Generic {
            store: "SyncedLocalFileSystem",
            source: error,
        })
    }
}

#[async_trait]
impl StoreLayer for SyncedLocal {
    fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SyncedLocalFileSystem({})", self.root.display())
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let result = self.inner.put_opts(location, payload, opts).await?;
        self.sync(location).await?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use object_store::{ObjectStoreExt, PutMode};

    use super::*;

    #[tokio::test]
    async fn puts_are_written_synced_and_still_conditional() {
        let dir = tempfile::tempdir().unwrap();
        let store = SyncedLocal::open(dir.path().join("new/root")).unwrap();
        let path = Path::from("log/t/00000/x.arrow");
        let create = || PutOptions::from(PutMode::Create);
        store
            .put_opts(&path, b"abc".to_vec().into(), create())
            .await
            .unwrap();
        let again = store
            .put_opts(&path, b"xyz".to_vec().into(), create())
            .await;
        assert!(matches!(
            again,
            Err(object_store::Error::AlreadyExists { .. })
        ));
        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(&bytes[..], b"abc");
        assert!(dir.path().join("new/root/log/t/00000/x.arrow").is_file());
    }
}
