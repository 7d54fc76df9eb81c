//! Crash points: make a [`FaultyStore`](super::FaultyStore) die at a named moment.
//!
//! Random faults show that a protocol survives failures *somewhere*; a crash point shows
//! that it survives a crash at one chosen step, such as "right after the 3rd manifest
//! was created". A [`CrashPoint`] names an operation kind, a substring of the path the
//! call is aimed at, and which matching call is meant (counted from 1). The matching
//! call is applied to the inner store, and from then on the store is down: that call
//! and every call decided after it fail with an injected error, exactly as if the
//! process had died right after the operation reached storage. Calls that had already
//! been forwarded keep running, as requests in flight at the moment of a crash would.
//! (Creating a multipart upload and sending its parts are never decided, so they still
//! reach the inner store; the upload's `complete()` fails, and nothing becomes visible.)
//!
//! The point is matched against the location an injected error names: the object path
//! for reads and writes, the prefix for listings, `"from -> to"` for copies and renames,
//! and each path on its own for `delete_stream` (so "the first delete of a collection"
//! can be hit inside a batch). Crash points are evaluated only while the store is
//! enabled: disabling it forwards everything again, a crashed store included.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::config::OpKind;
use super::injector::InjectedFault;
use crate::{Error, Result};

/// Where a store crashes: the `occurrence`-th call of kind `op` whose location contains
/// `path_contains`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashPoint {
    op: OpKind,
    path_contains: String,
    occurrence: u64,
}

impl CrashPoint {
    /// The `occurrence`-th (from 1) call of kind `op` aimed at a location containing
    /// `path_contains`. Fails with `Error::Plan` for occurrence 0.
    pub fn new(op: OpKind, path_contains: impl Into<String>, occurrence: u64) -> Result<Self> {
        if occurrence == 0 {
            return Err(Error::Plan(
                "crash point occurrences are counted from 1".into(),
            ));
        }
        Ok(CrashPoint {
            op,
            path_contains: path_contains.into(),
            occurrence,
        })
    }

    /// The operation kind that crashes the store.
    pub fn op(&self) -> OpKind {
        self.op
    }

    /// The substring a matching location contains.
    pub fn path_contains(&self) -> &str {
        &self.path_contains
    }

    /// Which matching call crashes the store, counted from 1.
    pub fn occurrence(&self) -> u64 {
        self.occurrence
    }

    /// Whether a call of kind `op` aimed at `location` counts towards this point.
    pub fn matches(&self, op: OpKind, location: &str) -> bool {
        op == self.op && location.contains(&self.path_contains)
    }
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} #{} at a path containing '{}'",
            self.op, self.occurrence, self.path_contains
        )
    }
}

/// A crash that happened: which point fired, on which call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashReport {
    /// The point that fired.
    pub point: CrashPoint,
    /// The location of the call that was applied last.
    pub location: String,
    /// How many store calls had been made when it fired, that call included (see
    /// [`FaultStats::calls`](super::FaultStats::calls)).
    pub calls: u64,
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crashed after {} '{}' (call {})",
            self.point.op, self.location, self.calls
        )
    }
}

#[derive(Debug, Default)]
struct Armed {
    point: Option<CrashPoint>,
    /// Matching calls seen so far.
    matched: u64,
    fired: Option<CrashReport>,
}

/// The crash switch of one store: the armed point, how far it has counted, and whether
/// it fired. `down` mirrors `fired` so the common case (not crashed) needs no lock to
/// answer [`CrashSwitch::is_down`].
#[derive(Debug, Default)]
pub(super) struct CrashSwitch {
    down: AtomicBool,
    armed: Mutex<Armed>,
}

impl CrashSwitch {
    /// Arms `point`, forgetting any earlier point, count and crash (revives the store).
    pub(super) fn arm(&self, point: Option<CrashPoint>) {
        let mut armed = self.lock();
        *armed = Armed {
            point,
            ..Armed::default()
        };
        self.down.store(false, Ordering::Release);
    }

    pub(super) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    pub(super) fn report(&self) -> Option<CrashReport> {
        self.lock().fired.clone()
    }

    /// The crash fault of one call: `Down` once crashed, `Crash` for the call that fires
    /// the point, `None` otherwise. `calls` is the store's call count, this one included.
    pub(super) fn check(
        &self,
        op: OpKind,
        location: impl FnOnce() -> String,
        calls: u64,
    ) -> Option<InjectedFault> {
        let mut armed = self.lock();
        if armed.fired.is_some() {
            return Some(InjectedFault::Down);
        }
        let point = armed.point.as_ref().filter(|p| p.op == op)?;
        let location = location();
        if !point.matches(op, &location) {
            return None;
        }
        let point = point.clone();
        armed.matched += 1;
        if armed.matched < point.occurrence {
            return None;
        }
        armed.fired = Some(CrashReport {
            point,
            location,
            calls,
        });
        self.down.store(true, Ordering::Release);
        Some(InjectedFault::Crash)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Armed> {
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(op: OpKind, path: &str, occurrence: u64) -> CrashPoint {
        CrashPoint::new(op, path, occurrence).unwrap()
    }

    #[test]
    fn occurrences_count_from_one() {
        assert!(matches!(
            CrashPoint::new(OpKind::Put, "x", 0),
            Err(Error::Plan(_))
        ));
        let point = at(OpKind::Delete, "/manifests/", 2);
        assert_eq!(
            point.to_string(),
            "delete #2 at a path containing '/manifests/'"
        );
        assert!(point.matches(OpKind::Delete, "r/jobs/j/manifests/0001.json"));
        assert!(!point.matches(OpKind::Put, "r/jobs/j/manifests/0001.json"));
        assert!(!point.matches(OpKind::Delete, "r/jobs/j/checkpoints/x"));
    }

    #[test]
    fn fires_on_the_nth_match_and_then_refuses_everything() {
        let switch = CrashSwitch::default();
        let check = |op, path: &str, calls| switch.check(op, || path.to_string(), calls);
        // Unarmed: nothing happens.
        assert_eq!(check(OpKind::Put, "a/m/1", 1), None);
        switch.arm(Some(at(OpKind::Put, "/m/", 3)));
        assert_eq!(check(OpKind::Put, "a/m/1", 2), None);
        assert_eq!(check(OpKind::Get, "a/m/1", 3), None);
        assert_eq!(check(OpKind::Put, "a/s/1", 4), None);
        assert_eq!(check(OpKind::Put, "a/m/2", 5), None);
        assert!(!switch.is_down() && switch.report().is_none());
        assert_eq!(check(OpKind::Put, "a/m/3", 6), Some(InjectedFault::Crash));
        assert!(switch.is_down());
        let report = switch.report().unwrap();
        assert_eq!((report.location.as_str(), report.calls), ("a/m/3", 6));
        assert_eq!(report.to_string(), "crashed after put 'a/m/3' (call 6)");
        for op in OpKind::ALL {
            assert_eq!(check(op, "anything", 7), Some(InjectedFault::Down));
        }
        // Arming again starts over and revives the store.
        switch.arm(Some(at(OpKind::Put, "/m/", 1)));
        assert!(!switch.is_down() && switch.report().is_none());
        assert_eq!(check(OpKind::Put, "a/m/4", 8), Some(InjectedFault::Crash));
        switch.arm(None);
        assert_eq!(check(OpKind::Put, "a/m/5", 9), None);
    }

    #[test]
    fn locations_are_only_built_for_calls_of_the_armed_kind() {
        let switch = CrashSwitch::default();
        switch.arm(Some(at(OpKind::Delete, "x", 1)));
        let never = || -> String { panic!("location built for a call that cannot match") };
        assert_eq!(switch.check(OpKind::Put, never, 1), None);
    }
}
