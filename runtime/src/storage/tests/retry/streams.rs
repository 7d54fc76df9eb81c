//! Streams and multipart uploads through a [`RetryingStore`]: which parts are retried
//! (stream creation up to the first item, delete chunks, upload creation) and which
//! errors are passed through (mid-stream, input, parts and completion).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

use super::{quick, sorted_locations, stack};
use crate::storage::*;

#[tokio::test]
async fn delete_stream_retries_whole_chunks_and_passes_input_errors() {
    let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let n = DELETE_CHUNK * 2 + 500;
    let paths: Vec<Path> = (0..n).map(|i| Path::from(format!("x/{i:05}"))).collect();
    for path in &paths {
        inner.put(path, "v".into()).await.unwrap();
    }
    let (store, faulty) = stack(Arc::clone(&inner), FaultConfig::failures(0.5), 3);
    let bad = object_store::Error::Generic {
        store: "input",
        source: "bad input".into(),
    };
    let input =
        stream::iter(paths.clone().into_iter().map(Ok)).chain(stream::once(async { Err(bad) }));
    let results: Vec<_> = store.delete_stream(input.boxed()).collect().await;
    let (ok, err): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(ok.len(), n);
    assert!(matches!(
        &err[..],
        [Err(object_store::Error::Generic { store: "input", .. })]
    ));
    assert!(sorted_locations(inner.list(None)).await.is_empty());
    assert_eq!(store.stats().retries, faulty.stats().failures());
    assert!(store.stats().retries > 0 && store.stats().gave_up == 0);
}

#[tokio::test]
async fn multipart_creation_is_retried_but_parts_and_complete_pass_through() {
    let (store, faulty) = stack(Arc::new(InMemory::new()), FaultConfig::failures(1.0), 5);
    let path = Path::from("m/a");
    let mut upload = store.put_multipart(&path).await.unwrap();
    upload.put_part(PutPayload::from("abc")).await.unwrap();
    let err = upload.complete().await.unwrap_err();
    assert!(is_injected(&err));
    assert_eq!(
        faulty.stats().calls,
        1,
        "complete was called once, not retried"
    );
    assert_eq!(
        store.stats(),
        RetryStats {
            attempts: 1,
            retries: 0,
            gave_up: 0
        }
    );
}

/// Forwards to `InMemory`, except that `list` fails after its first item.
#[derive(Debug)]
struct BreaksMidList {
    inner: Arc<dyn ObjectStore>,
    lists: AtomicU64,
}

impl BreaksMidList {
    fn store() -> Layered<BreaksMidList> {
        Layered::wrap(BreaksMidList {
            inner: Arc::new(InMemory::new()),
            lists: AtomicU64::new(0),
        })
    }
}

impl StoreLayer for BreaksMidList {
    fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        let broken = object_store::Error::Generic {
            store: "mid-list",
            source: "connection reset".into(),
        };
        self.inner
            .list(prefix)
            .take(1)
            .chain(stream::once(async { Err(broken) }))
            .boxed()
    }
}

#[tokio::test]
async fn stream_errors_after_the_first_item_pass_through() {
    let inner = Arc::new(BreaksMidList::store());
    for i in 0..3 {
        inner
            .put(&Path::from(format!("s/{i}")), "v".into())
            .await
            .unwrap();
    }
    let store = RetryingStore::new(Arc::clone(&inner) as _, quick()).unwrap();
    let listed: Vec<_> = store.list(None).collect().await;
    assert!(matches!(
        &listed[..],
        [
            Ok(_),
            Err(object_store::Error::Generic {
                store: "mid-list",
                ..
            })
        ]
    ));
    assert_eq!(inner.lists.load(Ordering::Relaxed), 1);
    assert_eq!(
        store.stats(),
        RetryStats {
            attempts: 1,
            retries: 0,
            gave_up: 0
        }
    );
}
