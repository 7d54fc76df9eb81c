//! Runs every durable job of a data root and keeps its live status.
//!
//! At start the manager resumes each stored job that has not finished: the runtime
//! claims the job's checkpoint chain (fencing any older instance, wherever it runs),
//! restores the newest checkpoint and rewinds the sources, so a killed process loses
//! nothing. A job that fails for an outside reason restarts from its last checkpoint
//! ([`run_with_restarts`]); a job fenced by a newer instance stops for good and says so.
//! A background task samples every job's counters for its rates ([`super::rates`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use runnel_connectors::log::EmbeddedLog;
use runnel_runtime::checkpoint::ObjectStoreCheckpoints;
use runnel_runtime::{CheckpointConfig, JobConfig, JobHandle, RestartPolicy, run_with_restarts};
use tokio::task::JoinHandle;

use super::catalog::{Finished, JobCatalog};
use super::definition::{JobDefinition, JobKind};
use super::entry::{Entry, JobState, JobStatus, StopRequest};
use super::graphs;
use super::rates::SAMPLE_INTERVAL;
use super::topology::JobTopology;
use crate::data::DataRoot;

/// The durable jobs of one data root, running in this process.
#[derive(Clone)]
pub struct JobManager {
    inner: Arc<Inner>,
}

struct Inner {
    data: DataRoot,
    log: EmbeddedLog,
    catalog: JobCatalog,
    checkpoint_interval: Duration,
    jobs: Mutex<Jobs>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The jobs this process knows, and whether it is shutting down (then every job is
/// asked to stop, including one registered after the shutdown began).
#[derive(Default)]
struct Jobs {
    entries: BTreeMap<String, Arc<Entry>>,
    shutting_down: bool,
}

impl Inner {
    fn jobs(&self) -> MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn entries(&self) -> Vec<Arc<Entry>> {
        self.jobs().entries.values().cloned().collect()
    }
}

impl std::fmt::Debug for JobManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobManager")
            .field("data", &self.inner.data)
            .finish()
    }
}

impl JobManager {
    /// The jobs of `data`. Inside a tokio runtime this also starts the task that samples
    /// the jobs' counters for their rates; it ends when the manager is dropped.
    pub fn new(data: DataRoot, checkpoint_interval: Duration) -> Self {
        let manager = JobManager {
            inner: Arc::new(Inner {
                log: data.log(),
                catalog: JobCatalog::new(data.store.clone(), data.root.clone()),
                data,
                checkpoint_interval,
                jobs: Mutex::default(),
                tasks: Mutex::default(),
            }),
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(sample_rates(Arc::downgrade(&manager.inner)));
        }
        manager
    }

    pub fn catalog(&self) -> &JobCatalog {
        &self.inner.catalog
    }

    /// Starts every stored job that has not finished; finished ones are listed as such.
    /// A definition that cannot be read is reported and skipped: it must not keep the
    /// other jobs from running. Returns the number of jobs started.
    pub async fn resume_all(&self) -> anyhow::Result<usize> {
        let mut started = 0;
        for name in self.inner.catalog.names().await? {
            let definition = match self.inner.catalog.get(&name).await {
                Ok(Some(definition)) => definition,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(job = %name, "not resumed: {e:#}");
                    continue;
                }
            };
            let state = if self.inner.catalog.dropped(&name).await? {
                JobState::Dropped
            } else if self.inner.catalog.finished(&name).await?.is_some() {
                JobState::Finished
            } else {
                JobState::Starting
            };
            let entry = self.register(definition, state);
            if state == JobState::Starting {
                self.launch(entry);
                started += 1;
            }
        }
        Ok(started)
    }

    /// Stores `definition` and starts it (a job already running here is left alone).
    pub async fn submit(&self, definition: JobDefinition) -> anyhow::Result<()> {
        self.inner.catalog.create(&definition).await?;
        if self.status(&definition.name).is_none() {
            let entry = self.register(definition, JobState::Starting);
            self.launch(entry);
        }
        Ok(())
    }

    fn register(&self, definition: JobDefinition, state: JobState) -> Arc<Entry> {
        let name = definition.name.clone();
        let entry = Arc::new(Entry::new(definition, state));
        let mut jobs = self.inner.jobs();
        if jobs.shutting_down {
            entry.request_stop(StopRequest::Shutdown);
        }
        jobs.entries.insert(name, entry.clone());
        entry
    }

    fn launch(&self, entry: Arc<Entry>) {
        let inner = self.inner.clone();
        let task = tokio::spawn(async move { inner.run(entry).await });
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.push(task);
    }

    /// The status of job `name`, if this process knows it.
    pub fn status(&self, name: &str) -> Option<JobStatus> {
        self.entry(name).map(|e| e.status())
    }

    /// Every job's status, by name.
    pub fn list(&self) -> Vec<JobStatus> {
        self.inner.entries().iter().map(|e| e.status()).collect()
    }

    /// Drops job `name`: records it (so no process resumes it), then stops it after a
    /// final checkpoint and waits up to `timeout` for that. `None` if there is no such job.
    pub async fn drop_job(
        &self,
        name: &str,
        timeout: Duration,
    ) -> anyhow::Result<Option<JobStatus>> {
        let Some(entry) = self.entry(name) else {
            return Ok(None);
        };
        let now = self.inner.data.ambient.clock.now_millis();
        self.inner.catalog.mark_dropped(name, now).await?;
        // A job still starting is stopped as soon as its first attempt runs.
        entry.request_stop(StopRequest::Drop);
        if !entry.wait_inactive(timeout).await.is_active() {
            entry.set(JobState::Dropped, None);
        }
        Ok(Some(entry.status()))
    }

    fn entry(&self, name: &str) -> Option<Arc<Entry>> {
        self.inner.jobs().entries.get(name).cloned()
    }

    /// Stops every running job after a final checkpoint, and waits for them.
    pub async fn shutdown(&self, timeout: Duration) {
        let entries = {
            let mut jobs = self.inner.jobs();
            jobs.shutting_down = true;
            jobs.entries.values().cloned().collect::<Vec<_>>()
        };
        for entry in entries {
            entry.request_stop(StopRequest::Shutdown);
        }
        let tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        if tokio::time::timeout(timeout, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            tracing::warn!("jobs did not stop within {timeout:?}; their last checkpoint stands");
        }
    }
}

/// Samples every job's counters each [`SAMPLE_INTERVAL`] while the manager lives.
async fn sample_rates(inner: Weak<Inner>) {
    let mut ticker = tokio::time::interval(SAMPLE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let entries = inner.entries();
        let now = inner.data.ambient.clock.now_millis();
        drop(inner);
        for entry in entries {
            entry.sample(now);
        }
    }
}

impl Inner {
    async fn run(self: Arc<Self>, entry: Arc<Entry>) {
        let name = entry.definition.name.clone();
        let (state, error) = match self.clone().run_to_end(entry.clone()).await {
            Ok(state) => (state, None),
            Err(e)
                if e.downcast_ref::<runnel_runtime::Error>()
                    .is_some_and(|e| e.is_fenced()) =>
            {
                tracing::error!(job = %name, "stopped: {e:#}");
                (JobState::Fenced, Some(format!("{e:#}")))
            }
            Err(e) => {
                tracing::error!(job = %name, "failed: {e:#}");
                (JobState::Failed, Some(format!("{e:#}")))
            }
        };
        entry.set(state, error);
    }

    async fn run_to_end(self: Arc<Self>, entry: Arc<Entry>) -> anyhow::Result<JobState> {
        let definition = &entry.definition;
        let build = match &definition.kind {
            JobKind::HotItems(job) => graphs::hot_items(&self.log, definition, job).await?,
            JobKind::Sql(job) => graphs::sql(&self.data, definition, job).await?,
        };
        // Every attempt's graph gives the job's shape and which nodes are its input and
        // output.
        let built = entry.clone();
        let build = move || {
            let graph = build()?;
            built.set_topology(JobTopology::of(&graph));
            Ok(graph)
        };
        let checkpoints = ObjectStoreCheckpoints::new(
            self.data.store.clone(),
            self.data.root.clone(),
            &definition.name,
        )?;
        let config = JobConfig {
            clock: self.data.ambient.clock.clone(),
            checkpoints: Some(CheckpointConfig::new(
                Arc::new(checkpoints),
                self.checkpoint_interval,
            )),
            ..JobConfig::default()
        };
        // An owned capture: the closure lives inside a spawned future.
        let starting = entry.clone();
        let on_start = move |handle: &JobHandle| starting.started(handle);
        let policy = RestartPolicy::default();
        run_with_restarts(build, config, policy, on_start).await?;
        match entry.stop_request() {
            Some(StopRequest::Drop) => return Ok(JobState::Dropped),
            Some(StopRequest::Shutdown) => return Ok(JobState::Stopped),
            None => {}
        }
        let epoch = entry.last_epoch().unwrap_or(0);
        let finished = Finished {
            at: self.data.ambient.clock.now_millis(),
            epoch,
        };
        self.catalog
            .mark_finished(&definition.name, &finished)
            .await?;
        tracing::info!(job = %definition.name, epoch, "finished");
        Ok(JobState::Finished)
    }
}
