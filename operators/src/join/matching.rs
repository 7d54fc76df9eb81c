//! Which left rows meet which right rows: an in-memory hash join over keys in Arrow's row
//! format.
//!
//! The right keys are indexed once: a `hashbrown::HashTable` holds, per distinct key, the
//! first right row with it, and `next` chains the other rows of that key (DataFusion's
//! `JoinHashMap` layout), so duplicate keys cost one `u32` each and no allocation. Every
//! left row then probes the table once. The result is a pair of index vectors that
//! Arrow's `take` turns into the joined columns, whole batches at a time.

use std::hash::BuildHasher;

use arrow::row::Rows;
use hashbrown::{DefaultHashBuilder, HashTable};
use runnel_runtime::{Error, Result};

/// End of a chain of right rows.
const NO_ROW: u32 = u32::MAX;

/// The pairs `(left row, right row)` of equal keys, ordered by left row and, for one left
/// row, by right row. Both sides must come from the same `RowConverter`.
pub(super) fn matching_pairs(left: &Rows, right: &Rows) -> Result<(Vec<u32>, Vec<u32>)> {
    row_count(left)?;
    let hasher = DefaultHashBuilder::default();
    let hash = |row: &[u8]| hasher.hash_one(row);
    let mut heads: HashTable<u32> = HashTable::with_capacity(right.num_rows());
    let mut next = vec![NO_ROW; row_count(right)?];
    // Backwards, so that each chain lists its rows in ascending order.
    for j in (0..right.num_rows()).rev() {
        let key = right.row(j);
        let h = hash(key.as_ref());
        match heads.find_mut(h, |&head| right.row(head as usize) == key) {
            Some(head) => {
                next[j] = *head;
                *head = j as u32;
            }
            None => {
                heads.insert_unique(h, j as u32, |&head| hash(right.row(head as usize).as_ref()));
            }
        }
    }
    let (mut left_rows, mut right_rows) = (Vec::new(), Vec::new());
    for i in 0..left.num_rows() {
        let key = left.row(i);
        let Some(&head) = heads.find(hash(key.as_ref()), |&head| right.row(head as usize) == key)
        else {
            continue;
        };
        let mut j = head;
        while j != NO_ROW {
            left_rows.push(i as u32);
            right_rows.push(j);
            j = next[j as usize];
        }
    }
    Ok((left_rows, right_rows))
}

/// The number of rows, if every index fits a `u32` below [`NO_ROW`].
fn row_count(rows: &Rows) -> Result<usize> {
    let n = rows.num_rows();
    if n >= NO_ROW as usize {
        return Err(Error::Internal(format!(
            "a window join side of {n} rows is too large"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::DataType;
    use arrow::row::{RowConverter, SortField};

    use super::*;

    #[test]
    fn duplicate_keys_pair_up_in_order() {
        let converter = RowConverter::new(vec![
            SortField::new(DataType::Int64),
            SortField::new(DataType::Utf8),
        ])
        .unwrap();
        let rows = |ints: Vec<i64>, strs: Vec<&str>| {
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(ints)),
                Arc::new(StringArray::from(strs)),
            ];
            converter.convert_columns(&columns).unwrap()
        };
        let left = rows(vec![1, 2, 1, 3], vec!["a", "a", "a", "a"]);
        let right = rows(vec![1, 1, 2, 1, 2], vec!["a", "b", "b", "a", "a"]);
        let (l, r) = matching_pairs(&left, &right).unwrap();
        assert_eq!(l, [0, 0, 1, 2, 2]);
        assert_eq!(r, [0, 3, 4, 0, 3]);
        let empty = rows(vec![], vec![]);
        assert_eq!(matching_pairs(&left, &empty).unwrap().0, [0u32; 0]);
        assert_eq!(matching_pairs(&empty, &right).unwrap().1, [0u32; 0]);
    }
}
