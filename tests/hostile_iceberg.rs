//! Hostile clients of the Iceberg REST catalog a server exposes: locations and path
//! properties aimed outside the warehouse are refused at create and at commit; the
//! `runnel.*` snapshot keys of a table a job writes are reserved to its sink, and so is
//! the table itself (no drop while the job lives); a snapshot forged behind the REST
//! catalog's back (through the catalog database) skips no epoch and fences nothing; a
//! table dropped behind its back fails the job with an error instead of restarting it.

// Tests wait on and time real processes with the machine's clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use arrow::array::RecordBatch;
use iceberg::{TableRequirement, TableUpdate};
use runnel_connectors::iceberg::{IcebergCatalog, RawCommit, commit_raw};
use serde_json::{Value, json};

use common::durable::{spawn_server, wait_listening};
use common::http::{
    bids_by_partition, flush_row, get_json, newest_event, post_bids, post_first_half,
    post_second_half_and_flush, submit_hot_top3, wait_for_table,
};
use common::{oracle_rows, table_rows};

const SCHEMA: &str = r#"{"type": "struct", "schema-id": 0, "fields": [
    {"id": 1, "name": "v", "required": false, "type": "long"}]}"#;

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    let text = reply.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn create_table(name: &str, location: Option<&str>, properties: Value) -> Value {
    let mut body = json!({
        "name": name,
        "schema": serde_json::from_str::<Value>(SCHEMA).unwrap(),
        "properties": properties,
    });
    if let Some(location) = location {
        body["location"] = json!(location);
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locations_and_paths_outside_the_warehouse_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let mut server = spawn_server(&data, "200ms", &temp.path().join("server.log"));
    let url = wait_listening(&mut server);
    let client = reqwest::Client::new();
    let rest = format!("{url}/iceberg/v1");
    let data_url = format!("file://{}", data.canonicalize().unwrap().display());
    let post = reqwest::Method::POST;

    let (status, error) = send(
        &client,
        post.clone(),
        &format!("{rest}/namespaces"),
        Some(json!({"namespace": ["ns"], "properties": {"location": "file:///tmp/x"}})),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["type"], "BadRequestException", "{error}");
    let (status, _) = send(
        &client,
        post.clone(),
        &format!("{rest}/namespaces"),
        Some(json!({"namespace": ["default"]})),
    )
    .await;
    assert_eq!(status, 200);

    let tables = format!("{rest}/namespaces/default/tables");
    let bad_locations = [
        "file:///tmp/x".to_string(),
        format!("{data_url}/warehouse/../../x"),
        format!("{data_url}/warehouse/default/../../jobs/t"),
        "s3://bucket/x".to_string(),
        "http://example.com/x".to_string(),
        "relative/x".to_string(),
        "../../x".to_string(),
        format!("{data_url}/jobs/t"),
        format!("{data_url}/log/t"),
    ];
    for location in &bad_locations {
        let body = create_table("t", Some(location), json!({}));
        let (status, error) = send(&client, post.clone(), &tables, Some(body)).await;
        assert_eq!(status, 400, "{location}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("location"),
            "{error}"
        );
    }
    for key in [
        "write.data.path",
        "write.metadata.path",
        "write.object-storage.path",
    ] {
        let body = create_table("t", None, json!({ key: "file:///tmp/x" }));
        let (status, error) = send(&client, post.clone(), &tables, Some(body)).await;
        assert_eq!(status, 400, "{key}: {error}");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(key),
            "{error}"
        );
    }
    let (status, _) = send(&client, reqwest::Method::GET, &format!("{tables}/t"), None).await;
    assert_eq!(status, 404, "a refused creation created the table");
    assert!(!data.join("relative").exists() && !std::path::Path::new("relative").exists());

    // A table where it belongs, then commits that would move its files.
    let body = create_table("t", None, json!({ "write.data.path": "" }));
    let (status, _) = send(&client, post.clone(), &tables, Some(body)).await;
    assert_eq!(status, 400, "an empty path is no path under the table");
    let (status, created) = send(
        &client,
        post.clone(),
        &tables,
        Some(create_table("t", None, json!({}))),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let location = created["metadata"]["location"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(location, format!("{data_url}/warehouse/default/t"));
    let table = format!("{tables}/t");
    let refused = [
        json!({"action": "set-properties", "updates": {"write.data.path": "file:///tmp/x"}}),
        json!({"action": "set-properties", "updates": {"write.metadata.path": format!("{data_url}/jobs")}}),
        json!({"action": "set-location", "location": "file:///tmp/x"}),
    ];
    for update in refused {
        let body = json!({ "updates": [update] });
        let (status, error) = send(&client, post.clone(), &table, Some(body)).await;
        assert_eq!(status, 400, "{update}: {error}");
    }
    let fine = json!({"updates": [{"action": "set-properties", "updates": {
        "owner": "me", "write.data.path": format!("{location}/data")}}]});
    let (status, reply) = send(&client, post.clone(), &table, Some(fine)).await;
    assert_eq!(status, 200, "{reply}");
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert!(health.status().is_success());
    let _ = server.kill();
    let _ = server.wait();
}

/// An `add-snapshot` update on top of `metadata`'s current snapshot with its files and a
/// summary claiming to be the sink's, with a huge epoch and writer generation.
fn forged_snapshot(metadata: &Value, sink_id: &str) -> (Value, Value) {
    let current_id = metadata["current-snapshot-id"].as_i64().unwrap();
    let current = metadata["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["snapshot-id"].as_i64() == Some(current_id))
        .unwrap();
    let id = current_id.wrapping_add(7_777).abs();
    let huge = u64::MAX.to_string();
    let snapshot = json!({
        "snapshot-id": id,
        "parent-snapshot-id": current_id,
        "sequence-number": metadata["last-sequence-number"].as_i64().unwrap() + 1,
        "timestamp-ms": current["timestamp-ms"].as_i64().unwrap() + 1,
        "manifest-list": current["manifest-list"],
        "summary": {
            "operation": "append",
            "runnel.sink-id": sink_id,
            "runnel.epoch": huge,
            "runnel.writer-generation": huge,
        },
        "schema-id": current["schema-id"],
    });
    let requirement =
        json!({"type": "assert-ref-snapshot-id", "ref": "main", "snapshot-id": current_id});
    let updates = json!([
        {"action": "add-snapshot", "snapshot": snapshot},
        {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": id},
    ]);
    (requirement, updates)
}

async fn job_status(client: &reqwest::Client, url: &str) -> Value {
    let jobs = get_json(client, &format!("{url}/v1/jobs")).await;
    let id = jobs["jobs"][0]["id"].as_str().unwrap().to_string();
    get_json(client, &format!("{url}/v1/jobs/{id}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sinks_table_and_bookkeeping_are_its_own() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let partitions = bids_by_partition(41, 16_000, 1_000, 2);
    let all: Vec<RecordBatch> = partitions.iter().flatten().cloned().collect();
    let expected = oracle_rows(all.clone(), 3).await;
    let mut server = spawn_server(&data, "200ms", &temp.path().join("server.log"));
    let url = wait_listening(&mut server);
    let client = reqwest::Client::new();
    submit_hot_top3(&client, &url, "WITH (connector = 'iceberg', table = 'hot')").await;
    post_first_half(&client, &url, &partitions).await;
    wait_for_table(&client, &url, "hot", Duration::from_secs(60), |b| {
        !table_rows(b).is_empty()
    })
    .await;
    let table = format!("{url}/iceberg/v1/namespaces/default/tables/hot");
    let loaded = get_json(&client, &table).await;

    // Through the REST catalog: the sink's keys are refused, and so is the drop.
    let (requirement, updates) = forged_snapshot(&loaded["metadata"], "hot.table");
    let body = json!({ "requirements": [requirement], "updates": updates });
    let (status, error) = send(&client, reqwest::Method::POST, &table, Some(body)).await;
    assert_eq!(status, 403, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("runnel."),
        "{error}"
    );
    let (status, error) = send(&client, reqwest::Method::DELETE, &table, None).await;
    assert_eq!(status, 409, "{error}");

    // Behind its back, through the catalog database: the sink ignores the forgery.
    let catalog = IcebergCatalog::embedded(&data, runnel::runtime::Ambient::system())
        .await
        .unwrap();
    let loaded = get_json(&client, &table).await;
    let (requirement, updates) = forged_snapshot(&loaded["metadata"], "hot.table");
    let requirements: Vec<TableRequirement> = vec![serde_json::from_value(requirement).unwrap()];
    let updates: Vec<TableUpdate> = serde_json::from_value(updates).unwrap();
    let ident = IcebergCatalog::table_ident("hot");
    let forged = commit_raw(&catalog, &ident, requirements, updates)
        .await
        .unwrap();
    assert!(matches!(forged, RawCommit::Committed(_)), "{forged:?}");

    post_second_half_and_flush(&client, &url, &partitions, &all).await;
    let batches = wait_for_table(&client, &url, "hot", Duration::from_secs(60), |b| {
        table_rows(b).len() >= expected.len()
    })
    .await;
    assert_eq!(table_rows(&batches), expected, "epochs after the forgery");
    let status = job_status(&client, &url).await;
    assert_eq!(status["state"], "running", "{status}");

    // Dropped behind its back: the job fails and says why.
    catalog.catalog().drop_table(&ident).await.unwrap();
    let later = flush_row(&all[0], newest_event(&all) + 120_000);
    for (p, batches) in partitions.iter().enumerate() {
        post_bids(&client, &url, "bids", p, batches.len() + 1, &later).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = job_status(&client, &url).await;
        if status["state"] == "failed" || std::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["state"], "failed", "{status}");
    let error = status["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("hot") && error.contains("does not exist"),
        "{status}"
    );
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert!(health.status().is_success());
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_column_added_by_another_writer_does_not_stop_the_sink() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let partitions = bids_by_partition(43, 16_000, 1_000, 2);
    let all: Vec<RecordBatch> = partitions.iter().flatten().cloned().collect();
    let expected = oracle_rows(all.clone(), 3).await;
    let mut server = spawn_server(&data, "200ms", &temp.path().join("server-1.log"));
    let url = wait_listening(&mut server);
    let client = reqwest::Client::new();
    submit_hot_top3(&client, &url, "WITH (connector = 'iceberg', table = 'hot')").await;
    post_first_half(&client, &url, &partitions).await;
    wait_for_table(&client, &url, "hot", Duration::from_secs(60), |b| {
        !table_rows(b).is_empty()
    })
    .await;

    // Another engine adds an optional column through the REST catalog.
    let table = format!("{url}/iceberg/v1/namespaces/default/tables/hot");
    let loaded = get_json(&client, &table).await;
    let metadata = &loaded["metadata"];
    let schema_id = metadata["current-schema-id"].as_i64().unwrap();
    let mut schema = metadata["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["schema-id"].as_i64() == Some(schema_id))
        .unwrap()
        .clone();
    let next_id = metadata["last-column-id"].as_i64().unwrap() + 1;
    schema["schema-id"] = json!(schema_id + 1);
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": next_id, "name": "note", "required": false, "type": "string"}));
    let body = json!({"updates": [
        {"action": "add-schema", "schema": schema},
        {"action": "set-current-schema", "schema-id": -1},
    ]});
    let (status, reply) = send(&client, reqwest::Method::POST, &table, Some(body)).await;
    assert_eq!(status, 200, "{reply}");

    // The job starts again on the evolved table and finishes the input.
    let _ = server.kill();
    let _ = server.wait();
    let mut server = spawn_server(&data, "200ms", &temp.path().join("server-2.log"));
    let url = wait_listening(&mut server);
    post_second_half_and_flush(&client, &url, &partitions, &all).await;
    let batches = wait_for_table(&client, &url, "hot", Duration::from_secs(60), |b| {
        table_rows(b).len() >= expected.len()
    })
    .await;
    let status = job_status(&client, &url).await;
    assert_eq!(table_rows(&batches), expected, "{status}");
    assert_eq!(status["state"], "running", "{status}");
    let _ = server.kill();
    let _ = server.wait();
}
