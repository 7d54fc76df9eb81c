//! The retry decision of a [`RetryingStore`](super::RetryingStore): which errors may be
//! transient ([`is_retryable`]), how long to wait between attempts ([`RetryPolicy`]),
//! and the shared loop and counters ([`Retrier`]) that every forwarded call runs under.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future;
use futures::stream::{self, BoxStream, StreamExt};

use crate::{Error, Result};

/// How often and how patiently a [`RetryingStore`](super::RetryingStore) retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per operation, the first one included (at least 1; 1 disables retries).
    pub max_attempts: u32,
    /// Sleep before the first retry; doubled before each further retry.
    pub initial_backoff: Duration,
    /// Upper bound of the sleep between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, backing off 10ms, 20ms, ... up to 1s (about 1.3s of sleep in all).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The sleep before retry number `retry` (1 = the second attempt):
    /// `initial_backoff * 2^(retry-1)`, capped at `max_backoff`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// Checks that `max_attempts >= 1` and `initial_backoff <= max_backoff`.
    pub fn validate(&self) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(Error::Plan("retry policy needs max_attempts >= 1".into()));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(Error::Plan(format!(
                "retry policy initial_backoff {:?} exceeds max_backoff {:?}",
                self.initial_backoff, self.max_backoff
            )));
        }
        Ok(())
    }
}

/// Whether `err` may be transient, so that trying the same call again may succeed.
/// `false` for definitive answers (see the module docs).
pub fn is_retryable(err: &object_store::Error) -> bool {
    use object_store::Error as E;
    match err {
        E::NotFound { .. }
        | E::AlreadyExists { .. }
        | E::Precondition { .. }
        | E::NotModified { .. }
        | E::NotImplemented { .. }
        | E::NotSupported { .. }
        | E::InvalidPath { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::UnknownConfigurationKey { .. }
        | E::JoinError { .. } => false,
        // `Generic`, and variants added to the (non-exhaustive) enum later.
        _ => true,
    }
}

/// What a [`RetryingStore`](super::RetryingStore) has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryStats {
    /// Calls made on the inner store, first attempts and retries (a stream counts once per
    /// creation; multipart parts and completions are not counted).
    pub attempts: u64,
    /// Attempts that were retries (`attempts - retries` operations were started).
    pub retries: u64,
    /// Operations that still failed with a retryable error after `max_attempts`.
    pub gave_up: u64,
}

/// The policy and counters, shared by the store and the streams it returns.
#[derive(Debug)]
pub(super) struct Retrier {
    policy: RetryPolicy,
    attempts: AtomicU64,
    retries: AtomicU64,
    gave_up: AtomicU64,
}

impl Retrier {
    pub(super) fn new(policy: RetryPolicy) -> Self {
        Retrier {
            policy,
            attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
        }
    }

    pub(super) fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// After failed attempt number `attempt` of `op`: the sleep before the next attempt,
    /// or `None` to return `err`.
    fn after_failure(&self, op: &str, err: &object_store::Error, attempt: u32) -> Option<Duration> {
        if !is_retryable(err) {
            return None;
        }
        if attempt >= self.policy.max_attempts {
            self.gave_up.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(op, attempt, "object store call failed, giving up: {err}");
            return None;
        }
        self.retries.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(op, attempt, "object store call failed, retrying: {err}");
        Some(self.policy.backoff(attempt))
    }

    /// Runs `call` until it succeeds, fails definitively, or attempts run out.
    pub(super) async fn run<T, F, Fut>(&self, op: &str, mut call: F) -> object_store::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let mut attempt = 1;
        loop {
            self.attempts.fetch_add(1, Ordering::Relaxed);
            let err = match call().await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let delay = self.after_failure(op, &err, attempt).ok_or(err)?;
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// A stream that re-creates `make()` while its first poll fails retryably; from the
    /// first item (or a definitive error, or give-up) on, it is the stream as is.
    pub(super) fn stream<T, M>(
        self: &Arc<Self>,
        op: &'static str,
        mut make: M,
    ) -> BoxStream<'static, object_store::Result<T>>
    where
        T: Send + 'static,
        M: FnMut() -> BoxStream<'static, object_store::Result<T>> + Send + 'static,
    {
        let retrier = Arc::clone(self);
        let settled = async move {
            let mut attempt = 1;
            loop {
                retrier.attempts.fetch_add(1, Ordering::Relaxed);
                let mut inner = make();
                let err = match inner.next().await {
                    None => return stream::empty().boxed(),
                    Some(Ok(first)) => return stream::once(future::ok(first)).chain(inner).boxed(),
                    Some(Err(err)) => err,
                };
                match retrier.after_failure(op, &err, attempt) {
                    None => return stream::once(future::err(err)).chain(inner).boxed(),
                    Some(delay) => {
                        drop(inner); // release the failed request before backing off
                        tokio::time::sleep(delay).await;
                    }
                }
                attempt += 1;
            }
        };
        stream::once(settled).flatten().boxed()
    }

    pub(super) fn stats(&self) -> RetryStats {
        RetryStats {
            attempts: self.attempts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            gave_up: self.gave_up.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::path::Path;

    use super::*;
    use crate::storage::RetryingStore;

    #[tokio::test]
    async fn every_definitive_variant_is_final_and_generic_is_retried() {
        let task = tokio::spawn(futures::future::pending::<()>());
        task.abort();
        let join = task.await.unwrap_err();
        let src = || -> Box<dyn std::error::Error + Send + Sync> { "x".into() };
        let p = || "p".to_string();
        use object_store::Error as E;
        let definitive = [
            E::NotFound {
                path: p(),
                source: src(),
            },
            E::AlreadyExists {
                path: p(),
                source: src(),
            },
            E::Precondition {
                path: p(),
                source: src(),
            },
            E::NotModified {
                path: p(),
                source: src(),
            },
            E::NotImplemented {
                operation: p(),
                implementer: p(),
            },
            E::NotSupported { source: src() },
            E::InvalidPath {
                source: Path::parse("a//b").unwrap_err(),
            },
            E::PermissionDenied {
                path: p(),
                source: src(),
            },
            E::Unauthenticated {
                path: p(),
                source: src(),
            },
            E::UnknownConfigurationKey {
                store: "s",
                key: p(),
            },
            E::JoinError { source: join },
        ];
        for err in &definitive {
            assert!(!is_retryable(err), "{err}");
        }
        assert!(is_retryable(&E::Generic {
            store: "s3",
            source: src()
        }));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_policies_are_validated() {
        let policy = RetryPolicy::default();
        let ms = Duration::from_millis;
        let sleeps: Vec<_> = (1..=9).map(|r| policy.backoff(r)).collect();
        assert_eq!(sleeps, [10, 20, 40, 80, 160, 320, 640, 1000, 1000].map(ms));
        assert_eq!(policy.backoff(u32::MAX), ms(1000));
        assert_eq!(policy.max_attempts, 8);
        let zero = RetryPolicy {
            max_attempts: 0,
            ..policy
        };
        let reversed = RetryPolicy {
            initial_backoff: ms(5),
            max_backoff: ms(1),
            ..policy
        };
        for bad in [zero, reversed] {
            assert!(matches!(bad.validate(), Err(Error::Plan(_))));
            let res = RetryingStore::new(Arc::new(InMemory::new()), bad);
            assert!(matches!(res, Err(Error::Plan(_))));
        }
    }
}
