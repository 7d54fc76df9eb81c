//! What [`FaultyStore`](super::FaultyStore) may inject, how often, and into which calls.
//!
//! A [`FaultConfig`] is plain data: one probability per fault kind, the set of operation
//! kinds that are eligible for faults ([`OpSet`]) and a latency range. Each eligible call
//! draws ONE uniform number and walks the cumulative probabilities in a fixed order
//! (fail-before, apply-then-timeout, latency, truncate-write), so the kinds are mutually
//! exclusive per call and their probabilities must sum to at most 1. To inject different
//! faults into different operation kinds, stack two stores (a `FaultyStore` wraps any
//! `ObjectStore`, including another `FaultyStore`).

use std::fmt;
use std::ops::BitOr;
use std::time::Duration;

use crate::{Error, Result};

/// The kinds of object-store operation a fault can be aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `put_opts`, and the `complete()` of a multipart upload.
    Put,
    /// `get_opts` (without `head`) and `get_ranges`.
    Get,
    /// `get_opts` with `head = true` (what `ObjectStoreExt::head` sends).
    Head,
    /// `list`, `list_with_offset`, `list_with_delimiter`.
    List,
    /// `delete_stream` (what `ObjectStoreExt::delete` sends).
    Delete,
    /// `copy_opts` (`copy`, `copy_if_not_exists`).
    Copy,
    /// `rename_opts` (`rename`, `rename_if_not_exists`).
    Rename,
}

impl OpKind {
    /// Every operation kind, in declaration order.
    pub const ALL: [OpKind; 7] = [
        OpKind::Put,
        OpKind::Get,
        OpKind::Head,
        OpKind::List,
        OpKind::Delete,
        OpKind::Copy,
        OpKind::Rename,
    ];

    /// Lower-case name used in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::Head => "head",
            OpKind::List => "list",
            OpKind::Delete => "delete",
            OpKind::Copy => "copy",
            OpKind::Rename => "rename",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`OpKind`]s (a small bit set). Build it with `OpSet::ALL`, `OpSet::NONE`,
/// `OpSet::from(kind)` and `|`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpSet(u8);

impl OpSet {
    /// No operation.
    pub const NONE: OpSet = OpSet(0);
    /// Every operation kind.
    pub const ALL: OpSet = OpSet((1 << OpKind::ALL.len()) - 1);
    /// Operations that change the store: put, delete, copy, rename.
    pub const WRITES: OpSet =
        OpSet(OpKind::Put.bit() | OpKind::Delete.bit() | OpKind::Copy.bit() | OpKind::Rename.bit());
    /// Operations that only read: get, head, list.
    pub const READS: OpSet = OpSet(OpKind::Get.bit() | OpKind::Head.bit() | OpKind::List.bit());

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: OpKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// This set plus `kind`.
    pub const fn with(self, kind: OpKind) -> OpSet {
        OpSet(self.0 | kind.bit())
    }
}

impl From<OpKind> for OpSet {
    fn from(kind: OpKind) -> Self {
        OpSet(kind.bit())
    }
}

impl<T: Into<OpSet>> BitOr<T> for OpSet {
    type Output = OpSet;
    fn bitor(self, rhs: T) -> OpSet {
        OpSet(self.0 | rhs.into().0)
    }
}

impl BitOr for OpKind {
    type Output = OpSet;
    fn bitor(self, rhs: OpKind) -> OpSet {
        OpSet::from(self) | rhs
    }
}

impl fmt::Debug for OpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds = OpKind::ALL.into_iter().filter(|k| self.contains(*k));
        f.debug_set().entries(kinds).finish()
    }
}

/// Probabilities and scope of the faults a [`FaultyStore`](super::FaultyStore) injects.
///
/// All probabilities are per eligible call, in `[0, 1]`, and sum to at most 1.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Return an error without touching the inner store.
    pub fail_before: f64,
    /// Perform the call on the inner store, then return an error anyway (a lost response).
    pub apply_then_timeout: f64,
    /// Sleep for a duration drawn from `latency_range`, then forward.
    pub latency: f64,
    /// For puts only: store a strict prefix of the payload and report success (a torn
    /// write). On other operations this share of calls is forwarded untouched.
    pub truncate_write: f64,
    /// Inclusive `(min, max)` of injected latencies.
    pub latency_range: (Duration, Duration),
    /// Operation kinds eligible for faults; other calls are always forwarded.
    pub ops: OpSet,
    /// Whether the store starts injecting; see `FaultyStore::set_enabled`.
    pub enabled: bool,
    /// Treat every conditional put (`PutMode::Create`, `PutMode::Update`) as a plain
    /// overwrite, like S3-compatible servers that accept the headers and ignore them.
    /// Not drawn: while the store is enabled it applies to every put.
    pub ignore_preconditions: bool,
}

impl Default for FaultConfig {
    /// No faults at all, every operation eligible, enabled.
    fn default() -> Self {
        FaultConfig {
            fail_before: 0.0,
            apply_then_timeout: 0.0,
            latency: 0.0,
            truncate_write: 0.0,
            latency_range: (Duration::ZERO, Duration::ZERO),
            ops: OpSet::ALL,
            enabled: true,
            ignore_preconditions: false,
        }
    }
}

impl FaultConfig {
    /// A store that injects nothing (until the config is replaced).
    pub fn none() -> Self {
        Self::default()
    }

    /// `rate` of all calls fail: half before reaching the store, half after being applied
    /// ("20% of object-store calls failing or timing out after applying" is
    /// `FaultConfig::failures(0.2)`).
    pub fn failures(rate: f64) -> Self {
        Self::default()
            .with_fail_before(rate / 2.0)
            .with_apply_then_timeout(rate / 2.0)
    }

    /// Sets [`FaultConfig::fail_before`].
    #[must_use]
    pub fn with_fail_before(mut self, p: f64) -> Self {
        self.fail_before = p;
        self
    }

    /// Sets [`FaultConfig::apply_then_timeout`].
    #[must_use]
    pub fn with_apply_then_timeout(mut self, p: f64) -> Self {
        self.apply_then_timeout = p;
        self
    }

    /// Sets [`FaultConfig::latency`] and the inclusive latency range.
    #[must_use]
    pub fn with_latency(mut self, p: f64, min: Duration, max: Duration) -> Self {
        self.latency = p;
        self.latency_range = (min, max);
        self
    }

    /// Sets [`FaultConfig::truncate_write`].
    #[must_use]
    pub fn with_truncate_write(mut self, p: f64) -> Self {
        self.truncate_write = p;
        self
    }

    /// Restricts faults to the given operation kinds.
    #[must_use]
    pub fn with_ops(mut self, ops: impl Into<OpSet>) -> Self {
        self.ops = ops.into();
        self
    }

    /// Sets [`FaultConfig::ignore_preconditions`].
    #[must_use]
    pub fn with_ignored_preconditions(mut self) -> Self {
        self.ignore_preconditions = true;
        self
    }

    /// Starts the store disabled (forwarding everything) until `set_enabled(true)`.
    #[must_use]
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// Checks that every probability is in `[0, 1]`, that they sum to at most 1, and that
    /// the latency range is not reversed.
    pub fn validate(&self) -> Result<()> {
        let probabilities = [
            ("fail_before", self.fail_before),
            ("apply_then_timeout", self.apply_then_timeout),
            ("latency", self.latency),
            ("truncate_write", self.truncate_write),
        ];
        for (name, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::Plan(format!(
                    "fault probability {name} must be in [0, 1], got {p}"
                )));
            }
        }
        let total: f64 = probabilities.iter().map(|(_, p)| p).sum();
        // Tolerate rounding, e.g. failures(0.2) plus a 0.8 latency share.
        if total > 1.0 + 1e-9 {
            return Err(Error::Plan(format!(
                "fault probabilities must sum to at most 1, got {total}"
            )));
        }
        let (min, max) = self.latency_range;
        if min > max {
            return Err(Error::Plan(format!(
                "fault latency range is reversed: min {min:?} > max {max:?}"
            )));
        }
        Ok(())
    }
}

impl fmt::Display for FaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (min, max) = self.latency_range;
        write!(
            f,
            "fail_before={} apply_then_timeout={} latency={} ({min:?}..={max:?}) \
             truncate_write={} ops={:?}",
            self.fail_before, self.apply_then_timeout, self.latency, self.truncate_write, self.ops
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_configs_are_plan_errors() {
        let ms = Duration::from_millis;
        for config in [
            FaultConfig::none().with_fail_before(1.5),
            FaultConfig::none().with_apply_then_timeout(-0.1),
            FaultConfig::none().with_truncate_write(f64::NAN),
            FaultConfig::failures(0.8).with_latency(0.5, ms(0), ms(1)),
            FaultConfig::none().with_latency(0.1, ms(5), ms(1)),
        ] {
            assert!(matches!(config.validate(), Err(Error::Plan(_))), "{config}");
        }
        let full = FaultConfig::failures(0.2)
            .with_latency(0.7, ms(0), ms(1))
            .with_truncate_write(0.1);
        full.validate().unwrap();
        FaultConfig::none().validate().unwrap();
    }

    #[test]
    fn op_sets_hold_exactly_their_kinds() {
        let set = OpKind::Put | OpKind::List;
        let members: Vec<_> = OpKind::ALL
            .into_iter()
            .filter(|k| set.contains(*k))
            .collect();
        assert_eq!(members, [OpKind::Put, OpKind::List]);
        assert_eq!(format!("{set:?}"), "{Put, List}");
        assert_eq!(OpSet::WRITES | OpSet::READS, OpSet::ALL);
        assert_eq!(OpSet::NONE.with(OpKind::Copy), OpSet::from(OpKind::Copy));
        assert!(OpSet::WRITES.contains(OpKind::Rename) && !OpSet::READS.contains(OpKind::Put));
    }
}
