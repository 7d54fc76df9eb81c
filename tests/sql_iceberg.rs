//! A SQL job committing to an Iceberg table, exactly once, through ten kill -9s of the
//! server while bids are produced over HTTP. In the end the table equals the batch
//! oracle as read four ways: PyIceberg (from PyPI) through the same SQL catalog,
//! `GET /v1/tables/{name}`, `POST /v1/query`, and the live results stream read by
//! pyarrow; and every epoch was committed as exactly one snapshot. The stream tags each
//! row with its epoch and that epoch's snapshot, whose summary agrees with both; and
//! `/metrics` shows how long the commits took.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use arrow::ipc::reader::{FileReader, StreamReader};
use datafusion::prelude::SessionContext;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runnel_connectors::iceberg::{CATALOG_NAME, NAMESPACE};
use serde_json::Value;

use common::durable::{free_port, spawn_server_on, wait_listening};
use common::http::{
    bids_by_partition, flush_row, get_json, get_text, newest_event, post_bids, read_with_pyarrow,
    snapshot_ids, sql_file, wait_for_table, without_tags,
};
use common::python::{python, script};

const PARTITIONS: usize = 4;

const SINK: &str = "CREATE SINK counts WITH (connector = 'iceberg', table = 'counts') AS
SELECT auction, window_start, window_end, COUNT(*) AS bids, MAX(price) AS top_price
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end;";

type Row = (i64, i64, i64, i64, i64);

/// (window_start ms, window_end ms, auction, bids, top_price), sorted; timestamps of any
/// unit (Iceberg stores microseconds).
fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut rows = Vec::new();
    for b in batches {
        let col = |name: &str| {
            let c = b.column_by_name(name).unwrap();
            let c = match c.data_type() {
                DataType::Timestamp(_, _) => {
                    cast(c, &DataType::Timestamp(TimeUnit::Millisecond, None)).unwrap()
                }
                _ => c.clone(),
            };
            cast(&c, &DataType::Int64).unwrap()
        };
        let (s, e, a, n, p) = (
            col("window_start"),
            col("window_end"),
            col("auction"),
            col("bids"),
            col("top_price"),
        );
        let v = |c: &arrow::array::ArrayRef, i| c.as_primitive::<Int64Type>().value(i);
        for i in 0..b.num_rows() {
            rows.push((v(&s, i), v(&e, i), v(&a, i), v(&n, i), v(&p, i)));
        }
    }
    rows.sort();
    rows
}

async fn oracle(bids: &[RecordBatch]) -> Vec<Row> {
    let ctx = SessionContext::new();
    let all = arrow::compute::concat_batches(&bids[0].schema(), bids).unwrap();
    ctx.register_batch("bids", all).unwrap();
    let sql = "SELECT auction, (CAST(date_time AS BIGINT) / 10000) * 10000 AS window_start,
                      (CAST(date_time AS BIGINT) / 10000) * 10000 + 10000 AS window_end,
                      COUNT(*) AS bids, MAX(price) AS top_price
               FROM bids GROUP BY 1, 2, 3";
    rows(&ctx.sql(sql).await.unwrap().collect().await.unwrap())
}

/// The snapshots that appended an epoch (the others are the sink's compactions).
fn appends(snapshots: &[Value]) -> Vec<&Value> {
    snapshots
        .iter()
        .filter(|s| s["summary"]["operation"] == "append")
        .collect()
}

/// The `runnel.epoch` of every append, ascending.
fn epochs_of(snapshots: &[Value]) -> Vec<i64> {
    let mut epochs: Vec<i64> = appends(snapshots)
        .iter()
        .map(|s| {
            s["summary"]["runnel.epoch"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    epochs.sort();
    epochs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_table_is_exact_after_ten_kills() {
    let python = tokio::task::spawn_blocking(python);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let partitions = bids_by_partition(31, 60_000, 500, PARTITIONS);
    let all: Vec<RecordBatch> = partitions.iter().flatten().cloned().collect();
    let expected = oracle(&all).await;
    let newest = newest_event(&all);
    python.await.unwrap();

    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}");
    let logs = temp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut server = spawn_server_on(&dir, "200ms", &logs.join("first.log"), &listen);
    wait_listening(&mut server);
    let client = reqwest::Client::new();
    let reply = client
        .post(format!("{url}/v1/sql"))
        .body(format!(
            "{}\n{SINK}",
            sql_file("bids_source.sql", &[("partitions", "4")])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.status().as_u16(),
        200,
        "{}",
        reply.text().await.unwrap()
    );

    // Bids flow in over HTTP for about eight seconds while the server is killed ten times.
    let producer = {
        let (client, url, partitions) = (client.clone(), url.clone(), partitions.clone());
        tokio::spawn(async move {
            let appends = partitions.iter().map(Vec::len).max().unwrap();
            for i in 0..appends {
                for (p, batches) in partitions.iter().enumerate() {
                    if let Some(batch) = batches.get(i) {
                        post_bids(&client, &url, "bids", p, i, batch).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(8_000 / appends as u64)).await;
            }
            for (p, batches) in partitions.iter().enumerate() {
                let flush = flush_row(&batches[0], newest + 60_000);
                post_bids(&client, &url, "bids", p, batches.len(), &flush).await;
            }
        })
    };
    let mut rng = StdRng::seed_from_u64(44);
    for kill in 0..10 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..900))).await;
        server.kill().unwrap();
        server.wait().unwrap();
        server = spawn_server_on(
            &dir,
            "200ms",
            &logs.join(format!("run-{kill}.log")),
            &listen,
        );
        wait_listening(&mut server);
    }
    assert!(
        !producer.is_finished(),
        "the kills must land while bids are produced"
    );
    producer.await.unwrap();

    let table = wait_for_table(&client, &url, "counts", Duration::from_secs(120), |b| {
        rows(b).len() >= expected.len()
    })
    .await;
    assert_eq!(rows(&table), expected, "GET /v1/tables/counts");

    // One append per epoch, each tagged with the sink and its epoch; the other snapshots
    // are the sink's compactions, each recording an epoch it holds.
    let metadata: Value = get_json(&client, &format!("{url}/v1/tables/counts/metadata")).await;
    let snapshots = metadata["snapshots"].as_array().unwrap();
    let appended = appends(snapshots);
    let epochs: Vec<&str> = appended
        .iter()
        .map(|s| s["summary"]["runnel.epoch"].as_str().unwrap())
        .collect();
    for snapshot in snapshots {
        let summary = &snapshot["summary"];
        if summary["operation"] != "append" {
            assert_eq!(summary["operation"], "replace", "{summary}");
            let compacted: &str = summary["runnel.compacted-epoch"].as_str().unwrap();
            assert!(epochs.contains(&compacted), "{summary}");
        }
    }
    let distinct: HashSet<&&str> = epochs.iter().collect();
    assert_eq!(
        distinct.len(),
        epochs.len(),
        "an epoch committed twice: {epochs:?}"
    );
    // Each append names the writer generation that committed it, never going back.
    let generations: Vec<u64> = appended
        .iter()
        .map(|s| {
            s["summary"]["runnel.writer-generation"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        generations.windows(2).all(|w| w[0] <= w[1]),
        "{generations:?}"
    );
    assert!(
        generations.last() > generations.first(),
        "restarts claim newer generations"
    );
    assert!(metadata["metadata_location"].is_string());

    // PyIceberg through the same catalog.
    let out = temp.path().join("pyiceberg.arrow");
    let output = Command::new(common::python::python())
        .arg(script("read_iceberg.py"))
        .arg(&dir)
        .arg(CATALOG_NAME)
        .arg(format!("{NAMESPACE}.counts"))
        .arg(&out)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success());
    let read: Vec<RecordBatch> = FileReader::try_new(std::fs::File::open(&out).unwrap(), None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows(&read), expected, "PyIceberg");

    // Read-only SQL over the table; writes are refused.
    let counted = client
        .post(format!("{url}/v1/query"))
        .body("SELECT COUNT(*) AS n, SUM(bids) AS total FROM counts")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let counted: Vec<RecordBatch> = StreamReader::try_new(&counted[..], None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let n = cast(counted[0].column(0), &DataType::Int64).unwrap();
    assert_eq!(
        n.as_primitive::<Int64Type>().value(0),
        expected.len() as i64
    );
    for write in [
        "DROP TABLE counts",
        "INSERT INTO counts VALUES (1)",
        "CREATE TABLE x (a INT)",
    ] {
        let reply = client
            .post(format!("{url}/v1/query"))
            .body(write)
            .send()
            .await
            .unwrap();
        assert!(reply.status().is_client_error(), "{write}");
    }

    // The live results stream, read by pyarrow from the start.
    let results = format!("{url}/v1/jobs/counts/results?from=earliest");
    let out = temp.path().join("live.arrow");
    let live = read_with_pyarrow(&results, &out, expected.len());
    assert_eq!(rows(&without_tags(&live)), expected, "results stream");

    // Each streamed row names its epoch and the snapshot that committed that epoch to
    // the table: the snapshot's summary says the same epoch, and the rows it added are
    // the stream's rows of that epoch. Every snapshot's epoch is in the stream.
    let mut streamed: BTreeMap<i64, (i64, u64)> = BTreeMap::new();
    for batch in &live {
        let epochs = common::http::epochs(batch);
        for (epoch, snapshot) in epochs.into_iter().zip(snapshot_ids(batch)) {
            let snapshot = snapshot.unwrap_or_else(|| panic!("epoch {epoch} has no snapshot"));
            let entry = streamed.entry(epoch).or_insert((snapshot, 0));
            assert_eq!(entry.0, snapshot, "one snapshot per epoch");
            entry.1 += 1;
        }
    }
    let by_id: BTreeMap<i64, &Value> = snapshots
        .iter()
        .map(|s| (s["snapshot_id"].as_i64().unwrap(), &s["summary"]))
        .collect();
    for (epoch, (snapshot, rows)) in &streamed {
        let summary = by_id
            .get(snapshot)
            .unwrap_or_else(|| panic!("snapshot {snapshot} of epoch {epoch} is not the table's"));
        assert_eq!(summary["runnel.epoch"], epoch.to_string(), "{summary}");
        assert_eq!(summary["runnel.sink-id"], "counts.table", "{summary}");
        assert_eq!(summary["added-records"], rows.to_string(), "epoch {epoch}");
    }
    let committed: Vec<i64> = epochs_of(snapshots);
    let served: Vec<i64> = streamed.keys().copied().collect();
    assert_eq!(
        served, committed,
        "the stream and the table hold the same epochs"
    );

    // The commit latency of both sinks, Iceberg's included, as a Prometheus histogram.
    let metrics = get_text(&client, &format!("{url}/metrics")).await;
    assert!(metrics.contains("# TYPE runnel_sink_commit_seconds histogram"));
    for sink in ["table", "output"] {
        let prefix = format!("runnel_sink_commit_seconds_count{{job=\"counts\",sink=\"{sink}\"}} ");
        let count: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
            .unwrap_or_else(|| panic!("no commit latency of {sink} in\n{metrics}"));
        assert!(count > 0.0, "{sink}: {count}");
        let infinite = format!(
            "runnel_sink_commit_seconds_bucket{{job=\"counts\",sink=\"{sink}\",le=\"+Inf\"}} {count}"
        );
        assert!(metrics.lines().any(|l| l == infinite), "{infinite}");
    }
    server.kill().unwrap();
    server.wait().unwrap();
}
