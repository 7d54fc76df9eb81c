//! Trending score: how fast a key's windowed value grows from one window to the next.
//!
//! Input rows are a windowed aggregate (`key..., window_end, value`, e.g. bids per auction
//! per window), hash-partitioned by the key. Each row is emitted with two columns added:
//!
//! - `previous`: the key's value in the window ending `period` earlier (`e - period`),
//!   0 if the key had no row there;
//! - `trend = (value - previous) / (previous + 1)`: growth relative to the previous
//!   value, smoothed by +1 so that a key appearing from nothing gets a finite score equal
//!   to its value. A key going 0 -> 10 scores 10, one going 100 -> 110 scores about 0.1,
//!   one going 10 -> 0 scores about -0.9: bursts of new activity outrank large but steady
//!   keys, which is what "trending" means (a top-K by `trend` ranks them).
//!
//! Rows are held until the watermark reaches their window end and are then emitted,
//! window by window. Upstream windows emit window `e` just before the watermark `e`, so
//! this adds no latency in event time, and it makes the result independent of arrival
//! order: once the watermark has passed `e`, the values of every window `<= e` are known,
//! whichever subtask or batch they came in. Per key, the values of recent window ends are
//! kept (keys encoded with `arrow::row`, indexed by a `hashbrown::HashTable`) until the
//! watermark `W` makes them useless as a "previous": a window ending `<= W - period`
//! precedes every window still to come by more than `period`.
//!
//! If a key has several rows in one window, its value there is their sum (partial
//! counts add up); each row is still emitted once, with its own value.
//!
//! Checkpoints hold the pending rows and the recent window values, every row tagged with
//! the key group of its key, and the watermark (see `trending_state`), so a snapshot
//! restores at any parallelism.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use arrow::compute::{CastOptions, cast_with_options, concat_batches};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use runnel_runtime::keys::DEFAULT_MAX_KEY_GROUPS;
use runnel_runtime::time::{event_time_millis, is_event_time_type};
use runnel_runtime::{Epoch, Error, Millis, Operator, Output, Result};

use crate::expr::{check_unique_names, column_index};
use crate::state::check_max_key_groups;
use crate::topk::split_by_time;

#[path = "trending_state.rs"]
mod state;

use state::WindowValues;

/// Adds `previous` and `trend` columns to a windowed aggregate; see the module docs.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
/// use runnel_operators::trending::TrendingSpec;
///
/// let input = Arc::new(Schema::new(vec![
///     Field::new("auction", DataType::Int64, false),
///     Field::new("window_end", DataType::Timestamp(TimeUnit::Millisecond, None), false),
///     Field::new("bids", DataType::Int64, false),
/// ]));
/// let spec = TrendingSpec::new(["auction"], "window_end", "bids", Duration::from_secs(10));
/// let output = spec.output_schema(&input).unwrap();
/// assert_eq!(output.field(3).name(), "previous");
/// assert_eq!(output.field(4).name(), "trend");
/// ```
#[derive(Debug, Clone)]
pub struct TrendingSpec {
    /// Columns identifying a key (the input is hash-partitioned by them).
    pub key_columns: Vec<String>,
    /// End of the row's window: a timestamp or BIGINT milliseconds, never null.
    pub window_end_column: String,
    /// The windowed value (e.g. a count): any integer type.
    pub value_column: String,
    /// Distance between a window and its "previous" window, usually the window size.
    pub period: Duration,
    /// Name of the added `Int64` column holding the previous value.
    pub previous_column: String,
    /// Name of the added `Float64` column holding the score.
    pub score_column: String,
}

impl TrendingSpec {
    /// A spec with the default output names `previous` and `trend`.
    pub fn new<K: Into<String>>(
        key_columns: impl IntoIterator<Item = K>,
        window_end_column: impl Into<String>,
        value_column: impl Into<String>,
        period: Duration,
    ) -> Self {
        TrendingSpec {
            key_columns: key_columns.into_iter().map(Into::into).collect(),
            window_end_column: window_end_column.into(),
            value_column: value_column.into(),
            period,
            previous_column: "previous".into(),
            score_column: "trend".into(),
        }
    }

    /// The input schema plus `previous` (Int64) and the score (Float64, null where the
    /// value is null).
    pub fn output_schema(&self, input: &Schema) -> Result<SchemaRef> {
        let value = input.field(column_index(input, &self.value_column, "trending value")?);
        let mut fields: Vec<Arc<Field>> = input.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(
            &self.previous_column,
            DataType::Int64,
            false,
        )));
        fields.push(Arc::new(Field::new(
            &self.score_column,
            DataType::Float64,
            value.is_nullable(),
        )));
        check_unique_names(fields.iter().map(|f| f.name().as_str()))?;
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            input.metadata().clone(),
        )))
    }

    /// Creates one trending subtask for rows of schema `input`, in a job of
    /// [`DEFAULT_MAX_KEY_GROUPS`] key groups; see [`TrendingSpec::create_with`].
    pub fn create(&self, input: &SchemaRef) -> Result<Box<dyn Operator>> {
        self.create_with(input, DEFAULT_MAX_KEY_GROUPS)
    }

    /// Creates one trending subtask for rows of schema `input` in a job of
    /// `max_key_groups` key groups (`OperatorContext::max_key_groups`): its snapshots tag
    /// every row of state with the key group of its key, so that they can be restored at
    /// another parallelism.
    pub fn create_with(&self, input: &SchemaRef, max_key_groups: u32) -> Result<Box<dyn Operator>> {
        let operator = TrendingOperator::new(self, input, max_key_groups)?;
        Ok(Box::new(operator))
    }
}

/// A trending subtask.
struct TrendingOperator {
    input: SchemaRef,
    output: SchemaRef,
    keys: Vec<usize>,
    converter: RowConverter,
    time: usize,
    time_name: String,
    value: usize,
    period: Millis,
    /// Rows waiting for the watermark to reach their window end.
    pending: BTreeMap<Millis, Vec<RecordBatch>>,
    /// Value per key of each recent window end.
    windows: BTreeMap<Millis, WindowValues>,
    watermark: Option<Millis>,
    /// Number of key groups of the job, for the key group of each row of state.
    key_groups: u32,
    /// Kind and schema (without metadata) of the checkpoint state.
    kind: String,
    checkpoint: Schema,
}

impl TrendingOperator {
    fn new(spec: &TrendingSpec, input: &SchemaRef, max_key_groups: u32) -> Result<Self> {
        let output = spec.output_schema(input)?;
        let time = column_index(input, &spec.window_end_column, "trending window end")?;
        let time_type = input.field(time).data_type();
        if !is_event_time_type(time_type) {
            return Err(Error::Plan(format!(
                "trending window end `{}` must be a timestamp or BIGINT milliseconds, not {time_type}",
                spec.window_end_column
            )));
        }
        let value = column_index(input, &spec.value_column, "trending value")?;
        let value_type = input.field(value).data_type();
        if !value_type.is_integer() {
            return Err(Error::Plan(format!(
                "trending value `{}` must be an integer, not {value_type}",
                spec.value_column
            )));
        }
        let period = Millis::try_from(spec.period.as_millis())
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                Error::Plan(format!("trending period {:?} must be >= 1ms", spec.period))
            })?;
        let keys = spec
            .key_columns
            .iter()
            .map(|c| column_index(input, c, "trending key"))
            .collect::<Result<Vec<_>>>()?;
        if keys.is_empty() {
            return Err(Error::Plan(
                "trending needs at least one key column (project a constant for a global trend)"
                    .into(),
            ));
        }
        let fields = keys
            .iter()
            .map(|&i| SortField::new(input.field(i).data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields).map_err(|e| {
            Error::Plan(format!("trending key columns {:?}: {e}", spec.key_columns))
        })?;
        Ok(TrendingOperator {
            input: Arc::clone(input),
            output,
            keys,
            converter,
            time,
            time_name: spec.window_end_column.clone(),
            value,
            period,
            pending: BTreeMap::new(),
            windows: BTreeMap::new(),
            watermark: None,
            key_groups: check_max_key_groups(max_key_groups)?,
            kind: state::state_kind(period),
            checkpoint: state::state_fields(input),
        })
    }

    fn insert(&mut self, batch: &RecordBatch, mut late: impl FnMut(RecordBatch)) -> Result<()> {
        let ends = event_time_millis(batch.column(self.time), &self.time_name)?;
        for (end, rows) in split_by_time(batch, ends.values())? {
            if self.watermark.is_some_and(|w| end <= w) {
                late(rows);
            } else {
                self.pending.entry(end).or_default().push(rows);
            }
        }
        Ok(())
    }

    fn key_rows(&self, batch: &RecordBatch) -> Result<arrow::row::Rows> {
        let columns: Vec<ArrayRef> = self.keys.iter().map(|&i| batch.column(i).clone()).collect();
        Ok(self.converter.convert_columns(&columns)?)
    }

    /// Records the values of window `end`, then emits its rows with previous and trend.
    fn close_window(
        &mut self,
        end: Millis,
        batches: Vec<RecordBatch>,
        out: &mut Output,
    ) -> Result<()> {
        let batch = concat_batches(&self.input, &batches)?;
        let keys = self.key_rows(&batch)?;
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        let values = cast_with_options(batch.column(self.value), &DataType::Int64, &options)
            .map_err(|e| Error::Data(format!("trending value does not fit BIGINT: {e}")))?;
        let values = values.as_primitive::<Int64Type>();
        let window = self
            .windows
            .entry(end)
            .or_insert_with(|| WindowValues::new(&self.converter));
        for (i, value) in values.iter().enumerate() {
            if let Some(value) = value {
                window.add(keys.row(i), value);
            }
        }
        let previous_window = end
            .checked_sub(self.period)
            .and_then(|p| self.windows.get(&p));
        let previous: Vec<i64> = match previous_window {
            Some(window) => (0..batch.num_rows())
                .map(|i| window.get(keys.row(i)).unwrap_or(0))
                .collect(),
            None => vec![0; batch.num_rows()],
        };
        let trend: Vec<f64> = values
            .values()
            .iter()
            .zip(&previous)
            .map(|(&v, &p)| (v as f64 - p as f64) / (p as f64 + 1.0))
            .collect();
        let trend = Float64Array::new(trend.into(), values.nulls().cloned());
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(Int64Array::from(previous)));
        columns.push(Arc::new(trend));
        out.emit(RecordBatch::try_new(Arc::clone(&self.output), columns)?);
        Ok(())
    }
}

impl Operator for TrendingOperator {
    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        self.insert(&batch, |rows| out.emit_late(rows))
    }

    fn on_watermark(&mut self, watermark: Millis, out: &mut Output) -> Result<()> {
        let watermark = self.watermark.map_or(watermark, |w| w.max(watermark));
        self.watermark = Some(watermark);
        let later = match watermark.checked_add(1) {
            Some(next) => self.pending.split_off(&next),
            None => BTreeMap::new(),
        };
        let ready = std::mem::replace(&mut self.pending, later);
        for (end, batches) in ready {
            self.close_window(end, batches, out)?;
        }
        // Windows at or before this cutoff can no longer be anyone's previous window.
        let cutoff = watermark.saturating_sub(self.period);
        self.windows = self.windows.split_off(&cutoff.saturating_add(1));
        Ok(())
    }

    fn snapshot(&mut self, _epoch: Epoch) -> Result<Vec<RecordBatch>> {
        self.snapshot_state()
    }

    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<()> {
        self.restore_state(&state)
    }
}

#[cfg(test)]
#[path = "trending_tests.rs"]
mod tests;
