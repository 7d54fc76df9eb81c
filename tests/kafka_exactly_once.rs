//! Kafka in and out, exactly once across real crashes: kafka-python produces bids into a
//! topic of a real Kafka-protocol broker (tansu) while a `runnel serve` process running
//! two SQL jobs from that topic, one into another Kafka topic and one into an Iceberg
//! table, is killed with SIGKILL ten times at seeded random moments and restarted.
//! kafka-python then reads the output topic and PyIceberg the table: each must hold the
//! batch oracle's rows, each once.

// Tests wait on and time real processes with the machine's clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use common::durable::{LogsOnFailure, spawn_server, stderr_logs, wait_listening, wait_until};
use common::http::{
    bids_by_partition, flush_row, newest_event, post_sql, sql_file, wait_for_table,
};
use common::kafka::{Broker, produce_json, read_with_kafka_python, record_count};

const PARTITIONS: usize = 4;

/// The oracle: counts per auction and 1 s window, by DataFusion over all bids, as the
/// JSON objects a sink writes (sorted text, so multisets compare as vectors).
async fn oracle(bids: Vec<RecordBatch>) -> Vec<String> {
    let ctx = SessionContext::new();
    let table = MemTable::try_new(bids[0].schema(), vec![bids]).unwrap();
    ctx.register_table("bids", Arc::new(table)).unwrap();
    let batches = ctx
        .sql(
            "SELECT auction, date_bin(INTERVAL '1 second', date_time) AS window_start, \
             date_bin(INTERVAL '1 second', date_time) + INTERVAL '1 second' AS window_end, \
             COUNT(*) AS n FROM bids GROUP BY 1, 2, 3",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut rows: Vec<String> = json_rows(&batches).collect();
    rows.sort();
    rows
}

/// Rows as the JSON objects a Kafka sink writes (timestamps in milliseconds, as the job
/// computes them; Iceberg stores microseconds).
fn json_rows(batches: &[RecordBatch]) -> impl Iterator<Item = String> + '_ {
    use arrow::compute::cast;
    use arrow::datatypes::{DataType, TimeUnit};
    batches.iter().flat_map(|batch| {
        let millis = DataType::Timestamp(TimeUnit::Millisecond, None);
        let columns = batch.columns().iter().map(|c| match c.data_type() {
            DataType::Timestamp(_, _) => cast(c, &millis).unwrap(),
            _ => c.clone(),
        });
        let schema = batch.schema();
        let fields = schema.fields().iter().map(|f| match f.data_type() {
            DataType::Timestamp(_, _) => f.as_ref().clone().with_data_type(millis.clone()),
            _ => f.as_ref().clone(),
        });
        let schema = Arc::new(arrow::datatypes::Schema::new(fields.collect::<Vec<_>>()));
        let batch = RecordBatch::try_new(schema, columns.collect()).unwrap();
        let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        let text = String::from_utf8(writer.into_inner()).unwrap();
        let lines: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string())
            .collect();
        lines
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_to_kafka_is_exact_through_ten_kill_9s() {
    let broker = Broker::start();
    broker.create_topic("bids", PARTITIONS as u32);
    broker.create_topic("counts", 2);
    let bids = bids_by_partition(7, 24_000, 1_000, PARTITIONS);
    let expected = oracle(bids.iter().flatten().cloned().collect()).await;
    assert!(expected.len() > 1_000, "{} oracle rows", expected.len());
    let started = std::time::Instant::now();

    // The input arrives while the job runs and is killed: a tenth of each partition (in
    // event-time order) at a time.
    let bootstrap = broker.bootstrap.clone();
    let (flush_at, template) = (newest_event(&bids.concat()) + 3_600_000, bids[0][0].clone());
    let input = bids.clone();
    let (produced_tx, mut produced) = tokio::sync::watch::channel(0usize);
    let mut producer = Some(tokio::spawn(async move {
        for tenth in 0..10 {
            let part: Vec<Vec<RecordBatch>> = input
                .iter()
                .map(|p| {
                    let size = p.len().div_ceil(10);
                    p.iter().skip(tenth * size).take(size).cloned().collect()
                })
                .collect();
            produce_json(&bootstrap, "bids", &part).await;
            eprintln!("{:?}: produced tenth {tenth}", started.elapsed());
            produced_tx.send_replace(tenth + 1);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let flush: Vec<Vec<RecordBatch>> = (0..PARTITIONS)
            .map(|_| vec![flush_row(&template, flush_at)])
            .collect();
        produce_json(&bootstrap, "bids", &flush).await;
    }));

    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let logs = stderr_logs(temp.path());
    let _show = LogsOnFailure(logs.clone());
    let sql = sql_file("kafka_counts.sql", &[("bootstrap", &broker.bootstrap)]);
    let table_sql = sql_file("kafka_counts_table.sql", &[]);
    let mut rng = StdRng::seed_from_u64(11);
    let client = reqwest::Client::new();
    for run in 0..=10 {
        let mut server = spawn_server(&dir, "100ms", &logs.join(format!("run-{run}.log")));
        let url = wait_listening(&mut server);
        if run == 0 {
            for sql in [&sql, &table_sql] {
                let (status, body) = post_sql(&client, &url, sql).await;
                assert_eq!(status, 200, "{body}");
            }
        }
        if run == 10 {
            producer.take().unwrap().await.unwrap();
            let (bootstrap, want) = (broker.bootstrap.clone(), expected.len() as i64);
            wait_until(
                "every window is in the output topic",
                Duration::from_secs(240),
                || record_count(&bootstrap, "counts", 2) >= want,
            )
            .await;
            let complete =
                |b: &[RecordBatch]| b.iter().map(|b| b.num_rows()).sum::<usize>() >= want as usize;
            wait_for_table(&client, &url, "counts", Duration::from_secs(120), complete).await;
            // Time for any duplicate to show up.
            tokio::time::sleep(Duration::from_secs(2)).await;
        } else {
            // Kill `run` comes once `run` tenths of the input are in, so the kills are
            // spread over the whole input whatever the broker's speed.
            produced.wait_for(|n| *n >= run).await.unwrap();
            tokio::time::sleep(Duration::from_millis(rng.random_range(800..2500))).await;
        }
        let written = record_count(&broker.bootstrap, "counts", 2);
        eprintln!("{:?}: kill {run}, {written} records out", started.elapsed());
        server.kill().unwrap();
        server.wait().unwrap();
    }

    let records = read_with_kafka_python(&broker.bootstrap, "counts");
    let mut got: Vec<String> = records.iter().map(|r| r["value"].to_string()).collect();
    got.sort();
    assert_eq!(got.len(), expected.len(), "rows lost or duplicated");
    assert_eq!(got, expected);
    // Keyed by auction, on the partition Kafka's default partitioner picks.
    let mut epochs: BTreeMap<i64, i64> = BTreeMap::new();
    for r in &records {
        assert_eq!(
            r["key"].as_str().unwrap(),
            r["value"]["auction"].to_string()
        );
        let epoch: i64 = r["headers"]["runnel.epoch"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        *epochs.entry(epoch).or_default() += 1;
    }
    assert!(
        epochs.len() > 1,
        "output committed in {} epochs",
        epochs.len()
    );

    let table = read_with_pyiceberg(&dir, "counts", temp.path());
    let mut got: Vec<String> = json_rows(&table).collect();
    got.sort();
    assert_eq!(got.len(), expected.len(), "table rows lost or duplicated");
    assert_eq!(got, expected, "PyIceberg");
}

/// Every row of the embedded catalog's table `name`, read with PyIceberg.
fn read_with_pyiceberg(
    data: &std::path::Path,
    name: &str,
    scratch: &std::path::Path,
) -> Vec<RecordBatch> {
    use runnel_connectors::iceberg::{CATALOG_NAME, NAMESPACE};
    let out = scratch.join("pyiceberg.arrow");
    let status = std::process::Command::new(common::python::python())
        .arg(common::python::script("read_iceberg.py"))
        .arg(data)
        .arg(CATALOG_NAME)
        .arg(format!("{NAMESPACE}.{name}"))
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "read_iceberg.py failed");
    let file = std::fs::File::open(&out).unwrap();
    let reader = arrow::ipc::reader::FileReader::try_new(file, None).unwrap();
    reader.collect::<Result<_, _>>().unwrap()
}
