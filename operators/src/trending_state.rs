//! Per-window values of the trending operator, and their checkpoint form.
//!
//! A window's values are a hash table from key to value. Keys are stored once, in the
//! row format, in one growing buffer (`arrow::row::Rows`); the `hashbrown::HashTable`
//! holds only indices into it, so a window costs a few bytes per key beyond the key's own
//! bytes, with no allocation per key.
//!
//! In a checkpoint a window becomes one batch: the key columns (decoded back from the row
//! format, under their input names, so the runtime can assign them to key groups), a
//! BIGINT value column, and the window end in the schema metadata.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use arrow::row::{Row, RowConverter, Rows};
use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;
use runnel_runtime::{Error, Millis, Result};

/// Schema metadata key marking a checkpointed window; its value is the window end.
const WINDOW_END_KEY: &str = "runnel.trending.window_end";
/// Name of the value column of a checkpointed window.
const VALUE_COLUMN: &str = "__runnel_trending_value";

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

    /// The window as a checkpoint batch: key columns, value, window end in the metadata.
    pub fn to_batch(
        &self,
        converter: &RowConverter,
        input: &Schema,
        key_columns: &[usize],
        end: Millis,
    ) -> Result<RecordBatch> {
        let mut columns = converter.convert_rows(self.keys.iter())?;
        columns.push(Arc::new(Int64Array::from(self.values.clone())));
        let mut fields: Vec<Field> = key_columns
            .iter()
            .map(|&i| input.field(i).clone().with_nullable(true))
            .collect();
        fields.push(Field::new(VALUE_COLUMN, DataType::Int64, false));
        let metadata = HashMap::from([(WINDOW_END_KEY.to_string(), end.to_string())]);
        let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// The window end of a checkpointed window batch, or `None` for any other batch.
pub(super) fn window_end_of(batch: &RecordBatch) -> Result<Option<Millis>> {
    let schema = batch.schema();
    let Some(end) = schema.metadata().get(WINDOW_END_KEY) else {
        return Ok(None);
    };
    end.parse()
        .map(Some)
        .map_err(|_| Error::Internal(format!("trending state has a bad window end `{end}`")))
}

/// The values of a checkpointed window batch with `keys` key columns.
pub(super) fn values_of(batch: &RecordBatch, keys: usize) -> Result<&Int64Array> {
    batch
        .columns()
        .get(keys)
        .filter(|c| batch.num_columns() == keys + 1 && c.null_count() == 0)
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| Error::Internal("trending state batch has a bad value column".into()))
}
