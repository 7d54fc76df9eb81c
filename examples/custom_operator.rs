//! A user-defined operator: flags bids far above their auction's running average price.
//!
//! It keeps per-auction state (count and sum of prices) and appends a boolean column
//! `outlier` to every batch. Only `on_batch` is written; watermarks and end of input use
//! the trait's defaults. Run with `cargo run --example custom_operator`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::util::pretty::print_batches;
use runnel::connectors::channel::CollectSink;
use runnel::connectors::nexmark::{NexmarkOptions, NexmarkSource, NexmarkTable};
use runnel::runtime::{
    Dataflow, JobConfig, Operator, OperatorContext, OperatorFactory, Output, Result, spawn,
};

/// Marks bids whose price is more than `factor` times the average of the auction's
/// earlier bids.
struct PriceOutliers {
    factor: f64,
    /// auction -> (bids, sum of prices)
    seen: HashMap<i64, (u64, i64)>,
    schema: Arc<Schema>,
}

impl Operator for PriceOutliers {
    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let schema = batch.schema();
        let auctions = batch
            .column(schema.index_of("auction")?)
            .as_primitive::<Int64Type>();
        let prices = batch
            .column(schema.index_of("price")?)
            .as_primitive::<Int64Type>();
        let flags: BooleanArray = auctions
            .values()
            .iter()
            .zip(prices.values())
            .map(|(&auction, &price)| {
                let (n, sum) = self.seen.entry(auction).or_default();
                let outlier = *n > 0 && price as f64 > self.factor * (*sum as f64 / *n as f64);
                *n += 1;
                *sum += price;
                Some(outlier)
            })
            .collect();
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(flags));
        out.emit(RecordBatch::try_new(self.schema.clone(), columns)?);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let bids = NexmarkSource::new(
        NexmarkTable::Bid,
        NexmarkOptions {
            partitions: 2,
            max_events: Some(20_000),
            ..NexmarkOptions::default()
        },
    )?;
    let watermark = bids.watermark_strategy();
    let results = CollectSink::new();

    let flow = Dataflow::new("outliers").with_parallelism(2);
    let bids = flow
        .source("bids", Arc::new(bids), watermark)?
        .key_by(&["auction"])?;
    let mut fields = bids.schema().fields().to_vec();
    fields.push(Arc::new(Field::new("outlier", DataType::Boolean, true)));
    let schema = Arc::new(Schema::new(fields));
    let make_schema = schema.clone();
    let factory: OperatorFactory = Arc::new(move |_ctx: &OperatorContext| {
        Ok(Box::new(PriceOutliers {
            factor: 3.0,
            seen: HashMap::new(),
            schema: make_schema.clone(),
        }) as Box<dyn Operator>)
    });
    bids.operator("price_outliers", schema, factory)?
        .sink("outliers", Arc::new(results.clone()))?;
    spawn(flow.build()?, JobConfig::default())
        .await?
        .join()
        .await?;

    let batches = results.batches();
    let flagged: usize = batches
        .iter()
        .map(|b| b.column(b.num_columns() - 1).as_boolean().true_count())
        .sum();
    println!(
        "{flagged} of {} bids are price outliers; the first rows:",
        results.num_rows()
    );
    print_batches(&batches[..1.min(batches.len())])?;
    Ok(())
}
