//! A SQL job from Rust: the statements `runnel serve` takes over HTTP, planned and run
//! in-process.
//!
//! `runnel::sql::parse` splits the text into statements, `plan_sink` checks the sink's
//! query against the declared sources (names, types, window shapes: every error names
//! the line and column), and `build` adds the planned operators to a `Dataflow`, whose
//! output this program collects. Run with `cargo run --example sql_from_rust`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::util::pretty::print_batches;
use runnel::connectors::channel::CollectSink;
use runnel::runtime::{Dataflow, JobConfig, Source, spawn};
use runnel::sql::{Statement, plan_sink};

const SQL: &str = "
CREATE SOURCE bids WITH (connector = 'nexmark', type = 'bid', max_events = '20000', partitions = '2');

CREATE SINK hot_items AS
SELECT auction, window_start, window_end, COUNT(*) AS bids
FROM HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end;
";

/// Plans the sink of `text` against its sources and runs it to the end of the input.
async fn run(text: &str) -> Result<Vec<RecordBatch>, Box<dyn std::error::Error>> {
    let statements = runnel::sql::parse(text)?;
    let mut declared = Vec::new();
    let mut sink = None;
    for statement in statements {
        match statement {
            Statement::CreateSource(source) => declared.push(source),
            Statement::CreateSink(def) => sink = Some(def),
            other => return Err(format!("not a job statement: {other:?}").into()),
        }
    }
    let sink = sink.ok_or("no CREATE SINK")?;
    let plan = plan_sink(&sink, &declared)?;
    println!("{plan}");

    let mut sources: HashMap<String, Arc<dyn Source>> = HashMap::new();
    for def in &declared {
        let generator = def.nexmark().ok_or("only nexmark sources here")??;
        sources.insert(def.name.clone(), Arc::new(generator));
    }
    let flow = Dataflow::new(&plan.name).with_parallelism(2);
    let results = CollectSink::new();
    runnel::sql::build(&plan, &flow, &sources)?.sink("results", Arc::new(results.clone()))?;
    spawn(flow.build()?, JobConfig::default())
        .await?
        .join()
        .await?;
    Ok(results.batches())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batches = run(SQL).await?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    println!("{rows} (auction, window) counts; the first batch:");
    print_batches(&batches[..1.min(batches.len())])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;

    use super::*;

    #[tokio::test]
    async fn every_bid_is_counted_in_each_of_its_five_windows() {
        let batches = run(SQL).await.unwrap();
        let total: i64 = batches
            .iter()
            .map(|b| {
                let counts = b
                    .column_by_name("bids")
                    .unwrap()
                    .as_primitive::<Int64Type>();
                counts.values().iter().sum::<i64>()
            })
            .sum();
        // A 10 s window sliding by 2 s holds each bid five times.
        assert_eq!(total, 5 * 20_000);
    }

    #[tokio::test]
    async fn bad_sql_names_its_line_and_column() {
        let text = SQL.replace("COUNT(*) AS bids", "COUNT(*) AS bids, nope");
        let error = run(&text).await.unwrap_err().to_string();
        assert!(
            error.contains("nope") && error.contains("line 5"),
            "{error}"
        );
    }
}
