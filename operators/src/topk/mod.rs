//! Top-K per window, in two phases (Storm's rolling count -> intermediate rankings ->
//! total rankings; Nexmark q5 "hot items").
//!
//! The operator buffers its input, as Arrow batches, per value of a time column (a window
//! end). A group with time `t` is complete once the watermark reaches `t`: the window
//! operator upstream emits the rows of window `[s, t)` before the watermark `t`, and no
//! row with that time follows. On a watermark `W` every group with `t <= W` is ranked
//! (see [`rank`]), its top k rows per partition are emitted ordered by time, partition and
//! rank, and its buffer is freed. Rows that arrive for a time the watermark has passed
//! go to the late output.
//!
//! The same operator is both phases. As a *partial* top-K it runs in every subtask of a
//! parallel stage (no rank column) and keeps only what can still be in a global top k;
//! the *global* merge runs with parallelism 1 and appends the rank. Because ties are
//! broken by every column (see [`rank`]), partial-then-global equals a single top-K over
//! all rows however the rows were split. Memory stays bounded the same way: when a
//! group's buffer outgrows `max(4k, 8192)` rows it is pruned to its top k per partition,
//! and the next prune waits until the buffer has doubled again, so pruning costs
//! amortized O(log n) per row.
//!
//! State for checkpoints is the buffered batches themselves, in the input schema.

mod groups;
mod rank;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::UInt64Array;
use arrow::compute::{SortOptions, concat_batches, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use runnel_runtime::time::{event_time_millis, is_event_time_type};
use runnel_runtime::{Epoch, Error, Millis, Operator, Output, Result};

use crate::expr::column_index;
pub(crate) use groups::split_by_time;
use rank::Ranker;

/// One `ORDER BY` key of a top-K. Nulls sort as in SQL's defaults (DataFusion,
/// PostgreSQL): last when ascending, first when descending.
#[derive(Debug, Clone)]
pub struct SortKey {
    /// Column to order by.
    pub column: String,
    /// Largest first.
    pub descending: bool,
}

impl SortKey {
    /// Ascending order of `column`.
    pub fn asc(column: impl Into<String>) -> Self {
        SortKey {
            column: column.into(),
            descending: false,
        }
    }

    /// Descending order of `column`.
    pub fn desc(column: impl Into<String>) -> Self {
        SortKey {
            column: column.into(),
            descending: true,
        }
    }
}

/// Top-K rows per time value and partition.
///
/// ```
/// use std::sync::Arc;
/// use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
/// use runnel_operators::topk::{SortKey, TopKSpec};
///
/// let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
/// let input = Arc::new(Schema::new(vec![
///     Field::new("auction", DataType::Int64, false),
///     Field::new("window_start", ts.clone(), false),
///     Field::new("window_end", ts, false),
///     Field::new("bids", DataType::Int64, false),
/// ]));
/// let hot_items = TopKSpec {
///     k: 3,
///     time_column: "window_end".into(),
///     partition_by: vec!["window_start".into(), "window_end".into()],
///     order_by: vec![SortKey::desc("bids")],
///     rank_column: Some("rn".into()),
/// };
/// let output = hot_items.output_schema(&input).unwrap();
/// assert_eq!(output.field(4).name(), "rn");
/// ```
#[derive(Debug, Clone)]
pub struct TopKSpec {
    /// Rows kept per partition; at least 1.
    pub k: usize,
    /// Column whose value closes a group when the watermark reaches it (e.g.
    /// `window_end`): a timestamp or BIGINT milliseconds, never null.
    pub time_column: String,
    /// Rows are ranked within each distinct value of these columns (e.g.
    /// `["window_start", "window_end"]`); empty ranks each time value as a whole.
    pub partition_by: Vec<String>,
    /// Ranking order, most significant key first.
    pub order_by: Vec<SortKey>,
    /// Name of a `UInt64` rank column (1..=k) appended to the output, or `None` to emit
    /// the input columns only (the partial phase).
    pub rank_column: Option<String>,
}

/// What one prune threshold is at least: small buffers are not worth pruning.
const MIN_PRUNE_ROWS: usize = 8192;

impl TopKSpec {
    /// The schema of the operator's output: the input's, plus the rank column if any.
    pub fn output_schema(&self, input: &Schema) -> Result<SchemaRef> {
        self.validate(input)?;
        let mut fields: Vec<Arc<Field>> = input.fields().iter().cloned().collect();
        if let Some(rank) = &self.rank_column {
            if input.index_of(rank).is_ok() {
                return Err(Error::Plan(format!(
                    "top-K rank column `{rank}` is already an input column"
                )));
            }
            fields.push(Arc::new(Field::new(rank, DataType::UInt64, false)));
        }
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            input.metadata().clone(),
        )))
    }

    /// Creates one top-K subtask for rows of schema `input`.
    pub fn create(&self, input: &SchemaRef) -> Result<Box<dyn Operator>> {
        let threshold = MIN_PRUNE_ROWS.max(self.k.saturating_mul(4));
        Ok(Box::new(TopKOperator::new(self, input, threshold)?))
    }

    /// Checks the spec against `input`; returns the time column's index and the ranker.
    fn validate(&self, input: &Schema) -> Result<(usize, Ranker)> {
        if self.k == 0 {
            return Err(Error::Plan("top-K needs k >= 1".into()));
        }
        let time = column_index(input, &self.time_column, "top-K time column")?;
        let time_type = input.field(time).data_type();
        if !is_event_time_type(time_type) {
            return Err(Error::Plan(format!(
                "top-K time column `{}` must be a timestamp or BIGINT milliseconds, not {time_type}",
                self.time_column
            )));
        }
        let partition = self
            .partition_by
            .iter()
            .map(|c| column_index(input, c, "top-K PARTITION BY"))
            .collect::<Result<Vec<_>>>()?;
        let mut key = Vec::new();
        for sort in &self.order_by {
            let index = column_index(input, &sort.column, "top-K ORDER BY")?;
            key.push((index, SortOptions::new(sort.descending, sort.descending)));
        }
        // Ties are broken by every other column, ascending with nulls first.
        let rest: Vec<usize> = (0..input.fields().len())
            .filter(|i| *i != time && !partition.contains(i) && !key.iter().any(|(k, _)| k == i))
            .collect();
        key.extend(rest.into_iter().map(|i| (i, SortOptions::new(false, true))));
        Ok((time, Ranker::new(input, self.k, &partition, &key)?))
    }
}

/// The rows buffered for one time value.
struct Group {
    batches: Vec<RecordBatch>,
    rows: usize,
    prune_at: usize,
}

/// Ranks the rows of one group.
struct Kernel {
    input: SchemaRef,
    output: SchemaRef,
    ranker: Ranker,
}

impl Kernel {
    /// The top k rows per partition of `batches`, with the rank column if `rank`.
    fn top_k(&self, batches: &[RecordBatch], rank: bool) -> Result<RecordBatch> {
        let all = concat_batches(&self.input, batches)?;
        let selection = self.ranker.select(&all)?;
        let kept = take_record_batch(&all, &selection.indices)?;
        if !rank {
            return Ok(kept);
        }
        let mut columns = kept.columns().to_vec();
        columns.push(Arc::new(UInt64Array::from(selection.ranks)));
        Ok(RecordBatch::try_new(Arc::clone(&self.output), columns)?)
    }
}

/// A top-K subtask.
struct TopKOperator {
    kernel: Kernel,
    time: usize,
    time_name: String,
    rank: bool,
    groups: BTreeMap<Millis, Group>,
    watermark: Option<Millis>,
    prune_threshold: usize,
}

impl TopKOperator {
    fn new(spec: &TopKSpec, input: &SchemaRef, prune_threshold: usize) -> Result<Self> {
        let (time, ranker) = spec.validate(input)?;
        Ok(TopKOperator {
            kernel: Kernel {
                input: Arc::clone(input),
                output: spec.output_schema(input)?,
                ranker,
            },
            time,
            time_name: spec.time_column.clone(),
            rank: spec.rank_column.is_some(),
            groups: BTreeMap::new(),
            watermark: None,
            prune_threshold,
        })
    }

    /// Splits `batch` by time value into the groups; late rows go to `late`.
    fn insert(&mut self, batch: &RecordBatch, mut late: impl FnMut(RecordBatch)) -> Result<()> {
        let times = event_time_millis(batch.column(self.time), &self.time_name)?;
        for (time, rows) in split_by_time(batch, times.values())? {
            if self.watermark.is_some_and(|w| time <= w) {
                late(rows);
                continue;
            }
            let threshold = self.prune_threshold;
            let group = self.groups.entry(time).or_insert_with(|| Group {
                batches: Vec::new(),
                rows: 0,
                prune_at: threshold,
            });
            group.rows += rows.num_rows();
            group.batches.push(rows);
            if group.rows > group.prune_at {
                let pruned = self.kernel.top_k(&group.batches, false)?;
                group.rows = pruned.num_rows();
                group.prune_at = threshold.max(2 * group.rows);
                group.batches = vec![pruned];
            }
        }
        Ok(())
    }
}

impl Operator for TopKOperator {
    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        self.insert(&batch, |rows| out.emit_late(rows))
    }

    fn on_watermark(&mut self, watermark: Millis, out: &mut Output) -> Result<()> {
        let watermark = self.watermark.map_or(watermark, |w| w.max(watermark));
        self.watermark = Some(watermark);
        while let Some(entry) = self.groups.first_entry() {
            if *entry.key() > watermark {
                break;
            }
            let group = entry.remove();
            out.emit(self.kernel.top_k(&group.batches, self.rank)?);
        }
        Ok(())
    }

    fn snapshot(&mut self, _epoch: Epoch) -> Result<Vec<RecordBatch>> {
        Ok(self
            .groups
            .values()
            .flat_map(|g| g.batches.iter().cloned())
            .collect())
    }

    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<()> {
        let mut behind = 0;
        for batch in state {
            if batch.schema().fields() != self.kernel.input.fields() {
                return Err(Error::Internal(
                    "top-K state does not have the input schema".into(),
                ));
            }
            self.insert(&batch, |rows| behind += rows.num_rows())?;
        }
        if behind > 0 {
            return Err(Error::Internal(format!(
                "{behind} restored top-K row(s) are behind the watermark"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;
