//! [`FaultController`]: the handle tests keep to steer a fault-injecting store.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::super::config::FaultConfig;
use super::super::crash::{CrashPoint, CrashReport};
use super::{FaultStats, Injector};
use crate::Result;

/// A cloneable handle to a store's fault switch, config and counters, for tests that
/// only hold the store as an `Arc<dyn ObjectStore>`.
#[derive(Debug, Clone)]
pub struct FaultController {
    pub(in crate::storage) injector: Arc<Injector>,
}

impl FaultController {
    /// Turns injection on or off; while off every call is forwarded untouched (heals the
    /// store) and no randomness is consumed.
    pub fn set_enabled(&self, enabled: bool) {
        self.injector.enabled.store(enabled, Ordering::Release);
    }

    /// Whether faults are currently injected.
    pub fn is_enabled(&self) -> bool {
        self.injector.is_enabled()
    }

    /// Replaces the fault config for later calls (the RNG keeps its state). Also applies
    /// `config.enabled`. Fails with `Error::Plan` if the config is invalid.
    pub fn set_config(&self, config: FaultConfig) -> Result<()> {
        self.injector.set_config(config)
    }

    /// The current fault config.
    pub fn config(&self) -> FaultConfig {
        self.injector.config()
    }

    /// Counters of calls and injected faults so far.
    pub fn stats(&self) -> FaultStats {
        self.injector.stats()
    }

    /// Arms a crash point, replacing any earlier one and reviving a crashed store: the
    /// store goes down right after the call `point` names (see [`CrashPoint`]).
    pub fn arm_crash(&self, point: CrashPoint) {
        self.injector.crash.arm(Some(point));
    }

    /// Removes the crash point and revives the store if it had crashed.
    pub fn disarm_crash(&self) {
        self.injector.crash.arm(None);
    }

    /// The crash, once the armed point has fired.
    pub fn crash(&self) -> Option<CrashReport> {
        self.injector.crash.report()
    }
}
