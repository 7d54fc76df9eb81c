//! Applying the fault decided for a call: to one request ([`run`]) or to a whole stream
//! ([`faulty_stream`]), as a failure before the call, a lost response after it, a delay,
//! or a torn write.

use std::future::Future;

use futures::stream::{self, BoxStream, StreamExt};
use object_store::PutPayload;
use object_store::path::Path;

use super::super::config::OpKind;
use super::super::injector::{InjectedError, InjectedFault, Injector};

/// Applies the fault decided for one stream-returning call to the whole stream.
pub(super) fn faulty_stream<T: Send + 'static>(
    fault: Option<InjectedFault>,
    op: OpKind,
    location: String,
    make: impl FnOnce() -> BoxStream<'static, object_store::Result<T>>,
) -> BoxStream<'static, object_store::Result<T>> {
    match fault {
        None | Some(InjectedFault::TruncateWrite { .. }) => make(),
        Some(InjectedFault::Latency(delay)) => {
            let inner = make();
            stream::once(async move {
                tokio::time::sleep(delay).await;
                inner
            })
            .flatten()
            .boxed()
        }
        Some(fault @ (InjectedFault::FailBefore | InjectedFault::Down)) => {
            let err = injected(op, location, fault);
            stream::once(async move { Err(err) }).boxed()
        }
        Some(fault @ (InjectedFault::ApplyThenTimeout | InjectedFault::Crash)) => {
            let inner = make();
            let err = injected(op, location, fault);
            stream::once(async move {
                inner.for_each(|_| async {}).await;
                Err(err)
            })
            .boxed()
        }
    }
}

/// Runs `work` (one call on the inner store) under the fault decided for it.
pub(super) async fn run<T, F, Fut>(
    injector: &Injector,
    op: OpKind,
    location: impl Fn() -> String,
    work: F,
) -> object_store::Result<T>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = object_store::Result<T>>,
{
    match injector.decide(op, &location, None) {
        None | Some(InjectedFault::TruncateWrite { .. }) => work().await,
        Some(InjectedFault::Latency(delay)) => {
            tokio::time::sleep(delay).await;
            work().await
        }
        Some(fault @ (InjectedFault::FailBefore | InjectedFault::Down)) => {
            Err(injected(op, location(), fault))
        }
        Some(fault @ (InjectedFault::ApplyThenTimeout | InjectedFault::Crash)) => {
            // The outcome, success or not, is the response that gets lost.
            let _lost = work().await;
            Err(injected(op, location(), fault))
        }
    }
}

pub(super) fn injected(op: OpKind, location: String, fault: InjectedFault) -> object_store::Error {
    InjectedError {
        op,
        location,
        fault,
    }
    .into_object_store_error()
}

pub(super) fn prefix_name(prefix: Option<&Path>) -> String {
    prefix.map(Path::to_string).unwrap_or_default()
}

/// The first `kept` bytes of `payload`, sharing its buffers.
pub(super) fn truncate(payload: &PutPayload, kept: usize) -> PutPayload {
    let mut left = kept;
    let mut chunks = Vec::new();
    for chunk in payload.iter() {
        if left == 0 {
            break;
        }
        let n = left.min(chunk.len());
        chunks.push(chunk.slice(..n));
        left -= n;
    }
    chunks.into_iter().collect()
}
