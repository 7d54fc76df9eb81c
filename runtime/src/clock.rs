//! Processing time and randomness, injected so that nothing in runnel reads the machine
//! directly: tests drive time by hand, and a run that fails reproduces from its seed.
//!
//! `clippy.toml` enforces it: `SystemTime::now`, `Instant::now`, `rand::random` and the
//! [`SystemClock`] type are refused outside this module, the binary's entry points and
//! tests. A component that needs the time takes an `Arc<dyn Clock>`; one that needs unique
//! names or ids takes a [`SeededRng`]; the binary makes both once ([`Ambient::system`]).

// The one module that reads the machine's clock and entropy.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::message::Millis;

/// A source of processing time (not event time).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch (wall clock: may jump).
    fn now_millis(&self) -> Millis;

    /// A reading that never goes back, for measuring how long something took; only
    /// differences of two readings mean anything.
    fn monotonic(&self) -> Duration;

    /// Time passed since the reading `start` of [`Clock::monotonic`].
    fn elapsed(&self, start: Duration) -> Duration {
        self.monotonic().saturating_sub(start)
    }
}

/// The machine's wall clock. Created only by the binary and by [`crate::JobConfig`]'s
/// default: everything else is handed a clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }

    fn monotonic(&self) -> Duration {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let origin = *ORIGIN.get_or_init(Instant::now);
        Instant::now().duration_since(origin)
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Millis) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start)))
    }

    /// Moves the clock by `millis` (backwards when negative, as a wall clock may).
    pub fn advance(&self, millis: Millis) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }

    fn monotonic(&self) -> Duration {
        Duration::from_millis(self.now_millis().max(0) as u64)
    }
}

/// A random number generator from a known seed, shared by its clones. Used where runnel
/// needs names no other run can have picked (data file tokens, snapshot ids): the seed
/// differs per process, and logging it makes a run's names reproducible.
#[derive(Debug, Clone)]
pub struct SeededRng {
    seed: u64,
    rng: Arc<Mutex<StdRng>>,
}

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        SeededRng {
            seed,
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))),
        }
    }

    /// The seed it started from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn next_u64(&self) -> u64 {
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_u64()
    }
}

/// What a component reads from the world: processing time and randomness.
#[derive(Debug, Clone)]
pub struct Ambient {
    pub clock: Arc<dyn Clock>,
    pub rng: SeededRng,
}

impl Ambient {
    pub fn new(clock: Arc<dyn Clock>, seed: u64) -> Self {
        Ambient {
            clock,
            rng: SeededRng::new(seed),
        }
    }

    /// The machine's clock and a seed from the operating system: for the binary's entry
    /// points and tests only (`clippy.toml` refuses it elsewhere).
    pub fn system() -> Self {
        Ambient::new(Arc::new(SystemClock), rand::random())
    }

    /// A [`ManualClock`] at `start` and a fixed seed: a reproducible world for tests.
    pub fn manual(start: Millis, seed: u64) -> (Self, ManualClock) {
        let clock = ManualClock::new(start);
        (Ambient::new(Arc::new(clock.clone()), seed), clock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_numbers_and_clones_share_one_sequence() {
        let a = SeededRng::new(7);
        let b = SeededRng::new(7);
        let first: Vec<u64> = (0..3).map(|_| a.next_u64()).collect();
        let again: Vec<u64> = (0..3).map(|_| b.next_u64()).collect();
        assert_eq!(first, again);
        let shared = a.clone();
        assert_ne!(a.next_u64(), shared.next_u64());
    }

    #[test]
    fn manual_time_moves_only_when_told() {
        let (ambient, clock) = Ambient::manual(1_000, 1);
        let start = ambient.clock.monotonic();
        clock.advance(250);
        assert_eq!(ambient.clock.now_millis(), 1_250);
        assert_eq!(ambient.clock.elapsed(start), Duration::from_millis(250));
        clock.advance(-300);
        assert_eq!(ambient.clock.elapsed(start), Duration::ZERO);
    }
}
