//! Talking to a `runnel serve` from tests: SQL, bids as Arrow IPC with idempotent
//! producer headers, and reading results with pyarrow (and taking apart the `_epoch` and
//! `_snapshot_id` columns the results stream adds).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::StreamWriter;
use runnel_connectors::nexmark::{NexmarkOptions, NexmarkTable, generate_partition};
use serde_json::Value;

use super::python::{python, script};

/// `events` seeded Nexmark bids (2,000 per second of event time, shuffled within
/// groups of 200) in `partitions` partitions of batches of `batch_size`.
pub fn bids_by_partition(
    seed: u64,
    events: u64,
    batch_size: usize,
    partitions: usize,
) -> Vec<Vec<RecordBatch>> {
    let options = NexmarkOptions {
        seed,
        events_per_second: 2_000,
        max_events: Some(events),
        batch_size,
        partitions,
        out_of_order_group_size: 200,
        ..NexmarkOptions::default()
    };
    (0..partitions)
        .map(|p| generate_partition(&options, NexmarkTable::Bid, p).unwrap())
        .collect()
}

/// `tests/sql/{name}` with each `{key}` replaced by its value.
pub fn sql_file(name: &str, values: &[(&str, &str)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sql")
        .join(name);
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (key, value) in values {
        text = text.replace(&format!("{{{key}}}"), value);
    }
    text
}

/// `GET url`, answered with JSON.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// `GET url`, answered with text (the Prometheus metrics).
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// `GET /v1/tables/{name}`: the table's rows (none while it does not exist yet).
pub async fn get_table(client: &reqwest::Client, url: &str, name: &str) -> Vec<RecordBatch> {
    let reply = client
        .get(format!("{url}/v1/tables/{name}"))
        .send()
        .await
        .unwrap();
    if !reply.status().is_success() {
        return Vec::new();
    }
    let bytes = reply.bytes().await.unwrap();
    arrow::ipc::reader::StreamReader::try_new(&bytes[..], None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Table `name` of the server at `url`, read every 200 ms until `done` holds for its
/// rows or `timeout` has passed; the last read.
pub async fn wait_for_table(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    timeout: Duration,
    done: impl Fn(&[RecordBatch]) -> bool,
) -> Vec<RecordBatch> {
    let start = std::time::Instant::now();
    loop {
        let batches = get_table(client, url, name).await;
        if done(&batches) || start.elapsed() > timeout {
            return batches;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `POST /v1/sql`: the status and the JSON reply.
pub async fn post_sql(client: &reqwest::Client, url: &str, sql: &str) -> (u16, Value) {
    let reply = client
        .post(format!("{url}/v1/sql"))
        .body(sql.to_string())
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap())
}

fn ipc(batch: &RecordBatch) -> Vec<u8> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema()).unwrap();
    writer.write(batch).unwrap();
    writer.into_inner().unwrap()
}

/// Posts the first half of every partition's batches to topic `bids` (producer sequence
/// numbers from 0).
pub async fn post_first_half(client: &reqwest::Client, url: &str, partitions: &[Vec<RecordBatch>]) {
    for (p, batches) in partitions.iter().enumerate() {
        for (seq, batch) in batches[..batches.len() / 2].iter().enumerate() {
            post_bids(client, url, "bids", p, seq, batch).await;
        }
    }
}

/// Posts the second half of every partition's batches to topic `bids`, then a row a
/// minute after the newest bid of `all`, which closes every window.
pub async fn post_second_half_and_flush(
    client: &reqwest::Client,
    url: &str,
    partitions: &[Vec<RecordBatch>],
    all: &[RecordBatch],
) {
    for (p, batches) in partitions.iter().enumerate() {
        for (seq, batch) in batches.iter().enumerate().skip(batches.len() / 2) {
            post_bids(client, url, "bids", p, seq, batch).await;
        }
        let flush = flush_row(&all[0], newest_event(all) + 60_000);
        post_bids(client, url, "bids", p, batches.len(), &flush).await;
    }
}

/// `POST /v1/sql` of the bids source (2 partitions) and the top-3 sink `hot` with the
/// `WITH` clause `with`; panics unless it is accepted.
pub async fn submit_hot_top3(client: &reqwest::Client, url: &str, with: &str) {
    let text = format!(
        "{}\n{}",
        sql_file("bids_source.sql", &[("partitions", "2")]),
        sql_file("hot_top3.sql", &[("with", with)])
    );
    let (status, reply) = post_sql(client, url, &text).await;
    assert_eq!(status, 200, "{reply:#}");
}

/// Appends `batch` to `topic`'s `partition` as request `seq` of that partition's
/// producer, retrying while the server is unreachable (a retry is appended once).
/// Returns the reply.
pub async fn post_bids(
    client: &reqwest::Client,
    url: &str,
    topic: &str,
    partition: usize,
    seq: usize,
    batch: &RecordBatch,
) -> Value {
    loop {
        let reply = client
            .post(format!(
                "{url}/v1/topics/{topic}/records?partition={partition}"
            ))
            .header("Content-Type", "application/vnd.apache.arrow.stream")
            .header("X-Producer-Id", format!("{topic}-{partition}"))
            .header("X-Producer-Seq", seq.to_string())
            .body(ipc(batch))
            .send()
            .await;
        match reply {
            Ok(reply) if reply.status().is_success() => return reply.json().await.unwrap(),
            Ok(reply) if reply.status().is_client_error() => {
                panic!("append refused: {}", reply.text().await.unwrap())
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The newest `date_time` of `batches`, in epoch milliseconds.
pub fn newest_event(batches: &[RecordBatch]) -> i64 {
    batches
        .iter()
        .filter_map(|b| {
            let ts = cast(b.column_by_name("date_time").unwrap(), &DataType::Int64).unwrap();
            arrow::compute::max(ts.as_primitive::<Int64Type>())
        })
        .max()
        .unwrap()
}

/// A copy of `template`'s first row at event time `at`: sent to every partition after
/// the input, it moves the watermark past every window that holds real rows (its own
/// windows stay open and emit nothing).
pub fn flush_row(template: &RecordBatch, at: i64) -> RecordBatch {
    let one = template.slice(0, 1);
    let columns = one
        .schema()
        .fields()
        .iter()
        .zip(one.columns())
        .map(|(f, c)| match f.name().as_str() {
            "date_time" => Arc::new(TimestampMillisecondArray::from(vec![at])) as Arc<dyn Array>,
            _ => c.clone(),
        })
        .collect();
    RecordBatch::try_new(one.schema(), columns).unwrap()
}

/// The column of a results stream holding the epoch that committed each row.
pub const EPOCH: &str = "_epoch";
/// The column of a results stream holding the Iceberg snapshot of that epoch.
pub const SNAPSHOT_ID: &str = "_snapshot_id";

/// The job's own columns of results-stream batches: without `_epoch` and `_snapshot_id`
/// (which every streamed batch must have), as an oracle has them.
pub fn without_tags(batches: &[RecordBatch]) -> Vec<RecordBatch> {
    batches
        .iter()
        .map(|b| {
            let schema = b.schema();
            let tags = [EPOCH, SNAPSHOT_ID].map(|name| {
                schema
                    .index_of(name)
                    .unwrap_or_else(|_| panic!("no {name} in {schema}"))
            });
            let keep: Vec<usize> = (0..b.num_columns()).filter(|i| !tags.contains(i)).collect();
            b.project(&keep).unwrap()
        })
        .collect()
}

/// The `_epoch` of every row of a results-stream batch.
pub fn epochs(batch: &RecordBatch) -> Vec<i64> {
    let column = batch.column_by_name(EPOCH).unwrap();
    assert_eq!(column.null_count(), 0, "_epoch is never null");
    column.as_primitive::<Int64Type>().values().to_vec()
}

/// The `_snapshot_id` of every row of a results-stream batch (`None` where null).
pub fn snapshot_ids(batch: &RecordBatch) -> Vec<Option<i64>> {
    let column = batch.column_by_name(SNAPSHOT_ID).unwrap();
    column.as_primitive::<Int64Type>().iter().collect()
}

/// Reads `rows` rows of a results stream with pyarrow (`tests/python/read_results.py`).
pub fn read_with_pyarrow(url: &str, out: &Path, rows: usize) -> Vec<RecordBatch> {
    let status = Command::new(python())
        .arg(script("read_results.py"))
        .arg(url)
        .arg(out)
        .arg(rows.to_string())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the pyarrow reader failed");
    FileReader::try_new(std::fs::File::open(out).unwrap(), None)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}
