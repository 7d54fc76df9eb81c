//! Iceberg's file IO through the `object_store` crate, so that a table's metadata and data
//! files live in the same store as the rest of a data root (S3, a local directory, memory)
//! with the same client, credentials and retries.
//!
//! iceberg names files by URL (`s3://bucket/prefix/warehouse/...`); the store is rooted at
//! `base_url` (`s3://bucket`), so a file's object path is its URL without that prefix.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use iceberg::io::{
    FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage, StorageConfig,
    StorageFactory,
};
use iceberg::{Error, ErrorKind, Result};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// Files of URLs under `base_url`, kept in `store`.
///
/// The store cannot be serialized: a deserialized instance has none and fails every call
/// with a clear error (iceberg serializes storages only to ship them to other processes,
/// which runnel does not do).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectStoreStorage {
    base_url: String,
    #[serde(skip)]
    store: Option<Arc<dyn ObjectStore>>,
}

impl ObjectStoreStorage {
    /// Files of URLs `{base_url}/{path}` at `path` in `store`.
    pub fn new(store: Arc<dyn ObjectStore>, base_url: &str) -> Self {
        ObjectStoreStorage {
            base_url: base_url.trim_end_matches('/').to_string(),
            store: Some(store),
        }
    }

    fn store(&self) -> Result<&Arc<dyn ObjectStore>> {
        self.store.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                "an object-store storage was deserialized without its store",
            )
        })
    }

    fn path(&self, url: &str) -> Result<Path> {
        let relative = url
            .strip_prefix(&self.base_url)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::DataInvalid,
                    format!("{url} is not under {}", self.base_url),
                )
            })?;
        Path::parse(relative)
            .map_err(|e| Error::new(ErrorKind::DataInvalid, format!("path {url}: {e}")))
    }
}

fn io_error(what: &str, url: &str) -> impl FnOnce(object_store::Error) -> Error {
    let message = format!("{what} {url}");
    move |e| {
        let kind = match e {
            object_store::Error::NotFound { .. } => ErrorKind::DataInvalid,
            _ => ErrorKind::Unexpected,
        };
        Error::new(kind, message).with_source(e)
    }
}

#[async_trait]
#[typetag::serde]
impl Storage for ObjectStoreStorage {
    async fn exists(&self, url: &str) -> Result<bool> {
        match self.store()?.head(&self.path(url)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(io_error("checking", url)(e)),
        }
    }

    async fn metadata(&self, url: &str) -> Result<FileMetadata> {
        let meta = self
            .store()?
            .head(&self.path(url)?)
            .await
            .map_err(io_error("reading the size of", url))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, url: &str) -> Result<Bytes> {
        let got = self
            .store()?
            .get(&self.path(url)?)
            .await
            .map_err(io_error("reading", url))?;
        got.bytes().await.map_err(io_error("reading", url))
    }

    async fn reader(&self, url: &str) -> Result<Box<dyn FileRead>> {
        Ok(Box::new(RangeReader {
            store: self.store()?.clone(),
            path: self.path(url)?,
            url: url.to_string(),
        }))
    }

    async fn write(&self, url: &str, bytes: Bytes) -> Result<()> {
        self.store()?
            .put(&self.path(url)?, PutPayload::from(bytes))
            .await
            .map_err(io_error("writing", url))?;
        Ok(())
    }

    async fn writer(&self, url: &str) -> Result<Box<dyn FileWrite>> {
        Ok(Box::new(Writer {
            inner: Some(BufWriter::new(self.store()?.clone(), self.path(url)?)),
            url: url.to_string(),
        }))
    }

    async fn delete(&self, url: &str) -> Result<()> {
        match self.store()?.delete(&self.path(url)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_error("deleting", url)(e)),
        }
    }

    async fn delete_prefix(&self, url: &str) -> Result<()> {
        let store = self.store()?;
        let prefix = self.path(url.trim_end_matches('/'))?;
        let mut listed = store.list(Some(&prefix));
        while let Some(meta) = listed.next().await {
            let meta = meta.map_err(io_error("listing", url))?;
            match store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(io_error("deleting under", url)(e)),
            }
        }
        Ok(())
    }

    async fn delete_stream(&self, mut urls: BoxStream<'static, String>) -> Result<()> {
        while let Some(url) = urls.next().await {
            self.delete(&url).await?;
        }
        Ok(())
    }

    fn new_input(&self, url: &str) -> Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), url.to_string()))
    }

    fn new_output(&self, url: &str) -> Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), url.to_string()))
    }
}

/// Ranged reads of one object.
struct RangeReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    url: String,
}

#[async_trait]
impl FileRead for RangeReader {
    async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        self.store
            .get_range(&self.path, range)
            .await
            .map_err(io_error("reading", &self.url))
    }
}

/// A buffered (multipart for large files) upload, visible once closed.
struct Writer {
    inner: Option<BufWriter>,
    url: String,
}

#[async_trait]
impl FileWrite for Writer {
    async fn write(&mut self, bytes: Bytes) -> Result<()> {
        let writer = self.inner.as_mut().ok_or_else(|| closed(&self.url))?;
        writer
            .put(bytes)
            .await
            .map_err(io_error("writing", &self.url))
    }

    async fn close(&mut self) -> Result<()> {
        let mut writer = self.inner.take().ok_or_else(|| closed(&self.url))?;
        writer.shutdown().await.map_err(|e| {
            Error::new(ErrorKind::Unexpected, format!("writing {}", self.url)).with_source(e)
        })
    }
}

fn closed(url: &str) -> Error {
    Error::new(ErrorKind::Unexpected, format!("{url} is already closed"))
}

/// Hands iceberg's file IO one [`ObjectStoreStorage`], whatever its configuration says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectStoreStorageFactory {
    storage: ObjectStoreStorage,
}

impl ObjectStoreStorageFactory {
    pub fn new(storage: ObjectStoreStorage) -> Self {
        ObjectStoreStorageFactory { storage }
    }
}

#[typetag::serde]
impl StorageFactory for ObjectStoreStorageFactory {
    fn build(&self, _config: &StorageConfig) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(self.storage.clone()))
    }
}
