//! `runnel tail JOB`: prints a job's live results stream as tables, batch by batch, as
//! results commit.

use arrow::buffer::Buffer;
use arrow::ipc::reader::StreamDecoder;
use arrow::util::pretty::pretty_format_batches;
use futures::StreamExt;

use super::{Server, send};

/// Follows `GET /v1/jobs/{job}/results?from={from}` until the stream ends.
pub async fn tail(server: &Server, job: &str, from: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let request = client
        .get(server.endpoint(&format!("/v1/jobs/{job}/results")))
        .query(&[("from", from)]);
    let mut body = send(server.authorize(request)).await?.bytes_stream();
    let mut decoder = StreamDecoder::new();
    while let Some(chunk) = body.next().await {
        let mut buffer = Buffer::from(chunk?);
        while let Some(batch) = decoder.decode(&mut buffer)? {
            if batch.num_rows() > 0 {
                println!("{}", pretty_format_batches(&[batch])?);
            }
        }
    }
    decoder.finish()?;
    Ok(())
}
