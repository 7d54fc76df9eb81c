//! A tokio runtime beside the main one, for work that must not queue in front of the
//! API and the jobs: ad-hoc queries (at the lowest CPU priority) and results streams.
//! The main runtime's workers then only ever wait for short tasks, so `/healthz` and
//! the jobs API answer however much of this work is running; the operating system
//! shares the cores between the runtimes' threads.

use std::sync::Arc;

use tokio::runtime::{Handle, Runtime};

/// A runtime of its own, shut down (without waiting) when the last clone goes.
#[derive(Debug, Clone)]
pub struct SideRuntime(Arc<OwnedRuntime>);

#[derive(Debug)]
struct OwnedRuntime(Option<Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        // A runtime may not be dropped, blocking, from async code.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl SideRuntime {
    /// `threads` workers named `name`; `nice` (0 to 19) lowers their CPU priority.
    pub fn new(name: &str, threads: usize, nice: i32) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .max_blocking_threads(threads.max(1))
            .thread_name(name)
            // DataFusion plans and runs queries here; see `WORKER_STACK_BYTES`.
            .thread_stack_size(super::WORKER_STACK_BYTES)
            .on_thread_start(move || lower_cpu_priority(nice))
            .enable_all()
            .build()?;
        Ok(SideRuntime(Arc::new(OwnedRuntime(Some(runtime)))))
    }

    pub fn handle(&self) -> &Handle {
        self.0
            .0
            .as_ref()
            .expect("the runtime lives until the last clone is dropped")
            .handle()
    }
}

/// Sets the calling thread's nice value (on Linux a thread's nice value is its own).
fn lower_cpu_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice != 0
        && let Err(e) = rustix::process::setpriority_process(None, nice)
    {
        tracing::warn!("cannot lower the priority of a thread: {e}");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}
