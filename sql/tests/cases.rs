//! SQL cases as data: every `tests/cases/*.sql` is planned, built and run as a streaming
//! job over the embedded log (or the Nexmark generator), and its output is compared, as
//! a multiset of rows, with an expectation computed independently of the streaming
//! operators.
//!
//! A case file holds, in order:
//! * `-- input <source>: nexmark seed=S events=N disorder=G` (bids generated with a
//!   seed, rows shuffled within groups of G) or `-- input <source>: data/<file>.jsonl`,
//!   for each `connector = 'log'` source (a Nexmark source needs no input line);
//! * the statements: `CREATE SOURCE ...; CREATE SINK ... AS SELECT ...;`;
//! * optionally `-- windows: N`, the number of window operators the dataflow must have
//!   (a join's inputs share the stages they have in common);
//! * `-- oracle` followed by a DataFusion batch query over tables named like the
//!   sources, holding the very same rows: plain `GROUP BY` arithmetic, with no windows,
//!   watermarks or top-K operator;
//! * and/or `-- expected` followed by rows written `v1 | v2 | ...`.
//!
//! Timestamps are compared as epoch milliseconds and floats rounded to 6 decimals.
//!
//! Every case runs twice: straight through into an in-process sink, and with
//! checkpoints into an exactly-once log topic, aborted after its first checkpoint and
//! restarted from it; both outputs must equal the expectation.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;
use datafusion::prelude::SessionContext;
use object_store::memory::InMemory;
use runnel_connectors::channel::CollectSink;
use runnel_connectors::log::{EmbeddedLog, LogSink, LogSource};
use runnel_connectors::nexmark::{NexmarkOptions, NexmarkTable, generate_partition};
use runnel_runtime::checkpoint::ObjectStoreCheckpoints;
use runnel_runtime::{CheckpointConfig, Dataflow, JobConfig, JobGraph, Source, spawn};
use runnel_sql::{PipelinePlan, SinkDef, SourceDef, Statement, build, parse, plan_sink};

/// A case file split into its parts.
struct Case {
    name: String,
    inputs: HashMap<String, String>,
    statements: String,
    oracle: Option<String>,
    expected: Option<Vec<String>>,
    /// `-- windows: N`: how many window operators the built dataflow has.
    windows: Option<usize>,
}

fn read_case(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).unwrap();
    let (head, expected) = match text.split_once("\n-- expected\n") {
        Some((head, rows)) => (
            head.to_string(),
            Some(
                rows.lines()
                    .map(normalize_row)
                    .filter(|r| !r.is_empty())
                    .collect(),
            ),
        ),
        None => (text.clone(), None),
    };
    let (statements, oracle) = match head.split_once("\n-- oracle\n") {
        Some((s, o)) => (s.to_string(), Some(o.to_string())),
        None => (head, None),
    };
    let inputs = statements
        .lines()
        .filter_map(|l| l.strip_prefix("-- input "))
        .filter_map(|l| l.split_once(':'))
        .map(|(source, spec)| (source.trim().to_string(), spec.trim().to_string()))
        .collect();
    let windows = statements
        .lines()
        .find_map(|l| l.strip_prefix("-- windows:"))
        .map(|n| n.trim().parse().expect("-- windows: N"));
    Case {
        name: path.file_stem().unwrap().to_string_lossy().into_owned(),
        inputs,
        statements,
        oracle,
        expected,
        windows,
    }
}

fn normalize_row(row: &str) -> String {
    row.split('|')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// `key=value` settings of a `nexmark` input line.
fn setting(spec: &str, key: &str, default: u64) -> u64 {
    spec.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(default)
}

/// The rows of one input, split into `partitions` lists of batches.
fn input_batches(spec: &str, schema: &SchemaRef, partitions: u32) -> Vec<Vec<RecordBatch>> {
    if let Some(settings) = spec.strip_prefix("nexmark") {
        let options = NexmarkOptions {
            seed: setting(settings, "seed", 0),
            events_per_second: setting(settings, "rate", 2_000),
            max_events: Some(setting(settings, "events", 10_000)),
            batch_size: 500,
            partitions: partitions as usize,
            out_of_order_group_size: setting(settings, "disorder", 1),
            ..NexmarkOptions::default()
        };
        return (0..options.partitions)
            .map(|p| generate_partition(&options, NexmarkTable::Bid, p).unwrap())
            .collect();
    }
    let path = cases_dir().join(spec);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let batches: Vec<RecordBatch> = arrow::json::ReaderBuilder::new(schema.clone())
        .build(BufReader::new(file))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let all = arrow::compute::concat_batches(schema, &batches).unwrap();
    // Row i goes to partition i % partitions, keeping the file's order in each.
    (0..partitions)
        .map(|p| {
            let indices: Vec<u32> = (0..all.num_rows() as u32)
                .filter(|i| i % partitions == p)
                .collect();
            let take = arrow::array::UInt32Array::from(indices);
            vec![arrow::compute::take_record_batch(&all, &take).unwrap()]
        })
        .collect()
}

/// Every row as `v1 | v2 | ...`: timestamps in epoch milliseconds, floats to 6 decimals.
fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for batch in batches {
        let columns: Vec<Arc<dyn Array>> = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Timestamp(_, _) => arrow::compute::cast(c, &DataType::Int64).unwrap(),
                _ => c.clone(),
            })
            .collect();
        for i in 0..batch.num_rows() {
            let row: Vec<String> = columns
                .iter()
                .map(|c| match c.data_type() {
                    _ if c.is_null(i) => "NULL".to_string(),
                    DataType::Float32 | DataType::Float64 => {
                        let f = arrow::compute::cast(c, &DataType::Float64).unwrap();
                        format!("{:.6}", f.as_primitive::<Float64Type>().value(i))
                    }
                    _ => array_value_to_string(c, i).unwrap(),
                })
                .collect();
            out.push(row.join(" | "));
        }
    }
    out.sort();
    out
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

async fn run_case(case: &Case) {
    let statements = parse(&case.statements).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let sources: Vec<SourceDef> = statements
        .iter()
        .filter_map(|s| match s {
            Statement::CreateSource(def) => Some(def.clone()),
            _ => None,
        })
        .collect();
    let sinks: Vec<&SinkDef> = statements
        .iter()
        .filter_map(|s| match s {
            Statement::CreateSink(def) => Some(def),
            _ => None,
        })
        .collect();
    let [sink] = sinks.as_slice() else {
        panic!("{}: a case has one CREATE SINK", case.name)
    };
    let plan = plan_sink(sink, &sources).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    // The plan is a durable job definition: run what comes back from its JSON.
    let json = serde_json::to_string(&plan).unwrap();
    let plan: PipelinePlan = serde_json::from_str(&json).unwrap();

    let store = Arc::new(InMemory::new());
    let root = object_store::path::Path::from("root");
    let log = EmbeddedLog::new(store.clone(), root.clone());
    let mut runtime_sources: HashMap<String, Arc<dyn Source>> = HashMap::new();
    let mut tables: HashMap<String, Vec<RecordBatch>> = HashMap::new();
    for def in &sources {
        let option = |key: &str| def.connector.get(key).unwrap_or_default().to_string();
        let partitions: u32 = option("partitions").parse().unwrap_or(1);
        match def.connector.connector.as_str() {
            "log" => {
                let (topic, partitions) = (&option("topic"), &partitions);
                let spec = case
                    .inputs
                    .get(&def.name)
                    .unwrap_or_else(|| panic!("{}: no `-- input {}:` line", case.name, def.name));
                let per_partition = input_batches(spec, &def.schema(), *partitions);
                let schema = per_partition[0][0].schema();
                let topic = log.create_topic(topic, *partitions, schema).await.unwrap();
                for (p, batches) in per_partition.iter().enumerate() {
                    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
                        topic
                            .append(p as u32, std::slice::from_ref(batch), None)
                            .await
                            .unwrap();
                    }
                }
                tables.insert(
                    def.name.clone(),
                    per_partition.into_iter().flatten().collect(),
                );
                runtime_sources.insert(def.name.clone(), Arc::new(LogSource::new(topic).bounded()));
            }
            "nexmark" => {
                let source = def.nexmark().unwrap().unwrap();
                let all = (0..partitions as usize)
                    .flat_map(|p| generate_partition(source.options(), source.table(), p).unwrap())
                    .collect();
                tables.insert(def.name.clone(), all);
                runtime_sources.insert(def.name.clone(), Arc::new(source));
            }
            other => panic!("{}: no test input for connector {other}", case.name),
        }
    }

    // One source node per source, however many inputs read it; with `-- windows: N`,
    // N window operators (a prefix both sides of a join share is built once).
    let explained = {
        let flow = Dataflow::new(&plan.name).with_parallelism(2);
        let stream = build(&plan, &flow, &runtime_sources).unwrap();
        stream.sink("out", Arc::new(CollectSink::new())).unwrap();
        flow.build().unwrap().explain()
    };
    let nodes: Vec<(&str, &str)> = explained
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace().skip(1);
            Some((words.next()?, words.next()?))
        })
        .collect();
    let source_nodes = nodes.iter().filter(|(kind, _)| *kind == "source").count();
    assert_eq!(source_nodes, sources.len(), "{}: {explained}", case.name);
    let is_window = |name: &str| {
        name == "window"
            || name
                .strip_prefix("window_")
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
    };
    if let Some(expected) = case.windows {
        let windows = nodes.iter().filter(|(_, name)| is_window(name)).count();
        assert_eq!(
            windows, expected,
            "{}: window operators in {explained}",
            case.name
        );
    }

    let graph = |sink: Arc<dyn runnel_runtime::Sink>| -> JobGraph {
        let flow = Dataflow::new(&plan.name).with_parallelism(2);
        let stream =
            build(&plan, &flow, &runtime_sources).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        stream.sink("out", sink).unwrap();
        flow.build().unwrap()
    };

    // Straight through.
    let sink_rows = CollectSink::new();
    let job = spawn(graph(Arc::new(sink_rows.clone())), JobConfig::default())
        .await
        .unwrap();
    let metrics = job.metrics().clone();
    job.join().await.unwrap();
    let late: u64 = metrics.nodes.iter().map(|n| n.late_rows()).sum();
    assert_eq!(late, 0, "{}: no row may be late", case.name);
    let got = rows(&sink_rows.batches());

    // Aborted after the first checkpoint, restarted from it.
    let out = log
        .create_topic("case_out", 1, plan.output_schema().unwrap())
        .await
        .unwrap();
    let checkpoints =
        Arc::new(ObjectStoreCheckpoints::new(store.clone(), root.clone(), &plan.name).unwrap());
    let config = JobConfig {
        checkpoints: Some(CheckpointConfig::new(checkpoints, Duration::from_millis(5))),
        ..JobConfig::default()
    };
    let log_sink = || Arc::new(LogSink::new(out.clone(), "case.sink").unwrap());
    let first = spawn(graph(log_sink()), config.clone()).await.unwrap();
    let progress = first.metrics().clone();
    while progress.checkpoints.last().is_none() && !first.is_finished() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    first.abort();
    let _ = first.join().await;
    spawn(graph(log_sink()), config)
        .await
        .unwrap()
        .join()
        .await
        .unwrap();
    let end = out.end_offset(0).await.unwrap();
    let restarted = rows(&out.read(0, 0, end as usize).await.unwrap().batches);
    assert_eq!(restarted, got, "{}: restarted midway", case.name);

    let mut checked = false;
    if let Some(oracle) = &case.oracle {
        let ctx = SessionContext::new();
        for (name, batches) in &tables {
            let batches: Vec<RecordBatch> = batches
                .iter()
                .filter(|b| b.num_rows() > 0)
                .cloned()
                .collect();
            let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
            ctx.register_batch(name, all).unwrap();
        }
        let expected = rows(&ctx.sql(oracle).await.unwrap().collect().await.unwrap());
        assert!(
            !expected.is_empty(),
            "{}: the oracle returns no row",
            case.name
        );
        assert_eq!(got.len(), expected.len(), "{}: row count", case.name);
        assert_eq!(got, expected, "{}", case.name);
        checked = true;
    }
    if let Some(expected) = &case.expected {
        let mut expected = expected.clone();
        expected.sort();
        assert_eq!(got, expected, "{}: stored rows", case.name);
        checked = true;
    }
    assert!(
        checked,
        "{}: a case needs `-- oracle` or `-- expected`",
        case.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_cases() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 5, "{} cases", paths.len());
    for path in paths {
        let case = read_case(&path);
        run_case(&case).await;
        println!("case {}: ok", case.name);
    }
}
