//! A user-defined operator with state: flags bids far above their auction's running
//! average price.
//!
//! It keeps per-auction state (count and sum of prices) and appends a boolean column
//! `outlier` to every batch. Because it keeps state, it also writes that state into
//! checkpoints ([`Operator::snapshot`]) and reads it back ([`Operator::restore`]): rows
//! of Arrow, one per auction, each tagged with its key group (`_key_group`) so that the
//! runtime can hand every subtask exactly the auctions it owns after a restart, at any
//! parallelism. Without them a restarted job would forget every average and flag
//! differently. Watermarks and end of input keep the trait's defaults.
//!
//! Run with `cargo run --example custom_operator`; `cargo test --example custom_operator`
//! stops the job after a checkpoint, resumes it at another parallelism, and checks that
//! every flag equals an uninterrupted run's.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, UInt64Type};
use arrow::util::pretty::print_batches;
use runnel::connectors::channel::CollectSink;
use runnel::connectors::nexmark::{NexmarkOptions, NexmarkSource, NexmarkTable};
use runnel::operators::state::{key_group_field, key_groups};
use runnel::runtime::{
    Dataflow, Epoch, Error, JobConfig, Operator, OperatorContext, OperatorFactory, Output, Result,
    spawn,
};

/// Marks bids whose price is more than `factor` times the average of the auction's
/// earlier bids.
struct PriceOutliers {
    factor: f64,
    /// auction -> (bids, sum of prices)
    seen: HashMap<i64, (u64, i64)>,
    /// The output schema: the input's columns and `outlier`.
    schema: SchemaRef,
    /// Key groups of the job, to tag state rows the way the hash edge routes bids.
    max_key_groups: u32,
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

    /// One row per auction: `_key_group`, `auction`, `bids`, `sum`.
    fn snapshot(&mut self, _epoch: Epoch) -> Result<Vec<RecordBatch>> {
        let auctions: Int64Array = self.seen.keys().copied().collect();
        let bids: UInt64Array = self.seen.values().map(|(n, _)| *n).collect();
        let sums: Int64Array = self.seen.values().map(|(_, sum)| *sum).collect();
        let auctions: ArrayRef = Arc::new(auctions);
        let groups = key_groups(
            std::slice::from_ref(&auctions),
            auctions.len(),
            self.max_key_groups,
        )?;
        let columns: Vec<ArrayRef> =
            vec![Arc::new(groups), auctions, Arc::new(bids), Arc::new(sums)];
        Ok(vec![RecordBatch::try_new(state_schema(), columns)?])
    }

    /// The rows of the auctions this subtask owns now (the runtime filtered them by key
    /// group), possibly written by several old subtasks.
    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<()> {
        for batch in state {
            if batch.schema().fields() != state_schema().fields() {
                return Err(Error::Plan("state of another operator".into()));
            }
            let auctions = batch.column(1).as_primitive::<Int64Type>();
            let bids = batch.column(2).as_primitive::<UInt64Type>();
            let sums = batch.column(3).as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                let entry = (bids.value(row), sums.value(row));
                self.seen.insert(auctions.value(row), entry);
            }
        }
        Ok(())
    }
}

fn state_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        key_group_field(),
        Field::new("auction", DataType::Int64, false),
        Field::new("bids", DataType::UInt64, false),
        Field::new("sum", DataType::Int64, false),
    ]))
}

/// Bids keyed by auction through the outlier operator into `results`.
fn outliers_flow(
    bids: NexmarkSource,
    parallelism: usize,
    results: &CollectSink,
) -> Result<Dataflow> {
    let watermark = bids.watermark_strategy();
    let flow = Dataflow::new("outliers").with_parallelism(parallelism);
    let bids = flow
        .source("bids", Arc::new(bids), watermark)?
        .key_by(&["auction"])?;
    let mut fields = bids.schema().fields().to_vec();
    fields.push(Arc::new(Field::new("outlier", DataType::Boolean, true)));
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let output = schema.clone();
    let factory: OperatorFactory = Arc::new(move |ctx: &OperatorContext| {
        Ok(Box::new(PriceOutliers {
            factor: 3.0,
            seen: HashMap::new(),
            schema: output.clone(),
            max_key_groups: ctx.max_key_groups,
        }) as Box<dyn Operator>)
    });
    bids.operator("price_outliers", schema, factory)?
        .sink("outliers", Arc::new(results.clone()))?;
    Ok(flow)
}

/// Bids of one partition, so every auction's bids arrive in one order, run after run.
fn bids(max_events: u64) -> Result<NexmarkSource> {
    let options = NexmarkOptions {
        partitions: 1,
        max_events: Some(max_events),
        ..NexmarkOptions::default()
    };
    NexmarkSource::new(NexmarkTable::Bid, options)
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let results = CollectSink::new();
    let flow = outliers_flow(bids(20_000)?, 2, &results)?;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use object_store::memory::InMemory;
    use object_store::path::Path;
    use runnel::runtime::CheckpointConfig;
    use runnel::runtime::checkpoint::ObjectStoreCheckpoints;

    use super::*;

    /// (auction, price, outlier) of every result row, sorted.
    fn flags(batches: &[RecordBatch]) -> Vec<(i64, i64, bool)> {
        let mut rows = Vec::new();
        for batch in batches {
            let schema = batch.schema();
            let column = |name: &str| batch.column(schema.index_of(name).unwrap()).clone();
            let (auction, price) = (column("auction"), column("price"));
            let outlier = column("outlier");
            let (auction, price) = (
                auction.as_primitive::<Int64Type>(),
                price.as_primitive::<Int64Type>(),
            );
            for row in 0..batch.num_rows() {
                rows.push((
                    auction.value(row),
                    price.value(row),
                    outlier.as_boolean().value(row),
                ));
            }
        }
        rows.sort_unstable();
        rows
    }

    #[tokio::test]
    async fn flags_survive_a_stop_and_a_restore_at_another_parallelism() {
        let events = 40_000;
        let uninterrupted = CollectSink::new();
        let flow = outliers_flow(bids(events).unwrap(), 2, &uninterrupted).unwrap();
        spawn(flow.build().unwrap(), JobConfig::default())
            .await
            .unwrap()
            .join()
            .await
            .unwrap();
        let expected = flags(&uninterrupted.batches());
        assert!(
            expected.iter().any(|(.., outlier)| *outlier),
            "some bids are outliers"
        );

        let store = Arc::new(InMemory::new());
        let config = || JobConfig {
            checkpoints: Some(CheckpointConfig::new(
                Arc::new(
                    ObjectStoreCheckpoints::new(store.clone(), Path::from("ck"), "outliers")
                        .unwrap(),
                ),
                Duration::from_millis(20),
            )),
            ..JobConfig::default()
        };
        // The first run reads slowly and is stopped part-way (a final checkpoint).
        let results = CollectSink::new();
        let slow = bids(events).unwrap().with_rate_limit(40_000);
        let job = spawn(
            outliers_flow(slow, 2, &results).unwrap().build().unwrap(),
            config(),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        job.stop();
        job.join().await.unwrap();
        let first = results.num_rows() as u64;
        assert!(
            first > 0 && first < events,
            "stopped part-way: {first} rows"
        );
        // The second run restores the auctions' averages into one subtask and resumes.
        let flow = outliers_flow(bids(events).unwrap(), 1, &results).unwrap();
        spawn(flow.build().unwrap(), config())
            .await
            .unwrap()
            .join()
            .await
            .unwrap();
        assert_eq!(flags(&results.batches()), expected);
    }
}
