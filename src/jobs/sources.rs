//! Declared sources (`CREATE SOURCE`), stored under `{root}/catalog/sources/{name}.json`
//! with create-only writes, so they survive restarts and two servers on one root cannot
//! silently redefine one another's sources.

use std::sync::Arc;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use runnel_runtime::checkpoint::layout::validate_name;
use runnel_sql::SourceDef;

use super::catalog::Created;

const READ_CONCURRENCY: usize = 16;

/// The declared sources of one data root.
#[derive(Debug, Clone)]
pub struct SourceCatalog {
    store: Arc<dyn ObjectStore>,
    root: Path,
}

impl SourceCatalog {
    pub fn new(store: Arc<dyn ObjectStore>, root: Path) -> Self {
        SourceCatalog { store, root }
    }

    fn dir(&self) -> Path {
        self.root.clone().join("catalog").join("sources")
    }

    fn object(&self, name: &str) -> Path {
        self.dir().join(format!("{name}.json").as_str())
    }

    /// Stores `source`; the same definition again is fine, another one is an error.
    pub async fn create(&self, source: &SourceDef) -> anyhow::Result<Created> {
        validate_name("source", &source.name)?;
        let body = serde_json::to_vec_pretty(source)?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.object(&source.name), PutPayload::from(body), options)
            .await
        {
            Ok(_) => Ok(Created::New),
            Err(object_store::Error::AlreadyExists { .. }) => match self.get(&source.name).await? {
                Some(stored) if &stored == source => Ok(Created::Existing),
                _ => bail!(
                    "source {} already exists with a different definition",
                    source.name
                ),
            },
            Err(e) => Err(e).with_context(|| format!("cannot store source {}", source.name)),
        }
    }

    /// The source `name`, if declared.
    pub async fn get(&self, name: &str) -> anyhow::Result<Option<SourceDef>> {
        validate_name("source", name)?;
        match self.store.get(&self.object(name)).await {
            Ok(got) => {
                let bytes = got.bytes().await?;
                let source = serde_json::from_slice(&bytes)
                    .with_context(|| format!("definition of source {name} is not valid"))?;
                Ok(Some(source))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read source {name}")),
        }
    }

    /// Every declared source, by name.
    pub async fn list(&self) -> anyhow::Result<Vec<SourceDef>> {
        let listing: Vec<_> = self
            .store
            .list(Some(&self.dir()))
            .try_collect()
            .await
            .context("cannot list sources")?;
        let names = listing.into_iter().filter_map(|meta| {
            let name = meta.location.filename()?.strip_suffix(".json")?.to_owned();
            validate_name("source", &name).is_ok().then_some(name)
        });
        let mut sources: Vec<SourceDef> = futures::stream::iter(names)
            .map(|name| async move { self.get(&name).await })
            .buffered(READ_CONCURRENCY)
            .try_filter_map(|s| async move { Ok(s) })
            .try_collect()
            .await?;
        sources.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(sources)
    }
}
