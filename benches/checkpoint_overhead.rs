//! What periodic checkpoints cost: throughput of hot items (Nexmark q5: HOP 10 s / 2 s
//! COUNT(*) per auction, top-1 per window) with a checkpoint every 10 s against none.
//!
//! A 10 s interval only fires in a run that lasts much longer than 10 s, and at millions
//! of events per second such a run needs hundreds of millions of bids: generating or
//! storing them would dominate the benchmark. So `RUNNEL_BENCH_EVENTS` bids (default
//! 10,000,000) are generated once, and an in-memory source replays them
//! `RUNNEL_BENCH_CYCLES` times (default 80), moving `date_time` forward by the data's
//! event-time span on every cycle (one vectorized add per batch), so event time keeps
//! increasing and windows keep firing. Its positions count the rows emitted per partition
//! over all cycles, so its checkpoints are ones a restore could resume from.
//!
//! Runs alternate, without and with checkpoints (`RUNNEL_BENCH_RUNS` of each, default 3),
//! after one unreported warm-up cycle, so that drift of the machine hits both modes
//! alike. Each run is its own job with its own chain, so none restores another's
//! checkpoint; checkpoints go to the local file system. The report gives per run
//! events/s and events per CPU second; per mode the best and the median; and the overhead
//! as extra time (`off / on - 1` of the rates). For runs with checkpoints it lists every
//! checkpoint the job's metrics reported: its duration from barrier injection to the
//! manifest being written (alignment, snapshots, state writes, the manifest), the bytes
//! of state it wrote, and how far apart the source subtasks' watermarks were, which is
//! what decides how much window state there is to write.
//!
//! Run with `cargo bench -p runnel-benches --bench checkpoint_overhead`.

// A benchmark measures wall-clock time.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use runnel::hot_items::HotItems;
use runnel_connectors::channel::CollectSink;
use runnel_connectors::nexmark::{NexmarkTable, generate_partition};
use runnel_runtime::checkpoint::ObjectStoreCheckpoints;
use runnel_runtime::{
    CheckpointConfig, JobConfig, JobMetrics, WATERMARK_END, WATERMARK_START, spawn,
};

mod bid_options;
mod replay_source;

use bid_options::bid_options;
use replay_source::{Replay, ReplaySource, check_seek};

const PARTITIONS: usize = 4;
const INTERVAL: Duration = Duration::from_secs(10);
/// How often a running job's checkpoint metrics are sampled.
const WATCH_PERIOD: Duration = Duration::from_millis(50);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let events = env_or("RUNNEL_BENCH_EVENTS", 10_000_000);
    let cycles = env_or("RUNNEL_BENCH_CYCLES", 80);
    let runs = env_or("RUNNEL_BENCH_RUNS", 3).max(1) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(events, cycles, runs));
}

async fn run(events: u64, cycles: u64, runs: usize) {
    let options = bid_options(events, PARTITIONS);
    let generating = Instant::now();
    let partitions = (0..PARTITIONS)
        .map(|p| generate_partition(&options, NexmarkTable::Bid, p).expect("generate"))
        .collect();
    let replay = Arc::new(Replay::new(partitions, cycles).expect("replayable bids"));
    check_seek(&replay).expect("seek into the replay");
    println!(
        "prepared {} bids in {PARTITIONS} partitions in {:.1}s; each run replays them {cycles} \
         times ({} bids, {:.0} s of event time per cycle)",
        replay.rows_per_cycle(),
        generating.elapsed().as_secs_f64(),
        replay.total_rows(),
        replay.shift_millis as f64 / 1000.0,
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let objects: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("local store"));
    // The first job of a process runs markedly slower (page faults, allocator growth);
    // one cycle without checkpoints takes that hit outside the comparison.
    let warm_up = Arc::new(replay.with_cycles(1));
    let result = run_job(&warm_up, None).await;
    println!("warm-up: {:.0} events/s (not counted)", result.rate);

    // Per mode (off, on): events per wall-clock second and per CPU second.
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut cpu_rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut durations = Vec::new();
    for run in 0..2 * runs {
        let chain = (run % 2 == 1).then(|| {
            ObjectStoreCheckpoints::new(objects.clone(), Path::from(""), &format!("run-{run}"))
                .expect("checkpoint store")
        });
        let label = if chain.is_some() { "on " } else { "off" };
        let result = run_job(&replay, chain).await;
        let cpu = result.cpu_seconds.map_or(String::new(), |cpu| {
            format!(
                ", {cpu:.1} CPU s = {:.0} events/CPU s",
                result.read as f64 / cpu
            )
        });
        println!(
            "run {run} checkpoints {label}: {} bids in {:.2}s = {:.0} events/s{cpu} \
             ({} windows, {} late rows)",
            result.read, result.elapsed, result.rate, result.windows, result.late_rows
        );
        if let Some(completed) = result.completed {
            let seen = result.checkpoints.len();
            println!("    {completed} checkpoints completed (the last at the end of input):");
            if seen as u64 != completed {
                println!("    {seen} of them sampled; the others were superseded too fast");
            }
        }
        for checkpoint in &result.checkpoints {
            println!("    {checkpoint}");
            if checkpoint.epoch < result.last_epoch {
                durations.push(checkpoint.duration_ms as f64);
            }
        }
        rates[run % 2].push(result.rate);
        cpu_rates[run % 2].extend(result.cpu_seconds.map(|cpu| result.read as f64 / cpu));
    }

    println!("checkpoint every {INTERVAL:?} vs none, {runs} run(s) each, interleaved:");
    summarize("events/s", rates);
    summarize("events/CPU s", cpu_rates);
    if !durations.is_empty() {
        durations.sort_by(f64::total_cmp);
        println!(
            "  periodic checkpoints: {}, duration median {:.0} ms, max {:.0} ms",
            durations.len(),
            median(&durations),
            durations[durations.len() - 1]
        );
    }
}

/// Prints the best and median rate of each mode and the overhead of checkpoints as
/// extra time, `off / on - 1`: of the medians, of the bests, and the median over the
/// pairs of neighbouring runs (off `i`, on `i`), which drift of the machine affects least.
fn summarize(unit: &str, [mut off, mut on]: [Vec<f64>; 2]) {
    if off.is_empty() || on.is_empty() {
        return;
    }
    let mut paired: Vec<f64> = off.iter().zip(&on).map(|(f, n)| f / n - 1.0).collect();
    paired.sort_by(f64::total_cmp);
    off.sort_by(f64::total_cmp);
    on.sort_by(f64::total_cmp);
    let (off_best, on_best) = (off[off.len() - 1], on[on.len() - 1]);
    let (off_median, on_median) = (median(&off), median(&on));
    println!(
        "  {unit}: off best {off_best:.0}, median {off_median:.0}; \
         on best {on_best:.0}, median {on_median:.0}"
    );
    println!(
        "    overhead {:.1}% (medians), {:.1}% (bests), {:.1}% (median of pairs)",
        (off_median / on_median - 1.0) * 100.0,
        (off_best / on_best - 1.0) * 100.0,
        median(&paired) * 100.0
    );
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

struct RunResult {
    read: u64,
    elapsed: f64,
    rate: f64,
    cpu_seconds: Option<f64>,
    windows: usize,
    late_rows: u64,
    /// Checkpoints the job completed (with checkpoints on), and those sampled.
    completed: Option<u64>,
    checkpoints: Vec<Checkpoint>,
    /// The epoch of the end-of-input checkpoint every job takes.
    last_epoch: u64,
}

/// Runs hot items over one replay of the bids, checkpointing into `chain` if given.
async fn run_job(replay: &Arc<Replay>, chain: Option<ObjectStoreCheckpoints>) -> RunResult {
    let sink = CollectSink::new();
    let graph = HotItems {
        top: 1,
        parallelism: 2,
        max_out_of_orderness: Duration::from_secs(5),
        ..HotItems::default()
    }
    .build(
        Arc::new(ReplaySource(replay.clone())),
        Arc::new(sink.clone()),
    )
    .expect("job graph");
    let checkpointing = chain.is_some();
    let config = JobConfig {
        checkpoints: chain.map(|chain| CheckpointConfig::new(Arc::new(chain), INTERVAL)),
        ..JobConfig::default()
    };

    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let job = spawn(graph, config).await.expect("spawn");
    let metrics = job.metrics().clone();
    let finished = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_checkpoints(metrics.clone(), finished.clone()));
    job.join().await.expect("job");
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_before
        .zip(cpu_seconds())
        .map(|(before, after)| after - before);

    finished.store(true, Ordering::Relaxed);
    let checkpoints = watcher.await.expect("checkpoint watcher");
    let read = metrics.node("bids").map_or(0, |n| n.rows_in());
    assert_eq!(read, replay.total_rows(), "every bid must be read");
    RunResult {
        read,
        elapsed,
        rate: read as f64 / elapsed,
        cpu_seconds: cpu,
        windows: sink.num_rows(),
        late_rows: metrics.nodes.iter().map(|n| n.late_rows()).sum(),
        completed: checkpointing.then(|| metrics.checkpoints.completed.load(Ordering::Relaxed)),
        checkpoints,
        last_epoch: metrics.checkpoints.last().map_or(0, |c| c.epoch),
    }
}

/// CPU time this process has used (user and system), from `/proc/self/stat`; `None`
/// where that file does not exist. Other processes slow a run down without adding to its
/// CPU time, so on a shared machine events per CPU second compare the modes more steadily
/// than events per second; they miss time lost to stalls, which shows in the latter.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces;
    // utime and stime are fields 14 and 15 of the whole line.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    // In clock ticks of USER_HZ, which Linux fixes at 100 on x86 and ARM.
    Some((user + system) as f64 / 100.0)
}

/// A checkpoint as the job's metrics reported it.
struct Checkpoint {
    epoch: u64,
    /// From barrier injection to the manifest being written.
    duration_ms: u64,
    bytes: u64,
    /// How far apart the source subtasks' watermarks were when it was sampled.
    source_skew_ms: Option<i64>,
}

/// Samples the job's newest checkpoint every [`WATCH_PERIOD`] until `finished`, then
/// once more, and returns each checkpoint seen once, with the sources' watermark skew
/// at that moment (which the checkpoint history does not keep); a 10 s interval leaves
/// a checkpoint the newest for seconds, and a sample takes one short lock, so it does
/// not disturb the run.
async fn watch_checkpoints(metrics: Arc<JobMetrics>, finished: Arc<AtomicBool>) -> Vec<Checkpoint> {
    let counters = &metrics.checkpoints;
    let mut seen: Vec<Checkpoint> = Vec::new();
    loop {
        let last_round = finished.load(Ordering::Relaxed);
        if let Some(newest) = counters.last()
            && seen.last().is_none_or(|c| c.epoch != newest.epoch)
        {
            seen.push(Checkpoint {
                epoch: newest.epoch,
                duration_ms: newest.duration_millis,
                bytes: newest.size_bytes,
                source_skew_ms: source_skew(&metrics),
            });
        }
        if last_round {
            return seen;
        }
        tokio::time::sleep(WATCH_PERIOD).await;
    }
}

/// The spread of the source subtasks' watermarks. Windows fire at the smallest, so the
/// window state holds everything between the slowest and the fastest source.
fn source_skew(metrics: &JobMetrics) -> Option<i64> {
    let watermarks: Vec<i64> = metrics
        .node("bids")?
        .subtasks
        .iter()
        .map(|s| s.watermark.load(Ordering::Relaxed))
        .filter(|&w| w != WATERMARK_START && w != WATERMARK_END)
        .collect();
    Some(watermarks.iter().max()? - watermarks.iter().min()?)
}

impl std::fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "checkpoint {}: {} ms, {:.1} KiB of state",
            self.epoch,
            self.duration_ms,
            self.bytes as f64 / 1024.0
        )?;
        match self.source_skew_ms {
            Some(ms) => write!(f, "; source watermarks {:.1} s apart", ms as f64 / 1000.0),
            None => Ok(()),
        }
    }
}
