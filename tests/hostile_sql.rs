//! Hostile SQL against a real `runnel serve`: deeply nested expressions, plans that
//! would explode (windows per row, partitions, sinks, statements per request) and
//! statements that fail halfway. Every one is a 4xx naming the limit, the server keeps
//! answering `/healthz`, and a refused request leaves nothing behind.

mod common;

use serde_json::Value;

use common::durable::wait_listening;
use common::http::post_sql;

/// A server on a fresh data root (kept alive with it), with `extra` flags.
struct Running {
    _temp: tempfile::TempDir,
    _server: Server,
    url: String,
    client: reqwest::Client,
}

fn start(extra: &[&str]) -> Running {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let log = temp.path().join("server.log");
    let mut server = spawn(&dir, &log, extra);
    let url = wait_listening(&mut server.0);
    Running {
        _temp: temp,
        _server: server,
        url,
        client: reqwest::Client::new(),
    }
}

/// `runnel serve` on `dir`.
fn spawn(dir: &std::path::Path, log: &std::path::Path, extra: &[&str]) -> Server {
    let bin = env!("CARGO_BIN_EXE_runnel");
    let child = std::process::Command::new(bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--checkpoint-interval",
            "200ms",
        ])
        .args(extra)
        .arg("--data")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Server(child)
}

/// A server process, killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    async fn sql(&self, sql: &str) -> (u16, Value) {
        post_sql(&self.client, &self.url, sql).await
    }

    /// `POST /v1/query`: the status and the body as text (Arrow IPC on success).
    async fn query(&self, sql: &str) -> (u16, String) {
        let reply = self
            .client
            .post(format!("{}/v1/query", self.url))
            .body(sql.to_string())
            .send()
            .await
            .expect("the server answers /v1/query");
        let status = reply.status().as_u16();
        (
            status,
            String::from_utf8_lossy(&reply.bytes().await.unwrap()).into(),
        )
    }

    async fn assert_alive(&self) {
        let reply = self
            .client
            .get(format!("{}/healthz", self.url))
            .send()
            .await
            .expect("the server still answers /healthz");
        assert!(reply.status().is_success());
    }

    async fn names(&self, what: &str) -> Vec<String> {
        let (status, reply) = self.sql(&format!("SHOW {what}")).await;
        assert_eq!(status, 200, "{reply:#}");
        let key = what.to_lowercase();
        reply["results"][0][&key]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// `first op first op ... ` with `n` terms.
fn chain(term: &str, op: &str, n: usize) -> String {
    vec![term; n].join(op)
}

const SOURCE: &str = "CREATE SOURCE bids (auction BIGINT, price BIGINT, date_time TIMESTAMP(3), \
     WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND) \
     WITH (connector = 'log', topic = 'bids')";

fn error_message(reply: &Value) -> String {
    reply["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_expressions_in_a_query_are_refused_and_the_server_lives() {
    let server = start(&[]);
    let cases = [
        format!("SELECT {}", chain("1", "+", 500)),
        format!("SELECT {}", chain("1", "+", 2000)),
        format!("SELECT 1 WHERE {}", chain("true", " AND ", 1000)),
        format!("SELECT 1 WHERE {}", chain("false", " OR ", 250)),
        format!("SELECT {}", chain("'a'", " || ", 1000)),
        format!("SELECT {}1{}", "(".repeat(1000), ")".repeat(1000)),
        format!("SELECT {}1", "- ".repeat(2000)),
        format!("SELECT {}true{}", "NOT (".repeat(2000), ")".repeat(2000)),
    ];
    for sql in &cases {
        let (status, body) = server.query(sql).await;
        assert_eq!(status, 400, "{}...: {body}", &sql[..40]);
        assert!(body.contains("deep"), "{body}");
        server.assert_alive().await;
    }
    // A modest expression still runs.
    let (status, body) = server
        .query(&format!("SELECT {}", chain("1", "+", 60)))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_expressions_in_sql_statements_are_refused_and_the_server_lives() {
    let server = start(&[]);
    let (status, reply) = server.sql(SOURCE).await;
    assert_eq!(status, 200, "{reply:#}");
    let cases = [
        format!(
            "CREATE SINK s AS SELECT {} AS x FROM bids",
            chain("price", "+", 500)
        ),
        format!(
            "CREATE SINK s AS SELECT auction FROM bids WHERE {}",
            chain("price > 1", " AND ", 1000)
        ),
        format!(
            "CREATE SINK s AS SELECT auction FROM bids WHERE {}",
            chain("price > 1", " OR ", 250)
        ),
        format!(
            "CREATE SINK s AS SELECT {} AS x FROM bids",
            chain("'a'", " || ", 1000)
        ),
        format!(
            "EXPLAIN CREATE SINK s AS SELECT {} AS x FROM bids",
            chain("price", "*", 800)
        ),
        format!(
            "CREATE SINK s AS SELECT auction FROM bids WHERE {}price > 1{}",
            "NOT (".repeat(2000),
            ")".repeat(2000)
        ),
        format!(
            "CREATE SOURCE deep (t TIMESTAMP(3), WATERMARK FOR t AS t - {}) \
             WITH (connector = 'log')",
            chain("INTERVAL '1' SECOND", " - ", 600)
        ),
    ];
    for sql in &cases {
        let (status, reply) = server.sql(sql).await;
        assert_eq!(status, 400, "{}...: {reply:#}", &sql[..40]);
        assert!(error_message(&reply).contains("deep"), "{reply:#}");
        server.assert_alive().await;
    }
    assert_eq!(server.names("SINKS").await, Vec::<String>::new());
    assert_eq!(server.names("SOURCES").await, ["bids"]);
    let (status, reply) = server
        .sql(&format!(
            "CREATE SINK s AS SELECT {} AS x FROM bids",
            chain("price", "+", 20)
        ))
        .await;
    assert_eq!(status, 200, "{reply:#}");
}
