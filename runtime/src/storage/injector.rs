//! The seeded decision core of the fault-injecting store, and the errors it raises.
//!
//! One [`Injector`] is shared (behind an `Arc`) by a [`FaultyStore`](super::FaultyStore),
//! its multipart uploads and every [`FaultController`] handed out. Decisions come from a
//! single `StdRng` behind a mutex, drawn when a call starts (the first poll of an async
//! method, the creation of a stream) and before it awaits anything, so for a given seed
//! and a given order of calls the faults are identical on every run (concurrent calls
//! draw in the order the executor first polls them). Calls that are not eligible (store
//! disabled, operation kind not in [`FaultConfig::ops`]) draw nothing, so healing and
//! re-breaking a store is deterministic too. An armed crash point
//! ([`CrashPoint`](super::CrashPoint)) is checked before that draw and consumes no
//! randomness either. Injected errors are `object_store::Error::Generic { store: "faulty", .. }`
//! wrapping an [`InjectedError`]: callers see an ordinary external storage failure, tests can
//! still tell them apart with [`is_injected`].

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{FaultConfig, OpKind};
use super::crash::CrashSwitch;
use crate::Result;

mod controller;

pub use controller::FaultController;

/// The `store` name carried by every injected `object_store::Error::Generic`.
pub const FAULTY_STORE_NAME: &str = "faulty";

/// The fault decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFault {
    /// Fail without touching the inner store.
    FailBefore,
    /// Perform the call, then fail: the caller cannot know it took effect.
    ApplyThenTimeout,
    /// Sleep, then forward.
    Latency(Duration),
    /// Put only the first `kept` bytes of the payload (strictly fewer than all of them).
    TruncateWrite {
        /// Number of payload bytes actually written.
        kept: usize,
    },
    /// The armed crash point fired on this call: it was performed, then the store went
    /// down before answering.
    Crash,
    /// The store is down after a crash: the call never reached it.
    Down,
}

impl InjectedFault {
    /// Whether the failed call was nevertheless performed on the inner store.
    pub fn was_applied(self) -> bool {
        matches!(self, InjectedFault::ApplyThenTimeout | InjectedFault::Crash)
    }
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InjectedFault::FailBefore => f.write_str("failed before reaching the store"),
            InjectedFault::ApplyThenTimeout => f.write_str("timed out after being applied"),
            InjectedFault::Latency(d) => write!(f, "delayed by {d:?}"),
            InjectedFault::TruncateWrite { kept } => write!(f, "truncated to {kept} bytes"),
            InjectedFault::Crash => f.write_str("was applied, then the store crashed"),
            InjectedFault::Down => f.write_str("refused: the store has crashed"),
        }
    }
}

/// The source of an injected `object_store::Error::Generic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedError {
    /// The operation that failed.
    pub op: OpKind,
    /// The path (or list prefix) it was aimed at; empty when unknown.
    pub location: String,
    /// What was injected: `FailBefore`, `ApplyThenTimeout`, `Crash` or `Down`.
    pub fault: InjectedFault,
}

impl fmt::Display for InjectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "injected fault: {} '{}' {}",
            self.op, self.location, self.fault
        )
    }
}

impl std::error::Error for InjectedError {}

impl InjectedError {
    /// Wraps this error the way the store returns it.
    pub fn into_object_store_error(self) -> object_store::Error {
        object_store::Error::Generic {
            store: FAULTY_STORE_NAME,
            source: Box::new(self),
        }
    }
}

/// Whether `err` was injected by a `FaultyStore` (rather than raised by the inner store).
pub fn is_injected(err: &object_store::Error) -> bool {
    injected_fault(err).is_some()
}

/// The fault behind `err`, if a `FaultyStore` injected it.
pub fn injected_fault(err: &object_store::Error) -> Option<InjectedFault> {
    match err {
        object_store::Error::Generic { store, source } if *store == FAULTY_STORE_NAME => source
            .downcast_ref::<InjectedError>()
            .map(|injected| injected.fault),
        _ => None,
    }
}

/// A snapshot of what a store has seen and injected so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Calls considered for a fault, eligible or not, enabled or not: every store call
    /// plus multipart `complete()`, but not multipart creation, `put_part` or `abort`.
    pub calls: u64,
    /// Calls failed without touching the inner store.
    pub fail_before: u64,
    /// Calls applied on the inner store and then failed.
    pub apply_then_timeout: u64,
    /// Calls delayed before being forwarded.
    pub latency: u64,
    /// Puts that stored a truncated payload.
    pub truncate_write: u64,
    /// Calls (and paths of a `delete_stream`) failed by a crash point: the one that fired
    /// it and every one decided after it.
    pub crashed: u64,
}

impl FaultStats {
    /// Calls that returned an injected error (`fail_before + apply_then_timeout + crashed`).
    pub fn failures(&self) -> u64 {
        self.fail_before + self.apply_then_timeout + self.crashed
    }

    /// Every injected fault, of any kind.
    pub fn injected(&self) -> u64 {
        self.failures() + self.latency + self.truncate_write
    }
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    fail_before: AtomicU64,
    apply_then_timeout: AtomicU64,
    latency: AtomicU64,
    truncate_write: AtomicU64,
    crashed: AtomicU64,
}

#[derive(Debug)]
struct Decider {
    rng: StdRng,
    config: FaultConfig,
}

/// Shared state: switch, seeded decider, counters.
#[derive(Debug)]
pub(super) struct Injector {
    enabled: AtomicBool,
    seed: u64,
    decider: Mutex<Decider>,
    crash: CrashSwitch,
    counters: Counters,
}

impl Injector {
    pub(super) fn new(config: FaultConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        Ok(Injector {
            enabled: AtomicBool::new(config.enabled),
            seed,
            decider: Mutex::new(Decider {
                rng: StdRng::seed_from_u64(seed),
                config,
            }),
            crash: CrashSwitch::default(),
            counters: Counters::default(),
        })
    }

    /// Decides the fault for one call of kind `op` aimed at `location` (built only if a
    /// crash point of that kind is armed). `put_len` is the payload length for puts that
    /// may be truncated, `None` for every other call.
    pub(super) fn decide(
        &self,
        op: OpKind,
        location: impl FnOnce() -> String,
        put_len: Option<usize>,
    ) -> Option<InjectedFault> {
        let calls = self.counters.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let fault = match self.crash.check(op, location, calls) {
            Some(crash) => crash,
            None => {
                let mut decider = self.decider.lock().unwrap_or_else(|e| e.into_inner());
                decider.draw(op, put_len)?
            }
        };
        self.count(fault);
        Some(fault)
    }

    /// Decides the fault for a stream whose items are separate targets
    /// (`delete_stream`): the draw is made once for the whole stream, like
    /// [`Injector::decide`], while the crash point is checked per item with
    /// [`Injector::decide_item`]. A store that is already down refuses the stream.
    pub(super) fn decide_stream(&self, op: OpKind) -> Option<InjectedFault> {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let fault = if self.crash.is_down() {
            InjectedFault::Down
        } else {
            let mut decider = self.decider.lock().unwrap_or_else(|e| e.into_inner());
            decider.draw(op, None)?
        };
        self.count(fault);
        Some(fault)
    }

    /// The crash fault of one item of a stream decided with [`Injector::decide_stream`]:
    /// `Crash` if it fires the point, `Down` if the store already crashed.
    pub(super) fn decide_item(
        &self,
        op: OpKind,
        location: impl FnOnce() -> String,
    ) -> Option<InjectedFault> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let calls = self.counters.calls.load(Ordering::Relaxed);
        let fault = self.crash.check(op, location, calls)?;
        self.count(fault);
        Some(fault)
    }

    /// Whether an armed crash point has fired (and the store is enabled).
    pub(super) fn is_down(&self) -> bool {
        self.enabled.load(Ordering::Acquire) && self.crash.is_down()
    }

    fn count(&self, fault: InjectedFault) {
        let counter = match fault {
            InjectedFault::FailBefore => &self.counters.fail_before,
            InjectedFault::ApplyThenTimeout => &self.counters.apply_then_timeout,
            InjectedFault::Latency(_) => &self.counters.latency,
            InjectedFault::TruncateWrite { .. } => &self.counters.truncate_write,
            InjectedFault::Crash | InjectedFault::Down => &self.counters.crashed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn seed(&self) -> u64 {
        self.seed
    }

    pub(super) fn config(&self) -> FaultConfig {
        self.decider
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .clone()
    }

    fn set_config(&self, config: FaultConfig) -> Result<()> {
        config.validate()?;
        self.enabled.store(config.enabled, Ordering::Release);
        self.decider
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .config = config;
        Ok(())
    }

    pub(super) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    pub(super) fn stats(&self) -> FaultStats {
        let c = &self.counters;
        FaultStats {
            calls: c.calls.load(Ordering::Relaxed),
            fail_before: c.fail_before.load(Ordering::Relaxed),
            apply_then_timeout: c.apply_then_timeout.load(Ordering::Relaxed),
            latency: c.latency.load(Ordering::Relaxed),
            truncate_write: c.truncate_write.load(Ordering::Relaxed),
            crashed: c.crashed.load(Ordering::Relaxed),
        }
    }
}

impl Decider {
    /// One uniform draw walks the cumulative probabilities; a latency or a truncation
    /// length costs one more draw. Ineligible calls draw nothing.
    fn draw(&mut self, op: OpKind, put_len: Option<usize>) -> Option<InjectedFault> {
        let c = &self.config;
        if !c.ops.contains(op) {
            return None;
        }
        let u: f64 = self.rng.random();
        let mut bound = c.fail_before;
        if u < bound {
            return Some(InjectedFault::FailBefore);
        }
        bound += c.apply_then_timeout;
        if u < bound {
            return Some(InjectedFault::ApplyThenTimeout);
        }
        bound += c.latency;
        if u < bound {
            let (min, max) = c.latency_range;
            let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            let delay = self.rng.random_range(nanos(min)..=nanos(max));
            return Some(InjectedFault::Latency(Duration::from_nanos(delay)));
        }
        bound += c.truncate_write;
        match put_len {
            Some(len) if u < bound && len > 0 => Some(InjectedFault::TruncateWrite {
                kept: self.rng.random_range(0..len),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_errors_are_generic_faulty_store_errors() {
        let err = InjectedError {
            op: OpKind::Put,
            location: "a/b".into(),
            fault: InjectedFault::ApplyThenTimeout,
        }
        .into_object_store_error();
        assert!(matches!(
            err,
            object_store::Error::Generic {
                store: "faulty",
                ..
            }
        ));
        let text = err.to_string();
        assert!(
            text.contains("put 'a/b' timed out after being applied"),
            "{text}"
        );
        assert_eq!(injected_fault(&err), Some(InjectedFault::ApplyThenTimeout));
        let foreign = object_store::Error::Generic {
            store: "faulty",
            source: "not injected".into(),
        };
        assert!(!is_injected(&foreign));
    }

    #[test]
    fn decisions_depend_only_on_seed_and_calls() {
        let config = FaultConfig::failures(0.3).with_truncate_write(0.3);
        let run = |seed| {
            let injector = Injector::new(config.clone(), seed).unwrap();
            (0..500)
                .map(|i| {
                    let put_len = Some(10).filter(|_| i % 7 == 0);
                    injector.decide(OpKind::ALL[i % 7], String::new, put_len)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        let injector = Injector::new(config.disabled(), 1).unwrap();
        assert_eq!(injector.decide(OpKind::Put, String::new, Some(10)), None);
        assert_eq!(injector.stats().calls, 1);
        assert_eq!(injector.stats().injected(), 0);
    }
}
