//! The client commands against a real `runnel serve`: `runnel sql -f/-e`, `runnel
//! produce` with JSON lines, Parquet and Arrow IPC files, and the bearer token.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use runnel_connectors::log::EmbeddedLog;

use common::durable::wait_listening;

fn runnel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn serve(dir: &Path, token: Option<&str>) -> (std::process::Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--data")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    let mut child = command.spawn().unwrap();
    let url = wait_listening(&mut child);
    (child, url)
}

fn bids(first: i64, n: i64) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("price", DataType::Int64, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
    ]);
    let ids: Vec<i64> = (first..first + n).collect();
    RecordBatch::try_new(
        std::sync::Arc::new(schema),
        vec![
            std::sync::Arc::new(Int64Array::from(ids.clone())),
            std::sync::Arc::new(Int64Array::from(
                ids.iter().map(|i| i * 10).collect::<Vec<_>>(),
            )),
            std::sync::Arc::new(StringArray::from(vec!["web"; n as usize])),
            std::sync::Arc::new(TimestampMillisecondArray::from(
                ids.iter()
                    .map(|i| 1_700_000_000_000 + i)
                    .collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_and_produce_from_the_command_line() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let (mut server, url) = serve(&dir, None);

    let sql = temp.path().join("setup.sql");
    std::fs::write(
        &sql,
        "CREATE SOURCE bids (auction BIGINT, price BIGINT, channel VARCHAR, date_time TIMESTAMP(3),
             WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND)
         WITH (connector = 'log', topic = 'bids', partitions = '2');
         CREATE SINK per_channel AS SELECT channel, window_start, window_end, SUM(price) AS total
         FROM TUMBLE(bids, date_time, INTERVAL '1' MINUTE)
         GROUP BY channel, window_start, window_end;",
    )
    .unwrap();
    let done = runnel(&["sql", "-f", sql.to_str().unwrap(), "--server", &url]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stdout).contains("create_sink"));
    let refused = runnel(&["sql", "-e", "SELEC 1", "--server", &url]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("line 1"),
        "{refused:?}"
    );

    // JSON lines (RFC 3339 and epoch milliseconds), Parquet, Arrow IPC.
    let jsonl = temp.path().join("bids.jsonl");
    std::fs::write(
        &jsonl,
        "{\"auction\": 1, \"price\": 10, \"channel\": \"web\", \"date_time\": \"2023-11-14T22:13:20.001Z\"}\n\
         {\"auction\": 2, \"price\": 20, \"channel\": \"app\", \"date_time\": 1700000000002}\n\
         {\"auction\": 3, \"price\": 30, \"channel\": \"web\", \"date_time\": 1700000000003}\n",
    )
    .unwrap();
    let parquet = temp.path().join("bids.parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&parquet).unwrap(),
        bids(10, 5).schema(),
        None,
    )
    .unwrap();
    writer.write(&bids(10, 5)).unwrap();
    writer.close().unwrap();
    let arrow_file = temp.path().join("bids.arrow");
    let mut writer = arrow::ipc::writer::FileWriter::try_new(
        std::fs::File::create(&arrow_file).unwrap(),
        &bids(20, 4).schema(),
    )
    .unwrap();
    writer.write(&bids(20, 4)).unwrap();
    writer.finish().unwrap();
    for file in [&jsonl, &parquet, &arrow_file] {
        let sent = runnel(&["produce", "bids", file.to_str().unwrap(), "--server", &url]);
        assert!(
            sent.status.success(),
            "{file:?}: {}",
            String::from_utf8_lossy(&sent.stderr)
        );
    }
    let unknown = runnel(&["produce", "nope", jsonl.to_str().unwrap(), "--server", &url]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("404"),
        "{unknown:?}"
    );

    let log = EmbeddedLog::local(&dir).unwrap();
    let topic = log.topic("bids").await.unwrap();
    let mut auctions = Vec::new();
    for p in 0..2 {
        let end = topic.end_offset(p).await.unwrap();
        for batch in topic.read(p, 0, end as usize).await.unwrap().batches {
            let ids = batch.column_by_name("auction").unwrap();
            auctions.extend(
                arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(ids)
                    .values()
                    .iter()
                    .copied(),
            );
        }
    }
    auctions.sort();
    let expected: Vec<i64> = [1, 2, 3].into_iter().chain(10..15).chain(20..24).collect();
    assert_eq!(auctions, expected);
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_required_and_accepted() {
    let temp = tempfile::tempdir().unwrap();
    let (mut server, url) = serve(&temp.path().join("data"), Some("s3cret"));
    let without = runnel(&["sql", "-e", "SHOW JOBS", "--server", &url]);
    assert!(!without.status.success());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("401"),
        "{without:?}"
    );
    let wrong = runnel(&[
        "sql",
        "-e",
        "SHOW JOBS",
        "--server",
        &url,
        "--token",
        "nope",
    ]);
    assert!(!wrong.status.success());
    let with = runnel(&[
        "sql",
        "-e",
        "SHOW JOBS",
        "--server",
        &url,
        "--token",
        "s3cret",
    ]);
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(String::from_utf8_lossy(&with.stdout).contains("show_jobs"));
    server.kill().unwrap();
    server.wait().unwrap();
}
