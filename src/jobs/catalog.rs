//! Durable job definitions under `{root}/jobs/{name}/`.
//!
//! ```text
//! {root}/jobs/{name}/definition.json   what the job computes (create-only)
//! {root}/jobs/{name}/finished.json     written once a job over a fixed input has ended
//! {root}/jobs/{name}/dropped.json      written when the job is dropped: never resumed
//! {root}/jobs/{name}/manifests/...     its checkpoints (runtime::checkpoint::layout)
//! ```
//!
//! Every object is written with `PutMode::Create` and never changed, so two processes on
//! one root cannot overwrite each other's definitions, and re-submitting the same
//! definition is a no-op while a different one under the same name is refused.

use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use runnel_runtime::checkpoint::layout::{job_dir, validate_name};
use serde::{Deserialize, Serialize};

use super::definition::JobDefinition;

const DEFINITION: &str = "definition.json";
const FINISHED: &str = "finished.json";
const DROPPED: &str = "dropped.json";

/// Definitions read at once when listing.
const READ_CONCURRENCY: usize = 16;

/// Written when a job over a fixed input has committed its final checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// Unix milliseconds.
    pub at: i64,
    /// Epoch of the final checkpoint.
    pub epoch: u64,
}

/// What [`JobCatalog::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    /// The same definition was already stored.
    Existing,
}

/// The job definitions of one data root.
#[derive(Debug, Clone)]
pub struct JobCatalog {
    store: Arc<dyn ObjectStore>,
    root: Path,
}

impl JobCatalog {
    pub fn new(store: Arc<dyn ObjectStore>, root: Path) -> Self {
        JobCatalog { store, root }
    }

    fn object(&self, job: &str, file: &str) -> Path {
        job_dir(&self.root, job).join(file)
    }

    /// Stores `definition`; the same definition twice is fine, another one under an
    /// existing name is an error.
    pub async fn create(&self, definition: &JobDefinition) -> anyhow::Result<Created> {
        validate_name("job", &definition.name)?;
        let path = self.object(&definition.name, DEFINITION);
        let body = serde_json::to_vec_pretty(definition)?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from(body), options)
            .await
        {
            Ok(_) => Ok(Created::New),
            Err(object_store::Error::AlreadyExists { .. }) => {
                match self.get(&definition.name).await? {
                    Some(stored) if &stored == definition => Ok(Created::Existing),
                    Some(_) => bail!(
                        "job {} already exists with a different definition",
                        definition.name
                    ),
                    None => bail!(
                        "job {} exists but its definition is missing",
                        definition.name
                    ),
                }
            }
            Err(e) => Err(e).with_context(|| format!("cannot store job {}", definition.name)),
        }
    }

    /// The definition of `job`, if there is one.
    pub async fn get(&self, job: &str) -> anyhow::Result<Option<JobDefinition>> {
        validate_name("job", job)?;
        let Some(bytes) = self.read(&self.object(job, DEFINITION)).await? else {
            return Ok(None);
        };
        let definition: JobDefinition = serde_json::from_slice(&bytes)
            .with_context(|| format!("definition of job {job} is not valid"))?;
        if definition.name != job {
            bail!(
                "definition of job {job} names another job ({})",
                definition.name
            );
        }
        Ok(Some(definition))
    }

    /// Names of the jobs under the root (directories with a valid job name), sorted.
    pub async fn names(&self) -> anyhow::Result<Vec<String>> {
        let dir = self.root.clone().join("jobs");
        let listing = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .context("cannot list jobs")?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .filter(|name| validate_name("job", name).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every stored definition, sorted by name; fails if any cannot be read. Directories
    /// without a definition (a job being created, or not a job) are skipped.
    pub async fn list(&self) -> anyhow::Result<Vec<JobDefinition>> {
        let names = self.names().await?;
        futures::stream::iter(names)
            .map(|name| async move { self.get(&name).await })
            .buffered(READ_CONCURRENCY)
            .try_filter_map(|d| async move { Ok(d) })
            .try_collect()
            .await
    }

    /// Records that `job` has ended for good (idempotent: the first record stays).
    pub async fn mark_finished(&self, job: &str, finished: &Finished) -> anyhow::Result<()> {
        self.mark(job, FINISHED, finished)
            .await
            .with_context(|| format!("cannot record that job {job} finished"))
    }

    /// Records that `job` was dropped, so no process resumes it (idempotent).
    pub async fn mark_dropped(&self, job: &str, at: i64) -> anyhow::Result<()> {
        self.mark(job, DROPPED, &serde_json::json!({ "at": at }))
            .await
            .with_context(|| format!("cannot record that job {job} was dropped"))
    }

    /// Whether `job` was dropped.
    pub async fn dropped(&self, job: &str) -> anyhow::Result<bool> {
        Ok(self.read(&self.object(job, DROPPED)).await?.is_some())
    }

    /// Creates the marker `file` of `job` unless it exists (the first one stays).
    async fn mark(&self, job: &str, file: &str, body: &impl Serialize) -> anyhow::Result<()> {
        validate_name("job", job)?;
        let body = serde_json::to_vec(body)?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.object(job, file), PutPayload::from(body), options)
            .await
        {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether, and when, `job` finished.
    pub async fn finished(&self, job: &str) -> anyhow::Result<Option<Finished>> {
        let Some(bytes) = self.read(&self.object(job, FINISHED)).await? else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!("finished record of job {job} is not valid")
        })?))
    }

    async fn read(&self, path: &Path) -> anyhow::Result<Option<Bytes>> {
        match self.store.get(path).await {
            Ok(got) => Ok(Some(
                got.bytes()
                    .await
                    .with_context(|| format!("cannot read {path}"))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {path}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;
    use crate::hot_items::HotItems;
    use crate::jobs::definition::LogInput;

    fn definition(name: &str, top: usize) -> JobDefinition {
        let input = LogInput {
            topic: "bids".into(),
            until: None,
        };
        let shape = HotItems {
            top,
            ..HotItems::default()
        };
        JobDefinition::hot_items(name, input, "out", &shape)
    }

    #[tokio::test]
    async fn definitions_are_create_only_and_listed_by_name() {
        let catalog = JobCatalog::new(Arc::new(InMemory::new()), Path::from("data"));
        assert_eq!(catalog.list().await.unwrap(), vec![]);
        let b = definition("b", 1);
        assert_eq!(catalog.create(&b).await.unwrap(), Created::New);
        assert_eq!(catalog.create(&b).await.unwrap(), Created::Existing);
        let error = catalog.create(&definition("b", 2)).await.unwrap_err();
        assert!(
            error.to_string().contains("different definition"),
            "{error}"
        );
        let a = definition("a", 1);
        catalog.create(&a).await.unwrap();
        assert_eq!(catalog.list().await.unwrap(), vec![a, b.clone()]);
        assert_eq!(catalog.get("b").await.unwrap(), Some(b));
        assert_eq!(catalog.get("c").await.unwrap(), None);
    }

    #[tokio::test]
    async fn bad_names_never_reach_the_store() {
        let catalog = JobCatalog::new(Arc::new(InMemory::new()), Path::from("data"));
        for name in ["../x", "", ".hidden", "a/b"] {
            assert!(
                catalog.create(&definition(name, 1)).await.is_err(),
                "{name:?}"
            );
            assert!(catalog.get(name).await.is_err(), "{name:?}");
        }
    }

    #[tokio::test]
    async fn the_first_finished_record_stays() {
        let catalog = JobCatalog::new(Arc::new(InMemory::new()), Path::from(""));
        catalog.create(&definition("j", 1)).await.unwrap();
        assert_eq!(catalog.finished("j").await.unwrap(), None);
        let first = Finished { at: 5, epoch: 9 };
        catalog.mark_finished("j", &first).await.unwrap();
        catalog
            .mark_finished("j", &Finished { at: 6, epoch: 10 })
            .await
            .unwrap();
        assert_eq!(catalog.finished("j").await.unwrap(), Some(first));
    }
}
