//! Shared test fixtures: both stores, a small schema, batches whose rows are their ids,
//! and a store that fails puts on demand.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::{Array, AsArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutOptions, PutPayload, PutResult};
use runnel_runtime::storage::{Layered, StoreLayer};
use tempfile::TempDir;

use super::EmbeddedLog;

/// A store to run a test against; keeps its temporary directory alive.
pub(crate) struct TestStore {
    pub store: Arc<dyn ObjectStore>,
    pub kind: &'static str,
    _dir: Option<TempDir>,
}

impl TestStore {
    /// A fresh log over this store (as a new process would open it).
    pub fn log(&self) -> EmbeddedLog {
        EmbeddedLog::new(self.store.clone(), Path::from("data"))
    }
}

/// `InMemory` and `LocalFileSystem` over a temporary directory.
pub(crate) fn stores() -> Vec<TestStore> {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    vec![
        TestStore {
            store: Arc::new(InMemory::new()),
            kind: "memory",
            _dir: None,
        },
        TestStore {
            store: Arc::new(local),
            kind: "local",
            _dir: Some(dir),
        },
    ]
}

/// `id: Int64 NOT NULL, name: Utf8`.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

/// Rows with the given ids; `name` is derived from the id (null for multiples of 7).
pub(crate) fn batch(ids: Range<i64>) -> RecordBatch {
    let names: StringArray = ids
        .clone()
        .map(|i| (i % 7 != 0).then(|| format!("n{}", i % 13)))
        .collect();
    let ids = Int64Array::from_iter_values(ids);
    RecordBatch::try_new(schema(), vec![Arc::new(ids), Arc::new(names)]).unwrap()
}

/// The ids of `batches`, in order, checking that each name still matches its id.
pub(crate) fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        assert_eq!(b.schema(), schema());
        let names = b.column(1).as_string::<i32>();
        for (row, id) in b
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .enumerate()
        {
            let expected = (id % 7 != 0).then(|| format!("n{}", id % 13));
            let name = (!names.is_null(row)).then(|| names.value(row).to_string());
            assert_eq!(name, expected, "row {id}");
            out.push(*id);
        }
    }
    out
}

/// Forwards to a store but fails chosen puts of segments: `applied` ones are written and
/// then reported as failed (a timeout after the fact), `lost` ones fail unwritten.
pub(crate) type FlakyStore = Layered<FlakyPuts>;

#[derive(Debug)]
pub(crate) struct FlakyPuts {
    pub inner: Arc<dyn ObjectStore>,
    pub applied: AtomicUsize,
    pub lost: AtomicUsize,
}

impl FlakyPuts {
    pub fn store(inner: Arc<dyn ObjectStore>) -> FlakyStore {
        Layered::wrap(FlakyPuts {
            inner,
            applied: AtomicUsize::new(0),
            lost: AtomicUsize::new(0),
        })
    }
}

fn take(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn injected() -> object_store::Error {
    object_store::Error::Generic {
        store: "flaky",
        source: "injected timeout".into(),
    }
}

#[async_trait]
impl StoreLayer for FlakyPuts {
    fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let segment = location.extension() == Some("arrow") && location.parts_count() > 4;
        if segment && take(&self.lost) {
            return Err(injected());
        }
        let result = self.inner.put_opts(location, payload, opts).await?;
        if segment && take(&self.applied) {
            return Err(injected());
        }
        Ok(result)
    }
}
