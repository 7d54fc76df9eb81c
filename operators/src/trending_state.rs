//! Per-window values of the trending operator, and its checkpoint form.
//!
//! A window's values are a hash table from key to value. Keys are stored once, in the
//! row format, in one growing buffer (`arrow::row::Rows`); the `hashbrown::HashTable`
//! holds only indices into it, so a window costs a few bytes per key beyond the key's own
//! bytes, with no allocation per key.
//!
//! The checkpoint follows the crate's state convention ([`crate::state`]): all state is
//! keyed, in one schema for both kinds of rows, so a subtask's state is one Arrow IPC
//! file and every row can be handed to the subtask that owns its key after a rescale:
//!
//! | column | type | pending input row | window value |
//! |---|---|---|---|
//! | `_key_group` | UInt32 | key group of the key | key group of the key |
//! | the input columns | input types, nullable | the row | the key columns, others null |
//! | `_window_end` | Int64 | null | the window end |
//! | `_window_value` | Int64 | null | the key's value in that window |
//!
//! The watermark is in the schema metadata; restored from several old subtasks it is
//! their minimum (see [`crate::state::restored_watermark`]).

use std::hash::BuildHasher;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, new_null_array};
use arrow::compute::{concat_batches, filter_record_batch, is_not_null, not};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use arrow::row::{Row, RowConverter, Rows};
use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;
use runnel_runtime::{Error, Millis, Result, WATERMARK_START};

use super::TrendingOperator;
use crate::state::{
    empty_state, key_group_field, key_groups, optional_watermark, restored_watermark, state_schema,
};

/// Name of the window-end column of checkpointed window values.
const WINDOW_END: &str = "_window_end";
/// Name of the value column of checkpointed window values.
const WINDOW_VALUE: &str = "_window_value";

/// The value of every key in one window.
pub(super) struct WindowValues {
    keys: Rows,
    values: Vec<i64>,
    index: HashTable<usize>,
    hasher: DefaultHashBuilder,
}

impl WindowValues {
    pub fn new(converter: &RowConverter) -> Self {
        WindowValues {
            keys: converter.empty_rows(0, 0),
            values: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Adds `value` to the key's value (saturating: values are counts, far from i64's
    /// limits).
    pub fn add(&mut self, key: Row<'_>, value: i64) {
        let WindowValues {
            keys,
            values,
            index,
            hasher,
        } = self;
        let hash = hasher.hash_one(key.as_ref());
        match index.find(hash, |&i| keys.row(i) == key) {
            Some(&i) => values[i] = values[i].saturating_add(value),
            None => {
                keys.push(key);
                values.push(value);
                index.insert_unique(hash, values.len() - 1, |&i| {
                    hasher.hash_one(keys.row(i).as_ref())
                });
            }
        }
    }

    /// The key's value, if it has one in this window.
    pub fn get(&self, key: Row<'_>) -> Option<i64> {
        let hash = self.hasher.hash_one(key.as_ref());
        self.index
            .find(hash, |&i| self.keys.row(i) == key)
            .map(|&i| self.values[i])
    }
}

/// The kind of trending state; the period is part of it.
pub(super) fn state_kind(period: Millis) -> String {
    format!("runnel.trending/1 period={period}")
}

/// The checkpoint schema (without its metadata) for rows of `input`.
pub(super) fn state_fields(input: &Schema) -> Schema {
    let mut fields = vec![key_group_field()];
    fields.extend(
        input
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true)),
    );
    fields.push(Field::new(WINDOW_END, DataType::Int64, true));
    fields.push(Field::new(WINDOW_VALUE, DataType::Int64, true));
    Schema::new(fields)
}

impl TrendingOperator {
    /// Pending rows and window values as state batches (at least one, for the watermark).
    pub(super) fn snapshot_state(&self) -> Result<Vec<RecordBatch>> {
        let watermark = self.watermark.unwrap_or(WATERMARK_START);
        let fields = self.checkpoint.fields().iter().map(|f| f.as_ref().clone());
        let schema = state_schema(&self.kind, fields.collect(), watermark);
        let mut batches = Vec::new();
        let pending: Vec<&RecordBatch> = self.pending.values().flatten().collect();
        if !pending.is_empty() {
            let rows = concat_batches(&self.input, pending)?;
            let n = rows.num_rows();
            let keys: Vec<ArrayRef> = self.keys.iter().map(|&k| rows.column(k).clone()).collect();
            let mut columns: Vec<ArrayRef> = vec![Arc::new(key_groups(&keys, n, self.key_groups)?)];
            columns.extend(rows.columns().iter().cloned());
            columns.push(new_null_array(&DataType::Int64, n));
            columns.push(new_null_array(&DataType::Int64, n));
            batches.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        for (&end, window) in &self.windows {
            let n = window.values.len();
            let keys = self.converter.convert_rows(window.keys.iter())?;
            let mut columns: Vec<ArrayRef> = vec![Arc::new(key_groups(&keys, n, self.key_groups)?)];
            for (i, field) in self.input.fields().iter().enumerate() {
                columns.push(match self.keys.iter().position(|&k| k == i) {
                    Some(j) => keys[j].clone(),
                    None => new_null_array(field.data_type(), n),
                });
            }
            columns.push(Arc::new(Int64Array::from(vec![end; n])));
            columns.push(Arc::new(Int64Array::from(window.values.clone())));
            batches.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        if batches.is_empty() {
            batches.push(empty_state(&schema));
        }
        Ok(batches)
    }

    /// Restores the state of any number of old subtasks into this fresh operator.
    pub(super) fn restore_state(&mut self, state: &[RecordBatch]) -> Result<()> {
        if self.watermark.is_some() || !self.pending.is_empty() || !self.windows.is_empty() {
            return Err(Error::Internal(
                "trending state restored into an operator that already ran".into(),
            ));
        }
        let Some(watermark) = restored_watermark(state, &self.kind, &self.checkpoint)? else {
            return Ok(());
        };
        let inputs = self.input.fields().len();
        for batch in state.iter().filter(|b| b.num_rows() > 0) {
            let is_value = is_not_null(batch.column(2 + inputs))?;
            if is_value.true_count() > 0 {
                self.restore_values(&filter_record_batch(batch, &is_value)?)?;
            }
            if is_value.false_count() > 0 {
                let rows = filter_record_batch(batch, &not(&is_value)?)?;
                let columns = rows.columns()[1..1 + inputs].to_vec();
                let rows = RecordBatch::try_new(self.input.clone(), columns)?;
                // No watermark yet: nothing restored is late.
                self.insert(&rows, |_| {})?;
            }
        }
        self.watermark = optional_watermark(Some(watermark));
        Ok(())
    }

    /// Adds checkpointed window values (rows with a `_window_value`).
    fn restore_values(&mut self, rows: &RecordBatch) -> Result<()> {
        let inputs = self.input.fields().len();
        let keys: Vec<ArrayRef> = self
            .keys
            .iter()
            .map(|&k| rows.column(1 + k).clone())
            .collect();
        let keys = self.converter.convert_columns(&keys)?;
        let ends = rows.column(1 + inputs).as_primitive::<Int64Type>();
        let values = rows.column(2 + inputs).as_primitive::<Int64Type>();
        if ends.null_count() > 0 {
            return Err(Error::Internal(
                "trending window value without an end".into(),
            ));
        }
        for (i, (&end, &value)) in ends.values().iter().zip(values.values()).enumerate() {
            self.windows
                .entry(end)
                .or_insert_with(|| WindowValues::new(&self.converter))
                .add(keys.row(i), value);
        }
        Ok(())
    }
}
