//! An S3-compatible server for the tests (moto, from PyPI) and `runnel serve` on a bucket
//! of it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::durable::{free_port, wait_listening};
use super::python::venv_command;

/// The bucket every S3 test uses.
pub const BUCKET: &str = "runnel-test";

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts moto on a free port with [`BUCKET`] created; the process and its endpoint.
pub async fn start_moto() -> (Killed, String) {
    let moto = tokio::task::spawn_blocking(|| venv_command("moto_server"))
        .await
        .unwrap();
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = Killed(
        Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        match client.put(format!("{endpoint}/{BUCKET}")).send().await {
            Ok(reply) if reply.status().is_success() => break,
            _ if start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("moto did not come up: {other:?}"),
        }
    }
    (server, endpoint)
}

/// `runnel serve --data s3://{BUCKET}/data` against `endpoint`, checkpointing every
/// 200 ms, logging to `log`; the process and its URL.
pub fn serve_on_s3(endpoint: &str, log: &std::path::Path) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(["serve", "--data", &format!("s3://{BUCKET}/data")])
        .args(["--listen", "127.0.0.1:0", "--checkpoint-interval", "200ms"])
        .env("AWS_ENDPOINT", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let url = wait_listening(&mut child);
    (Killed(child), url)
}
