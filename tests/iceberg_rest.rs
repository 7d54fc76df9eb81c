//! runnel's tables through the Iceberg REST catalog it serves at `/iceberg`: a SQL job
//! commits the top-3 per window to a table; PyIceberg's `RestCatalog` (from PyPI) lists,
//! loads and scans it and equals the batch oracle, then appends a row through a REST
//! commit, which runnel applies with its catalog's compare-and-swap. Bad REST requests
//! get 4xx errors in the REST error model and change nothing.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use arrow::ipc::reader::FileReader;
use serde_json::{Value, json};

use common::durable::{spawn_server, wait_listening};
use common::http::{
    bids_by_partition, get_json, get_table, post_first_half, post_second_half_and_flush,
    submit_hot_top3,
};
use common::python::{python, script};
use common::{oracle_rows, table_rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyiceberg_reads_and_appends_through_the_rest_catalog() {
    let python = tokio::task::spawn_blocking(python);
    let temp = tempfile::tempdir().unwrap();
    let partitions = bids_by_partition(31, 16_000, 1_000, 2);
    let all: Vec<RecordBatch> = partitions.iter().flatten().cloned().collect();
    let expected = oracle_rows(all.clone(), 3).await;

    let mut server = spawn_server(
        &temp.path().join("data"),
        "200ms",
        &temp.path().join("server.log"),
    );
    let url = wait_listening(&mut server);
    let client = reqwest::Client::new();
    submit_hot_top3(&client, &url, "WITH (connector = 'iceberg', table = 'hot')").await;
    post_first_half(&client, &url, &partitions).await;
    post_second_half_and_flush(&client, &url, &partitions, &all).await;
    let start = Instant::now();
    let mut rows = table_rows(&get_table(&client, &url, "hot").await);
    while rows.len() < expected.len() && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        rows = table_rows(&get_table(&client, &url, "hot").await);
    }
    assert_eq!(rows, expected, "GET /v1/tables/hot");

    // The REST catalog by hand: the spec's shapes.
    let rest = format!("{url}/iceberg/v1");
    let config = get_json(&client, &format!("{rest}/config")).await;
    assert!(config["defaults"].is_object(), "{config}");
    let tables = get_json(&client, &format!("{rest}/namespaces/default/tables")).await;
    assert_eq!(
        tables["identifiers"],
        json!([{ "namespace": ["default"], "name": "hot" }])
    );
    let loaded = get_json(&client, &format!("{rest}/namespaces/default/tables/hot")).await;
    let location = loaded["metadata-location"].as_str().unwrap().to_string();
    let snapshot_id = loaded["metadata"]["current-snapshot-id"].as_i64().unwrap();

    // PyIceberg's RestCatalog: list, load, scan, then an append through a REST commit.
    let out = temp.path().join("rest.arrow");
    let output = Command::new(python.await.unwrap())
        .arg(script("rest_iceberg.py"))
        .arg(format!("{url}/iceberg"))
        .arg("default.hot")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "rest_iceberg.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["namespaces"], json!([["default"]]), "{report}");
    assert_eq!(report["tables"], json!([["default", "hot"]]), "{report}");
    let before = report["before"].as_array().unwrap().len();
    assert_eq!(
        report["after"].as_array().unwrap().len(),
        before + 1,
        "{report}"
    );
    assert_eq!(
        report["after"].as_array().unwrap().last().unwrap(),
        "append"
    );
    let read: Vec<RecordBatch> = FileReader::try_new(std::fs::File::open(&out).unwrap(), None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(table_rows(&read), expected, "PyIceberg through REST");

    // The appended row is in the table, once, next to the job's rows.
    let batches = get_table(&client, &url, "hot").await;
    let auctions: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            let column = b.column(b.schema().index_of("auction").unwrap());
            let column = cast(column, &DataType::Int64).unwrap();
            column.as_primitive::<Int64Type>().values().to_vec()
        })
        .collect();
    assert_eq!(auctions.iter().filter(|&&a| a == -1).count(), 1);
    assert_eq!(auctions.len(), expected.len() + 1);

    // A commit planned on the old snapshot (the append moved `main` on): 409, and the
    // table keeps its metadata.
    let current = get_json(&client, &format!("{rest}/namespaces/default/tables/hot")).await;
    let stale = json!({
        "requirements": [{ "type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": snapshot_id }],
        "updates": [{ "action": "set-properties", "updates": { "owner": "stale" } }],
    });
    let reply = client
        .post(format!("{rest}/namespaces/default/tables/hot"))
        .json(&stale)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 409);
    let error: Value = reply.json().await.unwrap();
    assert_eq!(error["error"]["type"], "CommitFailedException", "{error}");
    let after = get_json(&client, &format!("{rest}/namespaces/default/tables/hot")).await;
    assert_eq!(after["metadata-location"], current["metadata-location"]);
    assert_ne!(after["metadata-location"], json!(location));

    // Bad requests: each a 4xx in the REST error model.
    let bad: Vec<(reqwest::Method, String, Option<&str>, u16)> = vec![
        (
            reqwest::Method::GET,
            format!("{rest}/namespaces/default/tables/nope"),
            None,
            404,
        ),
        (
            reqwest::Method::GET,
            format!("{rest}/namespaces/default/tables/..%2Fx"),
            None,
            400,
        ),
        // The client resolves the dot segments: the server sees `/iceberg/v1/tables`.
        (
            reqwest::Method::GET,
            format!("{rest}/namespaces/%2e%2e/tables"),
            None,
            404,
        ),
        (
            reqwest::Method::GET,
            format!("{rest}/namespaces/a%2Fb/tables"),
            None,
            400,
        ),
        (
            reqwest::Method::POST,
            format!("{rest}/namespaces/default/tables/hot"),
            Some("{not json"),
            400,
        ),
        (
            reqwest::Method::POST,
            format!("{rest}/namespaces/default/tables/hot"),
            Some(r#"{"updates": [{"action": "fly"}]}"#),
            400,
        ),
        (
            reqwest::Method::POST,
            format!("{rest}/namespaces/default/tables"),
            Some(r#"{"name": "t"}"#),
            400,
        ),
        (
            reqwest::Method::POST,
            format!("{rest}/namespaces"),
            Some(r#"{"namespace": ["a/b"]}"#),
            400,
        ),
    ];
    for (method, target, body, status) in bad {
        let mut request = client.request(method, &target);
        if let Some(body) = body {
            request = request.body(body);
        }
        let reply = request.send().await.unwrap();
        assert_eq!(reply.status().as_u16(), status, "{target}");
        let error: Value = reply.json().await.unwrap();
        assert!(error["error"]["message"].is_string(), "{target}: {error}");
    }
    let final_rows = get_table(&client, &url, "hot").await;
    assert_eq!(
        final_rows.iter().map(RecordBatch::num_rows).sum::<usize>(),
        expected.len() + 1,
        "bad requests changed the table"
    );
    let _ = server.kill();
    let _ = server.wait();
}
