//! SQL over HTTP against a real `runnel serve`: declare a source and a top-N sink,
//! produce bids over HTTP as Arrow IPC, kill -9 the server halfway and restart it, and
//! read the results with pyarrow: they equal the batch oracle. Bad SQL gets a 4xx JSON
//! error naming line and column, and the running job is unaffected.

mod common;

use std::time::Duration;

use arrow::record_batch::RecordBatch;
use serde_json::Value;

use common::durable::{spawn_server, wait_listening};
use common::http::{
    bids_by_partition, flush_row, get_json, newest_event, post_bids, post_sql, read_with_pyarrow,
    sql_file, without_tags,
};
use common::python::python;
use common::{oracle_rows, streaming_rows};

const PARTITIONS: usize = 4;

/// The source and the top-3 sink into topic `hot`.
fn create() -> String {
    let source = sql_file("bids_source.sql", &[("partitions", "4")]);
    let sink = sql_file(
        "hot_top3.sql",
        &[("with", "WITH (connector = 'log', topic = 'hot')")],
    );
    format!("{source}\n{sink}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_job_over_http_survives_a_kill_and_matches_the_oracle() {
    let python = tokio::task::spawn_blocking(python);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let partitions = bids_by_partition(23, 40_000, 1_000, PARTITIONS);
    let all: Vec<RecordBatch> = partitions.iter().flatten().cloned().collect();
    let expected = oracle_rows(all.clone(), 3).await;
    python.await.unwrap();

    let mut server = spawn_server(&dir, "200ms", &temp.path().join("server-1.log"));
    let url = wait_listening(&mut server);
    let client = reqwest::Client::new();
    let (status, reply) = post_sql(&client, &url, &create()).await;
    assert_eq!(status, 200, "{reply:#}");
    assert_eq!(reply["results"][1]["job"], "hot", "{reply:#}");

    // Half of the bids, then kill -9 in the middle of the stream.
    for (p, batches) in partitions.iter().enumerate() {
        for (seq, batch) in batches[..batches.len() / 2].iter().enumerate() {
            post_bids(&client, &url, "bids", p, seq, batch).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill().unwrap();
    server.wait().unwrap();

    // The restarted server resumes the job by itself; a producer retrying its last
    // request appends nothing twice.
    let mut server = spawn_server(&dir, "200ms", &temp.path().join("server-2.log"));
    let url = wait_listening(&mut server);
    for (p, batches) in partitions.iter().enumerate() {
        let half = batches.len() / 2;
        let retried = post_bids(&client, &url, "bids", p, half - 1, &batches[half - 1]).await;
        assert_eq!(retried["duplicate"], true, "{retried:#}");
        for (seq, batch) in batches.iter().enumerate().skip(half) {
            post_bids(&client, &url, "bids", p, seq, batch).await;
        }
        post_bids(
            &client,
            &url,
            "bids",
            p,
            batches.len(),
            &flush_row(&all[0], newest_event(&all) + 60_000),
        )
        .await;
    }
    let status: Value = get_json(&client, &format!("{url}/v1/jobs/hot")).await;
    assert_eq!(status["state"], "running", "{status:#}");

    // Bad statements, while the job runs: each is refused with a 4xx JSON error (SQL
    // errors name line and column) and changes nothing.
    let window = "TUMBLE(bids, date_time, INTERVAL '1' SECOND)";
    let source = |with: &str| {
        format!(
            "CREATE SOURCE x (a BIGINT, t TIMESTAMP(3), \
             WATERMARK FOR t AS t - INTERVAL '1' SECOND) WITH ({with})"
        )
    };
    let bad: Vec<(String, u16, &str)> = vec![
        ("SELEC 1".into(), 400, "line 1"),
        ("CREATE SINK s AS SELECT nope FROM bids".into(), 400, "nope"),
        (format!("CREATE SINK s AS SELECT SUM(url) FROM {window} GROUP BY window_start, window_end"), 400, "line 1"),
        ("CREATE SINK s AS SELECT auction, COUNT(*) FROM bids GROUP BY auction".into(), 400, "line 1"),
        ("CREATE SINK s AS SELECT *\nFROM CUMULATE(bids, date_time, INTERVAL '1' SECOND, INTERVAL '4' SECOND)".into(), 400, "line 2"),
        ("CREATE SINK s AS SELECT COUNT(*)\nFROM CUMULATE(bids, date_time, INTERVAL '3' SECOND, INTERVAL '4' SECOND) GROUP BY window_start, window_end".into(), 400, "line 2"),
        ("CREATE SINK s AS SELECT * FROM missing".into(), 400, "missing"),
        ("CREATE SINK hot AS SELECT auction FROM bids".into(), 409, "exists"),
        ("CREATE SINK s WITH (connector = 'log', topic = '../x') AS SELECT auction FROM bids".into(), 400, "topic"),
        ("CREATE SOURCE bids (a BIGINT, t TIMESTAMP(3), WATERMARK FOR t AS t - INTERVAL '1' SECOND) WITH (connector = 'log', topic = 'bids')".into(), 409, "bids"),
        ("DROP SINK nope".into(), 404, "nope"),
        ("".into(), 400, "no SQL"),
        ("   \n ".into(), 400, "no SQL"),
        ("CREATE SOURCE x (a BIGINT) WITH (connector = 'log')".into(), 400, "line 1"),
        (source("connector = 'kafka'"), 400, "line 1"),
        (source("connector = 'kafka', topic = 't', bootstrap.servers = '127.0.0.1:9'"), 400, "bootstrap.servers"),
        (source("connector = 'log', topic = 'a/b'"), 400, "a/b"),
        (source("connector = 'log', topic = '%2e%2e'"), 400, "%2e%2e"),
        (source("connector = 'log', partitions = 'many'"), 400, "line 1"),
        (source("connector = 'log', colour = 'red'"), 400, "colour"),
        (source("connector = 'nexmark', type = 'unicorn'"), 400, "unicorn"),
        ("CREATE SOURCE ../x (a BIGINT) WITH (connector = 'log')".into(), 400, "line 1"),
        ("CREATE SINK s AS SELECT b1.auction FROM bids b1 JOIN bids b2 ON b1.auction = b2.auction".into(), 400, "line 1"),
        ("CREATE SINK s AS SELECT auction FROM bids ORDER BY auction".into(), 400, "line 1"),
        ("CREATE SINK s AS SELECT auction FROM bids LIMIT 5".into(), 400, "line 1"),
        (format!("CREATE SINK s AS SELECT COUNT(DISTINCT bidder), COUNT(DISTINCT auction) FROM {window} GROUP BY window_start, window_end"), 400, "DISTINCT"),
        ("CREATE SINK s AS SELECT COUNT(DISTINCT bidder) FROM SESSION(bids, date_time, INTERVAL '1' SECOND) GROUP BY window_start, window_end".into(), 400, "SESSION"),
        (format!("CREATE SINK s AS SELECT a.n FROM (SELECT window_start, window_end, COUNT(*) AS n FROM {window} GROUP BY window_start, window_end) a LEFT JOIN (SELECT window_start, window_end, COUNT(*) AS n FROM {window} GROUP BY window_start, window_end) b ON a.window_start = b.window_start AND a.window_end = b.window_end"), 400, "inner joins"),
        (format!("CREATE SINK s AS SELECT a.n FROM (SELECT window_start, window_end, COUNT(*) AS n FROM {window} GROUP BY window_start, window_end) a JOIN (SELECT window_start, window_end, COUNT(*) AS n FROM {window} GROUP BY window_start, window_end) b ON a.n = b.n"), 400, "match the windows"),
        (format!("CREATE SINK s AS SELECT MAX(n) FROM (SELECT auction, window_start, window_end, COUNT(*) AS n FROM {window} GROUP BY auction, window_start, window_end) GROUP BY auction"), 400, "window_start"),
        (format!("CREATE SINK s WITH (connector = 'iceberg', table = 't') AS SELECT window_start, window_end, window_end - window_start AS span, COUNT(*) AS n FROM {window} GROUP BY window_start, window_end"), 400, "span"),
        ("CREATE SINK s AS SELECT COUNT(*) FROM HOP(bids, date_time, INTERVAL '10' SECOND, INTERVAL '2' SECOND) GROUP BY window_start, window_end".into(), 400, "line 1"),
        ("CREATE SINK s AS SELECT COUNT(*) FROM TUMBLE(bids, price, INTERVAL '1' SECOND) GROUP BY window_start, window_end".into(), 400, "line 1"),
        ("CREATE SINK s AS SELECT window_start FROM bids".into(), 400, "window_start"),
        (format!("CREATE SINK s AS SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY bids DESC) AS rn FROM (SELECT window_start, window_end, COUNT(*) AS bids FROM {window} GROUP BY window_start, window_end)"), 400, "line 1"),
        ("CREATE SINK s WITH (connector = 'iceberg', table = '../t') AS SELECT auction FROM bids".into(), 400, "table"),
        ("CREATE SINK s WITH (connector = 'nope') AS SELECT auction FROM bids".into(), 400, "nope"),
        ("CREATE SINK s AS SELECT auction FROM bids WHERE price".into(), 400, "line 1"),
        ("CREATE SINK s AS SELECT auction FROM bids WHERE nope > 1".into(), 400, "nope"),
        ("CREATE SINK s AS SELECT auction / 'x' FROM bids".into(), 400, "line 1"),
        ("DROP TABLE bids".into(), 400, "line 1"),
        ("INSERT INTO bids VALUES (1)".into(), 400, "line 1"),
        ("CREATE SINK s AS".into(), 400, "line 1"),
        ("CREATE SINK s AS SELECT auction FROM bids;\nSELEC".into(), 400, "line 2"),
        ("SHOW TABLES".into(), 400, "line 1"),
        ("CREATE SINK s AS SELECT COUNT(*) FROM TUMBLE(bids, date_time, INTERVAL '0' SECOND) GROUP BY window_start, window_end".into(), 400, "line 1"),
        ("EXPLAIN CREATE SINK s AS SELECT nope FROM bids".into(), 400, "nope"),
        (format!("CREATE SINK s AS SELECT MAX(channel, url) FROM {window} GROUP BY window_start, window_end"), 400, "line 1"),
        ("CREATE SINK \"a/b\" AS SELECT auction FROM bids".into(), 400, "a/b"),
        ("x".repeat(300 * 1024), 413, "limit"),
    ];
    for (sql, status, needle) in &bad {
        let (got, reply) = post_sql(&client, &url, sql).await;
        let shown = &sql[..sql.len().min(120)];
        assert_eq!(got, *status, "{shown}: {reply:#}");
        assert!(reply["error"]["code"].is_string(), "{shown}: {reply:#}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{shown}: {reply:#}");
    }
    let not_utf8 = client
        .post(format!("{url}/v1/sql"))
        .body(vec![0xff, 0xfe, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(not_utf8.status().as_u16(), 400);

    let results = format!("{url}/v1/jobs/hot/results?from=earliest");
    let out = temp.path().join("hot.arrow");
    let rows = expected.len();
    let got = tokio::task::spawn_blocking(move || read_with_pyarrow(&results, &out, rows))
        .await
        .unwrap();
    assert_eq!(streaming_rows(&without_tags(&got)), expected);

    let (_, shown) = post_sql(&client, &url, "SHOW SOURCES; SHOW SINKS; SHOW JOBS").await;
    assert_eq!(
        shown["results"][0]["sources"].as_array().unwrap().len(),
        1,
        "{shown:#}"
    );
    // Nothing was half-created: still one source and one sink.
    assert_eq!(
        shown["results"][1]["sinks"].as_array().unwrap().len(),
        1,
        "{shown:#}"
    );
    assert_eq!(shown["results"][1]["sinks"][0]["name"], "hot", "{shown:#}");
    assert_eq!(
        shown["results"][2]["jobs"][0]["state"], "running",
        "{shown:#}"
    );
    let (_, explained) = post_sql(
        &client,
        &url,
        &format!(
            "EXPLAIN {}",
            sql_file("hot_top3.sql", &[("with", "")])
                .replace("CREATE SINK hot", "CREATE SINK hot2")
        ),
    )
    .await;
    assert!(explained["results"][0]["plan"].is_string(), "{explained:#}");

    let (status, dropped) = post_sql(&client, &url, "DROP SINK hot").await;
    assert_eq!(status, 200, "{dropped:#}");
    assert_eq!(dropped["results"][0]["state"], "dropped", "{dropped:#}");
    server.kill().unwrap();
    server.wait().unwrap();
}
