//! `runnel sql -f FILE | -e SQL`: submits statements to `POST /v1/sql` and prints what
//! the server did.

use super::{Server, send};

/// Submits `text` and prints the reply (pretty JSON).
pub async fn run_sql(server: &Server, text: String) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let request = client
        .post(server.endpoint("/v1/sql"))
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(text);
    let reply: serde_json::Value = send(server.authorize(request)).await?.json().await?;
    println!("{}", serde_json::to_string_pretty(&reply)?);
    Ok(())
}
