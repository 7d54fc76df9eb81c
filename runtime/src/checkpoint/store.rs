//! The I/O the checkpoint protocol needs, and its implementation on `object_store`.
//!
//! [`CheckpointStore`] is deliberately tiny: list/read/create manifests, put/read/list
//! state files, delete. The protocol's decisions ([`super::protocol`]) are pure, the
//! loops that drive them ([`super::driver`]) only call this trait, and tests can wrap it
//! to stop at any call (a crash) or to inject faults.
//!
//! Nothing is ever overwritten. Manifests are created with `PutMode::Create`, and a
//! taken number is reported as [`CreateOutcome::AlreadyExists`] (an outcome the protocol
//! decides on, not an error). State files go to paths unique per (epoch, generation,
//! node, subtask), also with `PutMode::Create`, so a zombie can never clobber the state a
//! newer instance restores from. Deletes of missing objects succeed, so GC is repeatable.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::layout::{self, StateFileKey};
use super::manifest::{self, CorruptManifest, Manifest, StateFile};
use super::state;
use crate::error::{Error, Result};

/// Result of creating a manifest at its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// The number is taken; read the winner and ask the protocol what that means.
    AlreadyExists,
}

/// Storage of one job's checkpoint chain and state files.
#[async_trait]
pub trait CheckpointStore: Send + Sync + Debug {
    /// The (validated) job name.
    fn job(&self) -> &str;

    /// Numbers of the manifests, ascending; only those after `after` if given.
    async fn list_manifests(&self, after: Option<u64>) -> Result<Vec<u64>>;

    /// Reads manifest `seq`. The inner result is its decoding: a damaged manifest, or one
    /// whose job or number does not match where it was found, is `Err(CorruptManifest)`.
    async fn read_manifest(&self, seq: u64) -> Result<Result<Manifest, CorruptManifest>>;

    /// Creates manifest `manifest.seq` if the number is free (`PutMode::Create`).
    async fn create_manifest(&self, manifest: &Manifest) -> Result<CreateOutcome>;

    /// Deletes manifest `seq` (no error if it is gone).
    async fn delete_manifest(&self, seq: u64) -> Result<()>;

    /// Writes one state file at the unique path of `key`; `rows` is recorded as given.
    async fn put_state_file(&self, key: &StateFileKey, data: Bytes, rows: u64)
    -> Result<StateFile>;

    /// Reads a state file, verifying the size and CRC-32 recorded in the manifest.
    async fn read_state_file(&self, file: &StateFile) -> Result<Bytes>;

    /// Every object under the job's `checkpoints/` directory, relative to the job directory.
    async fn list_state_files(&self) -> Result<Vec<String>>;

    /// Deletes a state file by its relative path (no error if it is gone).
    async fn delete_state_file(&self, path: &str) -> Result<()>;
}

/// Encodes `batches` as Arrow IPC and stores them at the path of `key`.
pub async fn write_state(
    store: &dyn CheckpointStore,
    key: &StateFileKey,
    batches: &[RecordBatch],
) -> Result<StateFile> {
    let data = state::encode_state(batches)?;
    store
        .put_state_file(key, data, state::count_rows(batches))
        .await
}

/// Reads, verifies and decodes a state file, checking its row count too.
pub async fn read_state(store: &dyn CheckpointStore, file: &StateFile) -> Result<Vec<RecordBatch>> {
    let batches = state::decode_state(&store.read_state_file(file).await?)?;
    let rows = state::count_rows(&batches);
    if rows != file.rows {
        return Err(Error::Internal(format!(
            "state file {} holds {rows} rows, its manifest records {}",
            file.path, file.rows
        )));
    }
    Ok(batches)
}

/// [`CheckpointStore`] on any `ObjectStore`, under `{root}/jobs/{job}/`.
#[derive(Debug, Clone)]
pub struct ObjectStoreCheckpoints {
    store: Arc<dyn ObjectStore>,
    job: String,
    job_dir: Path,
}

impl ObjectStoreCheckpoints {
    /// The checkpoints of `job` under `root`; fails on a job name unfit for a path.
    pub fn new(store: Arc<dyn ObjectStore>, root: Path, job: &str) -> Result<Self> {
        layout::validate_name("job", job)?;
        Ok(ObjectStoreCheckpoints {
            store,
            job: job.to_string(),
            job_dir: layout::job_dir(&root, job),
        })
    }

    /// `{root}/jobs/{job}`.
    pub fn job_dir(&self) -> &Path {
        &self.job_dir
    }

    /// Lists `dir` recursively, as paths relative to `base`.
    async fn list_relative(&self, dir: &Path, offset: Option<&Path>) -> Result<Vec<String>> {
        let stream = match offset {
            Some(offset) => self.store.list_with_offset(Some(dir), offset),
            None => self.store.list(Some(dir)),
        };
        let objects: Vec<_> = stream
            .try_collect()
            .await
            .map_err(|e| Error::external(format!("listing {dir}"), e))?;
        Ok(objects
            .iter()
            .filter_map(|meta| {
                let parts = meta.location.prefix_match(&self.job_dir)?;
                Some(
                    parts
                        .map(|p| p.as_ref().to_string())
                        .collect::<Vec<_>>()
                        .join("/"),
                )
            })
            .collect())
    }

    fn state_path(&self, relative: &str) -> Result<Path> {
        layout::state_object_path(&self.job_dir, relative).ok_or_else(|| {
            Error::external(
                "reading checkpoint state",
                CorruptManifest(format!(
                    "state file path {relative:?} is not inside the checkpoint layout"
                )),
            )
        })
    }

    async fn delete(&self, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::external(format!("deleting {path}"), e)),
        }
    }

    async fn get(&self, path: &Path) -> Result<Bytes> {
        let result = self.store.get(path).await;
        let bytes = match result {
            Ok(get) => get.bytes().await,
            Err(e) => Err(e),
        };
        bytes.map_err(|e| Error::external(format!("reading {path}"), e))
    }
}

fn create_only() -> PutOptions {
    PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    }
}

#[async_trait]
impl CheckpointStore for ObjectStoreCheckpoints {
    fn job(&self) -> &str {
        &self.job
    }

    async fn list_manifests(&self, after: Option<u64>) -> Result<Vec<u64>> {
        let dir = layout::manifest_dir(&self.job_dir);
        let offset = after.map(|seq| layout::manifest_path(&self.job_dir, seq));
        let mut seqs: Vec<u64> = self
            .list_relative(&dir, offset.as_ref())
            .await?
            .iter()
            .filter_map(|rel| layout::parse_manifest_name(rel.strip_prefix("manifests/")?))
            .filter(|&seq| after.is_none_or(|after| seq > after))
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    async fn read_manifest(&self, seq: u64) -> Result<Result<Manifest, CorruptManifest>> {
        let path = layout::manifest_path(&self.job_dir, seq);
        let bytes = self.get(&path).await?;
        Ok(manifest::decode(&bytes).and_then(|m| {
            if m.seq != seq || m.job != self.job {
                Err(CorruptManifest(format!(
                    "{path} holds manifest {} of job {:?}",
                    m.seq, m.job
                )))
            } else {
                Ok(m)
            }
        }))
    }

    async fn create_manifest(&self, manifest: &Manifest) -> Result<CreateOutcome> {
        let path = layout::manifest_path(&self.job_dir, manifest.seq);
        let payload = PutPayload::from(manifest::encode(manifest));
        match self.store.put_opts(&path, payload, create_only()).await {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(CreateOutcome::AlreadyExists),
            Err(e) => Err(Error::external(format!("creating manifest {path}"), e)),
        }
    }

    async fn delete_manifest(&self, seq: u64) -> Result<()> {
        self.delete(&layout::manifest_path(&self.job_dir, seq))
            .await
    }

    async fn put_state_file(
        &self,
        key: &StateFileKey,
        data: Bytes,
        rows: u64,
    ) -> Result<StateFile> {
        let relative = key.relative_path()?;
        let path = self.state_path(&relative)?;
        let file = StateFile {
            path: relative,
            size: data.len() as u64,
            crc32: crc32fast::hash(&data),
            rows,
        };
        match self
            .store
            .put_opts(&path, PutPayload::from(data), create_only())
            .await
        {
            Ok(_) => Ok(file),
            // An earlier attempt of ours may have landed (a client retry after a
            // timeout): accept the object only if it is byte-for-byte what we wrote.
            Err(object_store::Error::AlreadyExists { .. }) => {
                let existing = self.get(&path).await?;
                state::verify(&file, &existing).map_err(|_| {
                    Error::Internal(format!(
                        "state file {path} already exists with other contents; \
                         state paths are unique per epoch and generation"
                    ))
                })?;
                Ok(file)
            }
            Err(e) => Err(Error::external(format!("writing state file {path}"), e)),
        }
    }

    async fn read_state_file(&self, file: &StateFile) -> Result<Bytes> {
        let bytes = self.get(&self.state_path(&file.path)?).await?;
        state::verify(file, &bytes)?;
        Ok(bytes)
    }

    async fn list_state_files(&self) -> Result<Vec<String>> {
        self.list_relative(&layout::checkpoints_dir(&self.job_dir), None)
            .await
    }

    async fn delete_state_file(&self, path: &str) -> Result<()> {
        self.delete(&self.state_path(path)?).await
    }
}
