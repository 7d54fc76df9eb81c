//! What a window operator knows about its input and output, resolved once at plan time:
//! column indices, aggregates, the output schema; plus the per-batch helpers shared by the
//! pane and session operators (event times, key columns, cast aggregate inputs, splitting
//! off late rows, building output batches).

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, TimestampMillisecondArray};
use arrow::compute::{filter_record_batch, not};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use runnel_runtime::time::{event_time_millis, is_event_time_type};
use runnel_runtime::{Error, Millis, Output, Result, keys::is_hashable};

use super::WindowAggregateSpec;
use super::aggregate::ResolvedAggregate;

/// Event times beyond ±2^61 ms (73 million years) are refused, so that window arithmetic
/// (`start + size`, pane starts, gaps) can never overflow an i64.
pub(crate) const MAX_EVENT_TIME: Millis = 1 << 61;

/// Window sizes, slides and gaps are at most 2^50 ms (35 000 years).
pub(crate) const MAX_WINDOW: Millis = 1 << 50;

/// Output batches are cut after the window that takes them past this many rows.
pub(crate) const OUTPUT_BATCH_ROWS: usize = 8192;

/// Name of the output column with the (inclusive) window start.
pub const WINDOW_START: &str = "window_start";
/// Name of the output column with the (exclusive) window end.
pub const WINDOW_END: &str = "window_end";

/// A window aggregate resolved against its input schema.
#[derive(Debug)]
pub(crate) struct WindowPlan {
    input: SchemaRef,
    time: usize,
    keys: Vec<usize>,
    aggregates: Vec<ResolvedAggregate>,
    output: SchemaRef,
}

impl WindowPlan {
    /// Checks every column reference and type of `spec` against `input`.
    pub fn new(spec: &WindowAggregateSpec, input: &SchemaRef) -> Result<Self> {
        let column = |name: &str, role: &str| {
            input.index_of(name).map_err(|_| {
                Error::Plan(format!(
                    "unknown {role} column `{name}`; the input has {:?}",
                    input.fields().iter().map(|f| f.name()).collect::<Vec<_>>()
                ))
            })
        };
        let time = column(&spec.time_column, "event-time")?;
        let time_type = input.field(time).data_type();
        if !is_event_time_type(time_type) {
            return Err(Error::Plan(format!(
                "event-time column `{}` must be a timestamp or BIGINT milliseconds, not {time_type}",
                spec.time_column
            )));
        }
        let mut fields: Vec<Field> = Vec::new();
        let mut keys = Vec::new();
        for name in &spec.key_columns {
            let index = column(name, "key")?;
            let field = input.field(index);
            if !is_hashable(field.data_type()) {
                return Err(Error::Plan(format!(
                    "cannot group by `{name}`: type {} is not a key type",
                    field.data_type()
                )));
            }
            keys.push(index);
            fields.push(field.clone());
        }
        let timestamp = DataType::Timestamp(TimeUnit::Millisecond, None);
        fields.push(Field::new(WINDOW_START, timestamp.clone(), false));
        fields.push(Field::new(WINDOW_END, timestamp, false));
        let aggregates = spec
            .aggregates
            .iter()
            .map(|a| ResolvedAggregate::resolve(a, input))
            .collect::<Result<Vec<_>>>()?;
        fields.extend(aggregates.iter().map(|a| a.field.clone()));
        for (i, field) in fields.iter().enumerate() {
            if fields[..i].iter().any(|f| f.name() == field.name()) {
                return Err(Error::Plan(format!(
                    "output column `{}` appears twice; give the aggregate another alias",
                    field.name()
                )));
            }
        }
        Ok(WindowPlan {
            input: input.clone(),
            time,
            keys,
            aggregates,
            output: Arc::new(Schema::new(fields)),
        })
    }

    pub fn input_schema(&self) -> &SchemaRef {
        &self.input
    }

    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    pub fn key_indices(&self) -> &[usize] {
        &self.keys
    }

    pub fn aggregates(&self) -> &[ResolvedAggregate] {
        &self.aggregates
    }

    /// Refuses a batch whose columns do not have the planned types (the typed loops and
    /// the key converter rely on them).
    pub fn check_batch(&self, batch: &RecordBatch) -> Result<()> {
        let used = std::iter::once(self.time)
            .chain(self.keys.iter().copied())
            .chain(self.aggregates.iter().filter_map(|a| a.column));
        for index in used {
            let expected = self.input.field(index);
            match batch.columns().get(index) {
                Some(c) if c.data_type() == expected.data_type() => {}
                found => {
                    return Err(Error::Data(format!(
                        "batch does not match the window's input schema: column {index} (`{}`) should be {}, found {:?}",
                        expected.name(),
                        expected.data_type(),
                        found.map(|c| c.data_type())
                    )));
                }
            }
        }
        Ok(())
    }

    /// Event times of `batch` in milliseconds, with their minimum; refuses nulls and times
    /// outside ±[`MAX_EVENT_TIME`].
    pub fn event_times(&self, batch: &RecordBatch) -> Result<(TimestampMillisecondArray, Millis)> {
        let name = self.input.field(self.time).name();
        let times = event_time_millis(batch.column(self.time), name)?;
        let (mut lo, mut hi) = (Millis::MAX, Millis::MIN);
        for &t in times.values().iter() {
            lo = lo.min(t);
            hi = hi.max(t);
        }
        if !times.is_empty() && (lo < -MAX_EVENT_TIME || hi > MAX_EVENT_TIME) {
            let bad = if lo < -MAX_EVENT_TIME { lo } else { hi };
            return Err(Error::Data(format!(
                "event time {bad} ms in column `{name}` is out of range (±2^61 ms)"
            )));
        }
        Ok((times, lo))
    }

    pub fn key_columns(&self, batch: &RecordBatch) -> Vec<ArrayRef> {
        self.keys.iter().map(|&i| batch.column(i).clone()).collect()
    }

    /// The (cast) input column of every aggregate.
    pub fn inputs(&self, batch: &RecordBatch) -> Result<Vec<Option<ArrayRef>>> {
        self.aggregates.iter().map(|a| a.input(batch)).collect()
    }

    /// Builds an output batch from key columns, window bounds and accumulator results.
    pub fn output_batch(
        &self,
        keys: Vec<ArrayRef>,
        starts: Vec<Millis>,
        ends: Vec<Millis>,
        results: Vec<ArrayRef>,
    ) -> Result<RecordBatch> {
        let mut columns = keys;
        columns.push(Arc::new(TimestampMillisecondArray::from(starts)));
        columns.push(Arc::new(TimestampMillisecondArray::from(ends)));
        for (aggregate, result) in self.aggregates.iter().zip(results) {
            columns.push(aggregate.output(result)?);
        }
        Ok(RecordBatch::try_new(self.output.clone(), columns)?)
    }
}

/// Sends the rows of `batch` flagged in `late` to the late output and returns the others.
pub(crate) fn split_late(
    batch: &RecordBatch,
    late: &BooleanArray,
    out: &mut Output,
) -> Result<RecordBatch> {
    out.emit_late(filter_record_batch(batch, late)?);
    Ok(filter_record_batch(batch, &not(late)?)?)
}
