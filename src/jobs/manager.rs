//! Runs every durable job of a data root and keeps its live status.
//!
//! At start the manager resumes each stored job that has not finished: the runtime
//! claims the job's checkpoint chain (fencing any older instance, wherever it runs),
//! restores the newest checkpoint and rewinds the sources, so a killed process loses
//! nothing. A job that fails for an outside reason restarts from its last checkpoint
//! ([`run_with_restarts`]); a job fenced by a newer instance stops for good and says so.
//! A background task samples every job's counters for its rates ([`super::rates`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::Context;
use runnel_connectors::iceberg::IcebergSink;
use runnel_connectors::log::{EmbeddedLog, LogSink, LogSource, Topic};
use runnel_runtime::checkpoint::ObjectStoreCheckpoints;
use runnel_runtime::{
    CheckpointConfig, Dataflow, JobConfig, JobGraph, JobHandle, JobMetrics, JobStopper,
    RestartPolicy, Source, run_with_restarts,
};
use runnel_sql::SourceConnector;
use tokio::task::JoinHandle;

use super::catalog::{Finished, JobCatalog};
use super::definition::{HotItemsJob, JobDefinition, JobKind, SqlJob};
use super::rates::{JobRates, JobRoles, RateWindow, SAMPLE_INTERVAL};
use crate::data::DataRoot;

/// Builds a job's graph afresh for every attempt.
type GraphBuilder = Box<dyn Fn() -> runnel_runtime::Result<JobGraph> + Send + Sync>;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Being prepared or restored.
    Starting,
    Running,
    /// Failed for an outside reason; restarting from its last checkpoint.
    Restarting,
    /// A job over a fixed input that committed all of it.
    Finished,
    /// Stopped by this process (shutdown) after a final checkpoint; resumes on restart.
    Stopped,
    /// Dropped (`DELETE /v1/jobs/{id}`, `DROP SINK`): stopped after a final checkpoint
    /// and never resumed.
    Dropped,
    /// A newer instance of the job took over; this one stopped without committing.
    Fenced,
    /// Failed for a reason a restart cannot cure.
    Failed,
}

/// A snapshot of one job's status.
#[derive(Debug, Clone)]
pub struct JobStatus {
    pub definition: JobDefinition,
    pub state: JobState,
    pub error: Option<String>,
    /// Restarts of this process's instance after failures.
    pub restarts: u32,
    /// Counters of the current attempt (none before it starts).
    pub metrics: Option<Arc<JobMetrics>>,
    /// Which nodes are the job's input and output (none before its graph is built).
    pub roles: Option<JobRoles>,
    /// Rows per second over the last few seconds (none until sampled twice).
    pub rates: Option<JobRates>,
}

struct Live {
    state: JobState,
    error: Option<String>,
    attempts: u32,
    metrics: Option<Arc<JobMetrics>>,
    stopper: Option<JobStopper>,
}

struct Entry {
    definition: JobDefinition,
    live: Mutex<Live>,
    /// Set when the job is being dropped: its end is not a finish.
    dropping: AtomicBool,
    roles: Mutex<Option<JobRoles>>,
    rates: Mutex<RateWindow>,
}

impl Entry {
    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn roles(&self) -> Option<JobRoles> {
        self.roles.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn rates(&self) -> std::sync::MutexGuard<'_, RateWindow> {
        self.rates.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the counters of the current attempt into the rate window.
    fn sample(&self, now: runnel_runtime::Millis) {
        let metrics = self.live().metrics.clone();
        if let (Some(metrics), Some(roles)) = (metrics, self.roles()) {
            self.rates().observe(&metrics, &roles, now);
        }
    }

    fn set(&self, state: JobState, error: Option<String>) {
        let mut live = self.live();
        live.state = state;
        live.error = error;
    }
}

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
    jobs: Mutex<BTreeMap<String, Arc<Entry>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    shutting_down: AtomicBool,
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
                shutting_down: AtomicBool::new(false),
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
        let entry = Arc::new(Entry {
            definition: definition.clone(),
            live: Mutex::new(Live {
                state,
                error: None,
                attempts: 0,
                metrics: None,
                stopper: None,
            }),
            dropping: AtomicBool::new(false),
            roles: Mutex::default(),
            rates: Mutex::default(),
        });
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.insert(definition.name, entry.clone());
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
        let jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get(name).map(|e| snapshot(e))
    }

    /// Every job's status, by name.
    pub fn list(&self) -> Vec<JobStatus> {
        let jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.values().map(|e| snapshot(e)).collect()
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
        self.inner
            .catalog
            .mark_dropped(name, self.inner.data.ambient.clock.now_millis())
            .await?;
        entry.dropping.store(true, Ordering::SeqCst);
        let stopper = entry.live().stopper.clone();
        // Without a stopper the job is not running (finished, failed), or still
        // starting, and then `on_start` stops it.
        if let Some(stopper) = stopper {
            stopper.stop();
        }
        let start = tokio::time::Instant::now();
        while matches!(
            entry.live().state,
            JobState::Starting | JobState::Running | JobState::Restarting
        ) && start.elapsed() < timeout
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !matches!(
            entry.live().state,
            JobState::Starting | JobState::Running | JobState::Restarting
        ) {
            entry.set(JobState::Dropped, None);
        }
        Ok(Some(snapshot(&entry)))
    }

    fn entry(&self, name: &str) -> Option<Arc<Entry>> {
        let jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get(name).cloned()
    }

    /// Stops every running job after a final checkpoint, and waits for them.
    pub async fn shutdown(&self, timeout: Duration) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let entries: Vec<Arc<Entry>> = {
            let jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
            jobs.values().cloned().collect()
        };
        for entry in entries {
            if let Some(stopper) = &entry.live().stopper {
                stopper.stop();
            }
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

fn snapshot(entry: &Entry) -> JobStatus {
    let rates = entry.rates().rates();
    let roles = entry.roles();
    let live = entry.live();
    JobStatus {
        definition: entry.definition.clone(),
        state: live.state,
        error: live.error.clone(),
        restarts: live.attempts.saturating_sub(1),
        metrics: live.metrics.clone(),
        roles,
        rates,
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
        let entries: Vec<Arc<Entry>> = {
            let jobs = inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
            jobs.values().cloned().collect()
        };
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
        let definition = entry.definition.clone();
        let definition = &definition;
        let build = match &definition.kind {
            JobKind::HotItems(job) => self.hot_items(definition, job).await?,
            JobKind::Sql(job) => self.sql(definition, job).await?,
        };
        // Every attempt's graph says which of its nodes are the job's input and output.
        let built = entry.clone();
        let build = move || {
            let graph = build()?;
            *built.roles.lock().unwrap_or_else(|p| p.into_inner()) = Some(JobRoles::of(&graph));
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
        // Owned captures: the closure lives inside a spawned future.
        let (starting, inner) = (entry.clone(), self.clone());
        let on_start = move |handle: &JobHandle| {
            let mut live = starting.live();
            live.attempts += 1;
            live.state = JobState::Running;
            live.metrics = Some(handle.metrics().clone());
            live.stopper = Some(handle.stopper());
            if inner.shutting_down.load(Ordering::SeqCst)
                || starting.dropping.load(Ordering::SeqCst)
            {
                handle.stop();
            }
        };
        let policy = RestartPolicy::default();
        run_with_restarts(build, config, policy, on_start).await?;
        if entry.dropping.load(Ordering::SeqCst) {
            return Ok(JobState::Dropped);
        }
        if self.shutting_down.load(Ordering::SeqCst) {
            return Ok(JobState::Stopped);
        }
        let epoch = entry
            .live()
            .metrics
            .as_ref()
            .and_then(|m| m.checkpoints.last())
            .map_or(0, |(epoch, ..)| epoch);
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

    /// Opens the plan's source and output topic once, then returns how to build the
    /// graph for each attempt.
    async fn sql(&self, definition: &JobDefinition, job: &SqlJob) -> anyhow::Result<GraphBuilder> {
        let name = definition.name.clone();
        let declared = &job.plan.source;
        let source: Arc<dyn Source> = match &declared.connector {
            SourceConnector::Log { topic, .. } => {
                let topic =
                    self.log.topic(topic).await.with_context(|| {
                        format!("job {name}: topic of source {}", declared.name)
                    })?;
                Arc::new(LogSource::new(topic))
            }
            SourceConnector::Nexmark { .. } => match declared.nexmark() {
                Some(source) => Arc::new(source?),
                None => unreachable!("a nexmark connector has a generator"),
            },
        };
        // The topic is created at submission (with the partitions asked for); a job
        // whose topic is gone gets a new one-partition topic.
        let schema = job.plan.output_schema()?;
        let output = match self.log.topic(&job.output_topic).await {
            Ok(topic) => topic,
            Err(_) => self
                .log
                .create_topic(&job.output_topic, 1, schema.clone())
                .await
                .with_context(|| format!("job {name}: output topic"))?,
        };
        anyhow::ensure!(
            output.schema().fields() == schema.fields(),
            "job {name}: topic {} holds rows of another schema than the query's",
            job.output_topic
        );
        let sources = HashMap::from([(declared.name.clone(), source)]);
        let (plan, parallelism) = (job.plan.clone(), definition.parallelism);
        let producer = format!("{name}.sink");
        // The sink id names the job, so it survives restarts, rescaling and upgrades.
        let table: Option<Arc<dyn runnel_runtime::Sink>> = match definition.table_sink() {
            Some((table, sink_id)) => {
                let catalog = self.data.iceberg().await?;
                let sink = IcebergSink::new(catalog, table, &sink_id, schema)
                    .await
                    .with_context(|| format!("job {name}: Iceberg table {table}"))?;
                Some(Arc::new(sink))
            }
            None => None,
        };
        Ok(Box::new(move || {
            let flow = Dataflow::new(&name).with_parallelism(parallelism);
            let sink = LogSink::new(output.clone(), producer.clone())?;
            let results = runnel_sql::build(&plan, &flow, &sources)?;
            // The table first: sinks commit in graph order, so by the time the results
            // stream serves an epoch's rows, the table holds that epoch's snapshot.
            if let Some(table) = &table {
                results.sink("table", table.clone())?;
            }
            results.sink("output", Arc::new(sink))?;
            flow.build()
        }))
    }

    /// Resolves the topics once, then returns how to build the graph for each attempt.
    async fn hot_items(
        &self,
        definition: &JobDefinition,
        job: &HotItemsJob,
    ) -> anyhow::Result<GraphBuilder> {
        let input = self
            .log
            .topic(&job.input.topic)
            .await
            .with_context(|| format!("job {}: input topic", definition.name))?;
        let source = {
            let source = LogSource::new(input);
            match &job.input.until {
                Some(until) => source.until((0..).zip(until.iter().copied()).collect()),
                None => source,
            }
        };
        let shape = job.shape(definition.parallelism);
        let name = definition.name.clone();
        // The output schema, from a throw-away build (a `Dataflow` is not `Send`, so it
        // must be gone before the next await).
        let schema = {
            let probe = Dataflow::new(&name);
            shape
                .stream(&probe, Arc::new(source.clone()))?
                .schema()
                .clone()
        };
        let output: Topic = self
            .log
            .create_topic(&job.output_topic, 1, schema)
            .await
            .with_context(|| format!("job {name}: output topic"))?;
        let producer = format!("{name}.sink");
        Ok(Box::new(move || {
            let flow = Dataflow::new(&name).with_parallelism(shape.parallelism);
            let sink = LogSink::new(output.clone(), producer.clone())?;
            shape
                .stream(&flow, Arc::new(source.clone()))?
                .sink("output", Arc::new(sink))?;
            flow.build()
        }))
    }
}
