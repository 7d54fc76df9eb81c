//! Opening the object store that holds a runnel data root.

use std::sync::Arc;

use anyhow::Context;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

/// The object store for a local data directory, created if missing.
pub fn local_store(dir: &std::path::Path) -> anyhow::Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .with_context(|| format!("cannot open data directory {}", dir.display()))?;
    Ok(Arc::new(store))
}
