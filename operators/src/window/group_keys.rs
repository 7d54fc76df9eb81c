//! Interning of grouping keys: key rows -> dense `u32` key ids.
//!
//! Each distinct key gets a key id, found through a hash table (see `key_tables`: a
//! typed i64 table for one integer-like column, Arrow's row format for anything else).
//! Ids are dense and shared by every pane and session of the operator. That is what makes
//! firing cheap: merging the panes of a window indexes a plain `Vec` by key id instead of
//! hashing keys again.
//!
//! Keys come and go (auction ids in Nexmark only ever grow), so each id counts the open
//! groups (pane groups or sessions) that use it. When dead ids outnumber live ones the
//! table is compacted and the caller renumbers its groups with the returned mapping.
//!
//! With no key columns every row has key id 0 and nothing is hashed.

use arrow::array::ArrayRef;
use arrow::datatypes::Schema;
use runnel_runtime::{Error, Result};

use super::key_tables::{IntegerKeys, RowKeys, is_integer_key};

/// Mapping returned by [`GroupKeys::compact`]: `remap[old] == new`, or [`DEAD`].
pub(crate) const DEAD: u32 = u32::MAX;

/// Do not compact tables smaller than this: not worth the renumbering.
const MIN_DEAD_TO_COMPACT: usize = 4096;

enum Table {
    /// No key columns: every row is key 0.
    Global,
    Integer(IntegerKeys),
    Rows(RowKeys),
}

/// Key rows to dense key ids, with reference counts.
pub(crate) struct GroupKeys {
    table: Table,
    refs: Vec<u32>,
    dead: usize,
}

impl GroupKeys {
    /// A table for the given key columns of `schema`.
    pub fn new(schema: &Schema, key_columns: &[usize]) -> Result<Self> {
        let types: Vec<_> = key_columns
            .iter()
            .map(|&i| schema.field(i).data_type().clone())
            .collect();
        let (table, refs, dead) = match types.as_slice() {
            [] => (Table::Global, vec![0], 1),
            [one] if is_integer_key(one) => {
                (Table::Integer(IntegerKeys::new(one.clone())), vec![], 0)
            }
            _ => (Table::Rows(RowKeys::new(types)?), vec![], 0),
        };
        Ok(GroupKeys { table, refs, dead })
    }

    /// Number of key ids (live or dead) currently assigned.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// Sets `ids[i]` to the key id of row `i` of `columns` (`num_rows` rows).
    pub fn intern(
        &mut self,
        columns: &[ArrayRef],
        num_rows: usize,
        ids: &mut Vec<u32>,
    ) -> Result<()> {
        ids.clear();
        ids.reserve(num_rows);
        let len = match &mut self.table {
            Table::Global => {
                ids.resize(num_rows, 0);
                return Ok(());
            }
            Table::Integer(keys) => {
                keys.intern(&columns[0], ids)?;
                keys.len()
            }
            Table::Rows(keys) => {
                keys.intern(columns, ids)?;
                keys.len()
            }
        };
        if len >= DEAD as usize {
            return Err(Error::Internal("more than 2^32 - 1 distinct keys".into()));
        }
        // New ids start unreferenced: dead until `retain`.
        self.dead += len - self.refs.len();
        self.refs.resize(len, 0);
        Ok(())
    }

    /// One more open group uses `id`.
    #[inline]
    pub fn retain(&mut self, id: u32) {
        let refs = &mut self.refs[id as usize];
        if *refs == 0 {
            self.dead -= 1;
        }
        *refs += 1;
    }

    /// One open group using `id` closed.
    #[inline]
    pub fn release(&mut self, id: u32) {
        let refs = &mut self.refs[id as usize];
        *refs -= 1;
        if *refs == 0 {
            self.dead += 1;
        }
    }

    /// The key columns of the given ids, in order (no columns without keys).
    pub fn columns(&self, ids: &[u32]) -> Result<Vec<ArrayRef>> {
        match &self.table {
            Table::Global => Ok(Vec::new()),
            Table::Integer(keys) => Ok(vec![keys.column(ids)?]),
            Table::Rows(keys) => keys.columns(ids),
        }
    }

    /// Drops unreferenced ids if they are many; returns the renumbering (`remap[old]`, or
    /// [`DEAD`]) that the caller must apply to every id it holds, or `None` if nothing
    /// changed.
    pub fn compact(&mut self) -> Option<Vec<u32>> {
        if matches!(self.table, Table::Global)
            || self.dead < MIN_DEAD_TO_COMPACT
            || self.dead * 2 < self.refs.len()
        {
            return None;
        }
        let mut remap = vec![DEAD; self.refs.len()];
        let mut refs = Vec::with_capacity(self.refs.len() - self.dead);
        for (old, &count) in self.refs.iter().enumerate() {
            if count > 0 {
                remap[old] = refs.len() as u32;
                refs.push(count);
            }
        }
        match &mut self.table {
            Table::Global => {}
            Table::Integer(keys) => keys.compact(&remap, refs.len()),
            Table::Rows(keys) => keys.compact(&remap, refs.len()),
        }
        self.refs = refs;
        self.dead = 0;
        Some(remap)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray, TimestampSecondArray};
    use arrow::datatypes::{DataType, Field, TimeUnit};

    use super::*;

    fn round_trip(schema: Schema, columns: Vec<ArrayRef>, expected_ids: &[u32]) {
        let indices: Vec<usize> = (0..columns.len()).collect();
        let mut keys = GroupKeys::new(&schema, &indices).unwrap();
        let mut ids = Vec::new();
        let rows = columns[0].len();
        keys.intern(&columns, rows, &mut ids).unwrap();
        assert_eq!(ids, expected_ids);
        // Keys come back in their original types, nulls included.
        let back = keys.columns(&ids).unwrap();
        assert_eq!(back, columns);
    }

    #[test]
    fn equal_rows_share_an_id_and_round_trip() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]);
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(1), None]));
        let b: ArrayRef = Arc::new(StringArray::from(vec![
            Some("x"),
            None,
            Some("x"),
            Some(""),
        ]));
        round_trip(schema, vec![a.clone(), b], &[0, 1, 0, 2]);

        let schema = Schema::new(vec![Field::new("a", DataType::Int64, true)]);
        let zero: ArrayRef = Arc::new(Int64Array::from(vec![Some(0), None, Some(0), Some(1)]));
        round_trip(schema, vec![zero], &[0, 1, 0, 2]);

        let utc = DataType::Timestamp(TimeUnit::Second, Some("UTC".into()));
        let schema = Schema::new(vec![Field::new("t", utc, false)]);
        let t: ArrayRef = Arc::new(TimestampSecondArray::from(vec![5, -5, 5]).with_timezone("UTC"));
        round_trip(schema, vec![t], &[0, 1, 0]);
    }

    #[test]
    fn compaction_keeps_live_ids_findable() {
        let n = 3 * MIN_DEAD_TO_COMPACT as i64;
        let ints: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let strings: ArrayRef =
            Arc::new(StringArray::from_iter_values((0..n).map(|i| i.to_string())));
        let integer = Schema::new(vec![Field::new("a", DataType::Int64, false)]);
        let rows = Schema::new(vec![Field::new("a", DataType::Utf8, false)]);
        for (schema, column) in [(integer, ints), (rows, strings)] {
            let mut keys = GroupKeys::new(&schema, &[0]).unwrap();
            let mut ids = Vec::new();
            keys.intern(std::slice::from_ref(&column), n as usize, &mut ids)
                .unwrap();
            for &id in &ids {
                keys.retain(id);
            }
            assert!(keys.compact().is_none());
            for &id in ids.iter().filter(|&&id| id % 3 != 0) {
                keys.release(id);
            }
            let remap = keys.compact().unwrap();
            assert_eq!(keys.len(), MIN_DEAD_TO_COMPACT);
            assert_eq!((remap[3], remap[4]), (1, DEAD));
            // Live keys are found under their new ids; new keys get fresh ones.
            let probe = column.slice(6, 2);
            keys.intern(std::slice::from_ref(&probe), 2, &mut ids)
                .unwrap();
            assert_eq!(ids, vec![2, MIN_DEAD_TO_COMPACT as u32]);
            assert_eq!(keys.columns(&ids).unwrap(), vec![probe]);
        }
    }
}
