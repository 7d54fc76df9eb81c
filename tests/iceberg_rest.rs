//! runnel's tables through the Iceberg REST catalog it serves at `/iceberg`: a SQL job
//! commits the top-3 per window to a table; PyIceberg's `RestCatalog` (from PyPI) lists,
//! loads and scans it and equals the batch oracle, then appends a row through a REST
//! commit, which runnel applies with its catalog's compare-and-swap. Bad REST requests
//! get 4xx errors in the REST error model and change nothing. A second server keeps its
//! tables in the first one's REST catalog (`--iceberg-rest`) and commits through it
//! exactly once, through a kill -9, compactions included.

// Tests wait on and time real processes with the machine's clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::process::Command;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use arrow::ipc::reader::FileReader;
use serde_json::{Value, json};

use common::durable::{spawn_server, spawn_server_with, wait_listening};
use common::http::{
    bids_by_partition, get_json, get_table, post_first_half, post_second_half_and_flush,
    submit_hot_top3, wait_for_table,
};
use common::python::{python, script};
use common::{oracle_rows, table_rows};
use runnel_connectors::iceberg::{Compaction, IcebergCatalog, compact, live_data_files};

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
    let batches = wait_for_table(&client, &url, "hot", Duration::from_secs(60), |b| {
        table_rows(b).len() >= expected.len()
    })
    .await;
    let rows = table_rows(&batches);
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

/// A server whose Iceberg tables live in another server's REST catalog: its sink commits
/// through the REST commit endpoint, exactly once through a kill -9, and a compaction goes
/// the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_on_a_rest_catalog_is_exact_through_a_kill() {
    let temp = tempfile::tempdir().unwrap();
    let partitions = bids_by_partition(37, 16_000, 1_000, 2);
    let all: Vec<RecordBatch> = partitions.iter().flatten().cloned().collect();
    let expected = oracle_rows(all.clone(), 3).await;
    let client = reqwest::Client::new();

    // The catalog server, and a writer whose tables are in it.
    let mut catalog_server = spawn_server(
        &temp.path().join("catalog"),
        "1s",
        &temp.path().join("catalog.log"),
    );
    let catalog_url = wait_listening(&mut catalog_server);
    let rest = format!("{catalog_url}/iceberg");
    let writer_dir = temp.path().join("writer");
    let writer = |log: &str| {
        let mut child = spawn_server_with(
            &writer_dir,
            "200ms",
            &temp.path().join(log),
            "127.0.0.1:0",
            &["--iceberg-rest", &rest],
        );
        let url = wait_listening(&mut child);
        (child, url)
    };

    let (mut first, url) = writer("writer-1.log");
    submit_hot_top3(&client, &url, "WITH (connector = 'iceberg', table = 'hot')").await;
    post_first_half(&client, &url, &partitions).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    first.kill().unwrap();
    first.wait().unwrap();

    let (mut second, url) = writer("writer-2.log");
    post_second_half_and_flush(&client, &url, &partitions, &all).await;
    let batches = wait_for_table(&client, &catalog_url, "hot", Duration::from_secs(60), |b| {
        table_rows(b).len() >= expected.len()
    })
    .await;
    let rows = table_rows(&batches);
    assert_eq!(rows, expected, "the table, read from the catalog server");
    let loaded = get_json(&client, &format!("{rest}/v1/namespaces/default/tables/hot")).await;
    let snapshots = loaded["metadata"]["snapshots"].as_array().unwrap();
    let mut epochs: Vec<&str> = snapshots
        .iter()
        .filter_map(|s| s["summary"]["runnel.epoch"].as_str())
        .collect();
    let appends = epochs.len();
    epochs.sort();
    epochs.dedup();
    assert_eq!(
        epochs.len(),
        appends,
        "an epoch committed twice: {snapshots:?}"
    );
    second.kill().unwrap();
    second.wait().unwrap();

    // A compaction through the REST commit endpoint: the same rows in fewer files.
    let store =
        std::sync::Arc::new(runnel_connectors::log::SyncedLocal::open(&writer_dir).unwrap());
    let catalog = IcebergCatalog::rest(
        &rest,
        store,
        object_store::path::Path::from(""),
        runnel::runtime::Ambient::system(),
    )
    .await
    .unwrap();
    let before = live_data_files(&catalog.load_table("hot").await.unwrap())
        .await
        .unwrap()
        .len();
    let policy = Compaction {
        every_commits: std::num::NonZeroUsize::MIN,
        ..Compaction::default()
    };
    let done = compact(&catalog, "hot", "hot.table", &policy)
        .await
        .unwrap()
        .expect("small files to merge");
    let table = catalog.load_table("hot").await.unwrap();
    let after = live_data_files(&table).await.unwrap().len();
    assert!(after < before, "{before} files before, {after} after");
    assert_eq!(done.files_removed + after, before + done.files_added);
    assert_eq!(
        table.metadata().current_snapshot().unwrap().snapshot_id(),
        done.snapshot_id
    );
    let rows = table_rows(&get_table(&client, &catalog_url, "hot").await);
    assert_eq!(rows, expected, "the table after compaction");
    let _ = catalog_server.kill();
    let _ = catalog_server.wait();
}
