//! The two hash tables behind [`super::group_keys::GroupKeys`].
//!
//! * [`IntegerKeys`]: one integer-like key column (ints, dates, timestamps), widened to
//!   i64 and compared as i64: the common `GROUP BY auction` case, the same shortcut as
//!   DataFusion's `GroupValuesPrimitive`. No row encoding, no byte comparison.
//! * [`RowKeys`]: anything else, in Arrow's row format: one comparable byte string per
//!   row whatever the number and types of the key columns. The strings live in one byte
//!   buffer; a probe compares bytes in place, so a key that exists allocates nothing.
//!
//! Both store one entry per key id and can be rebuilt with only the live ids
//! (`compact`).

use std::hash::BuildHasher;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::{RowConverter, RowParser, SortField};
use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};
use runnel_runtime::Result;

use super::group_keys::DEAD;

/// Whether a single key column of this type can use [`IntegerKeys`] (it widens to i64
/// and back without loss).
pub(crate) fn is_integer_key(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | Date32 | Date64 | Timestamp(_, _)
    )
}

/// One integer-like key column.
pub(crate) struct IntegerKeys {
    data_type: DataType,
    /// Value of each key id (0 for the null id).
    values: Vec<i64>,
    null_id: Option<u32>,
    /// Ids of the non-null keys.
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl IntegerKeys {
    pub fn new(data_type: DataType) -> Self {
        IntegerKeys {
            data_type,
            values: Vec::new(),
            null_id: None,
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Appends the key id of every row of `column` to `ids`.
    pub fn intern(&mut self, column: &ArrayRef, ids: &mut Vec<u32>) -> Result<()> {
        let wide = cast(column, &DataType::Int64)?;
        let wide = wide.as_primitive::<Int64Type>();
        let Self {
            values,
            null_id,
            table,
            hasher,
            ..
        } = self;
        let nulls = wide.nulls();
        for (i, &v) in wide.values().iter().enumerate() {
            if nulls.is_some_and(|n| n.is_null(i)) {
                let id = *null_id.get_or_insert_with(|| {
                    values.push(0);
                    (values.len() - 1) as u32
                });
                ids.push(id);
                continue;
            }
            let hash = hasher.hash_one(v);
            let entry = table.entry(
                hash,
                |&id| values[id as usize] == v,
                |&id| hasher.hash_one(values[id as usize]),
            );
            let id = match entry {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => {
                    let id = values.len() as u32;
                    values.push(v);
                    e.insert(id);
                    id
                }
            };
            ids.push(id);
        }
        Ok(())
    }

    /// The key column of `ids`, in the original type.
    pub fn column(&self, ids: &[u32]) -> Result<ArrayRef> {
        let values: Vec<i64> = ids.iter().map(|&id| self.values[id as usize]).collect();
        let nulls = self
            .null_id
            .map(|null| NullBuffer::from_iter(ids.iter().map(|&id| id != null)));
        let wide: ArrayRef = Arc::new(Int64Array::new(values.into(), nulls));
        Ok(cast(&wide, &self.data_type)?)
    }

    /// Keeps the ids with `remap[id] != DEAD`, renumbered to `remap[id]` (increasing).
    pub fn compact(&mut self, remap: &[u32], live: usize) {
        let mut values = Vec::with_capacity(live);
        let mut null_id = None;
        for (old, &new) in remap.iter().enumerate() {
            if new != DEAD {
                values.push(self.values[old]);
                if self.null_id == Some(old as u32) {
                    null_id = Some(new);
                }
            }
        }
        let hasher = &self.hasher;
        let mut table = HashTable::with_capacity(live);
        for (id, &v) in values.iter().enumerate() {
            if null_id != Some(id as u32) {
                table.insert_unique(hasher.hash_one(v), id as u32, |&i| {
                    hasher.hash_one(values[i as usize])
                });
            }
        }
        (self.values, self.null_id, self.table) = (values, null_id, table);
    }
}

/// Key rows in Arrow's row format.
pub(crate) struct RowKeys {
    converter: RowConverter,
    parser: RowParser,
    /// Row bytes of key id `i`: `bytes[offsets[i]..offsets[i + 1]]`.
    bytes: Vec<u8>,
    offsets: Vec<usize>,
    hashes: Vec<u64>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl RowKeys {
    pub fn new(types: Vec<DataType>) -> Result<Self> {
        let fields = types.into_iter().map(SortField::new).collect();
        let converter = RowConverter::new(fields)?;
        Ok(RowKeys {
            parser: converter.parser(),
            converter,
            bytes: Vec::new(),
            offsets: vec![0],
            hashes: Vec::new(),
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        })
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Appends the key id of every row of `columns` to `ids`.
    pub fn intern(&mut self, columns: &[ArrayRef], ids: &mut Vec<u32>) -> Result<()> {
        let rows = self.converter.convert_columns(columns)?;
        let Self {
            bytes: stored,
            offsets,
            hashes,
            table,
            hasher,
            ..
        } = self;
        for row in rows.iter() {
            let bytes = row.data();
            let hash = hasher.hash_one(bytes);
            let entry = table.entry(
                hash,
                |&id| &stored[offsets[id as usize]..offsets[id as usize + 1]] == bytes,
                |&id| hashes[id as usize],
            );
            let id = match entry {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => {
                    let id = hashes.len() as u32;
                    stored.extend_from_slice(bytes);
                    offsets.push(stored.len());
                    hashes.push(hash);
                    e.insert(id);
                    id
                }
            };
            ids.push(id);
        }
        Ok(())
    }

    fn row_bytes(&self, id: usize) -> &[u8] {
        &self.bytes[self.offsets[id]..self.offsets[id + 1]]
    }

    /// The key columns of `ids`.
    pub fn columns(&self, ids: &[u32]) -> Result<Vec<ArrayRef>> {
        let rows = ids
            .iter()
            .map(|&id| self.parser.parse(self.row_bytes(id as usize)));
        Ok(self.converter.convert_rows(rows)?)
    }

    /// Keeps the ids with `remap[id] != DEAD`, renumbered to `remap[id]` (increasing).
    pub fn compact(&mut self, remap: &[u32], live: usize) {
        let mut bytes = Vec::new();
        let mut offsets = Vec::with_capacity(live + 1);
        offsets.push(0);
        let mut hashes = Vec::with_capacity(live);
        for (old, &new) in remap.iter().enumerate() {
            if new != DEAD {
                bytes.extend_from_slice(self.row_bytes(old));
                offsets.push(bytes.len());
                hashes.push(self.hashes[old]);
            }
        }
        let mut table = HashTable::with_capacity(live);
        for (id, &hash) in hashes.iter().enumerate() {
            table.insert_unique(hash, id as u32, |&i| hashes[i as usize]);
        }
        (self.bytes, self.offsets, self.hashes, self.table) = (bytes, offsets, hashes, table);
    }
}
