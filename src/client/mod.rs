//! The command-line clients of a running `runnel serve`: `runnel sql`, `runnel produce`
//! and `runnel tail`. They speak only the public HTTP API.

mod produce;
mod sql;
mod tail;

pub use produce::produce;
pub use sql::run_sql;
pub use tail::tail;

use anyhow::Context;
use reqwest::{RequestBuilder, Response};

/// Where the server is and how to authenticate.
#[derive(Debug, Clone)]
pub struct Server {
    /// Base URL, e.g. `http://127.0.0.1:7878`.
    pub url: String,
    pub token: Option<String>,
}

impl Server {
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

/// Sends `request`; a non-2xx reply becomes an error carrying the server's message.
async fn send(request: RequestBuilder) -> anyhow::Result<Response> {
    let response = request
        .send()
        .await
        .context("cannot reach the runnel server")?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| Some(v["error"]["message"].as_str()?.to_string()))
        .unwrap_or(body);
    anyhow::bail!("server answered {status}: {message}")
}
