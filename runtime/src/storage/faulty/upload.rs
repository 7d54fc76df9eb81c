//! Multipart uploads through a [`super::FaultyStore`]: the fault is decided once, at
//! `complete()`, when the object would appear.

use std::sync::Arc;

use async_trait::async_trait;
use object_store::path::Path;
use object_store::{MultipartUpload, PutPayload, PutResult, UploadPart};

use super::super::config::OpKind;
use super::super::injector::Injector;
use super::apply::run;

/// A multipart upload whose `complete()` is subject to `Put` faults (fail-before or
/// apply-then-timeout; truncation does not apply to multipart uploads).
#[derive(Debug)]
pub(super) struct FaultyUpload {
    pub(super) inner: Box<dyn MultipartUpload>,
    pub(super) injector: Arc<Injector>,
    pub(super) location: Path,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let location = &self.location;
        let inner = &mut self.inner;
        run(
            &self.injector,
            OpKind::Put,
            || location.to_string(),
            || inner.complete(),
        )
        .await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}
