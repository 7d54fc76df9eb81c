//! Stable key hashing, key groups and their assignment to subtasks.
//!
//! A key maps to one of a fixed number of key groups (`max_key_groups`, fixed for the life
//! of a job); key groups map to subtasks in contiguous ranges. State is kept per key
//! group, so a checkpoint taken at parallelism N restores at parallelism M by handing each
//! new subtask the key groups of its range (Flink's `KeyGroupRangeAssignment`).
//!
//! The hash must give the same value in every process and every release, because it
//! decides where state lives after a restore: it is written out here (xxh3 over bytes, a
//! fixed 64-bit mixer over integers) rather than taken from `std` or a randomly seeded
//! hasher.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Error, Result};

/// Column of operator state rows that holds each row's key group, so that a checkpoint
/// taken at one parallelism can be split among the subtasks of another.
pub const KEY_GROUP_COLUMN: &str = "_key_group";

/// Default number of key groups of a job: the upper bound of its parallelism.
pub const DEFAULT_MAX_KEY_GROUPS: u32 = 128;

const NULL_HASH: u64 = 0x9e37_79b9_7f4a_7c15;

/// A fixed avalanche mixer (the finalizer of MurmurHash3's 64-bit variant).
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

#[inline]
fn combine(seed: u64, value: u64) -> u64 {
    mix64(seed.rotate_left(23) ^ value)
}

/// Hashes the rows of `columns` (all of one length) into `hashes`, one value per row.
///
/// Works column by column over the typed values, not row by row over dynamic values.
pub fn hash_rows(columns: &[ArrayRef], hashes: &mut Vec<u64>) -> Result<()> {
    let rows = columns.first().map_or(0, |c| c.len());
    hashes.clear();
    hashes.resize(rows, 0);
    for column in columns {
        hash_column(column, hashes)?;
    }
    Ok(())
}

fn hash_primitive<T>(column: &ArrayRef, hashes: &mut [u64])
where
    T: ArrowPrimitiveType,
    T::Native: Into<i128> + Copy,
{
    let array = column.as_primitive::<T>();
    let values = array.values();
    if array.null_count() == 0 {
        for (h, v) in hashes.iter_mut().zip(values.iter()) {
            let v: i128 = (*v).into();
            *h = combine(*h, mix64(v as u64));
        }
    } else {
        for (i, h) in hashes.iter_mut().enumerate() {
            let v = if array.is_null(i) {
                NULL_HASH
            } else {
                let v: i128 = values[i].into();
                mix64(v as u64)
            };
            *h = combine(*h, v);
        }
    }
}

fn hash_bytes<'a>(values: impl Iterator<Item = Option<&'a [u8]>>, hashes: &mut [u64]) {
    for (h, v) in hashes.iter_mut().zip(values) {
        *h = combine(*h, v.map_or(NULL_HASH, xxh3_64));
    }
}

fn hash_column(column: &ArrayRef, hashes: &mut [u64]) -> Result<()> {
    match column.data_type() {
        DataType::Int8 => hash_primitive::<Int8Type>(column, hashes),
        DataType::Int16 => hash_primitive::<Int16Type>(column, hashes),
        DataType::Int32 => hash_primitive::<Int32Type>(column, hashes),
        DataType::Int64 => hash_primitive::<Int64Type>(column, hashes),
        DataType::UInt8 => hash_primitive::<UInt8Type>(column, hashes),
        DataType::UInt16 => hash_primitive::<UInt16Type>(column, hashes),
        DataType::UInt32 => hash_primitive::<UInt32Type>(column, hashes),
        DataType::UInt64 => hash_primitive::<UInt64Type>(column, hashes),
        DataType::Date32 => hash_primitive::<Date32Type>(column, hashes),
        DataType::Date64 => hash_primitive::<Date64Type>(column, hashes),
        DataType::Timestamp(TimeUnit::Second, _) => {
            hash_primitive::<TimestampSecondType>(column, hashes)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            hash_primitive::<TimestampMillisecondType>(column, hashes)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            hash_primitive::<TimestampMicrosecondType>(column, hashes)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            hash_primitive::<TimestampNanosecondType>(column, hashes)
        }
        DataType::Boolean => {
            let array = column.as_boolean();
            for (h, v) in hashes.iter_mut().zip(array.iter()) {
                *h = combine(*h, v.map_or(NULL_HASH, |b| mix64(b as u64)));
            }
        }
        DataType::Utf8 => hash_bytes(
            column
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::as_bytes)),
            hashes,
        ),
        DataType::LargeUtf8 => hash_bytes(
            column
                .as_string::<i64>()
                .iter()
                .map(|v| v.map(str::as_bytes)),
            hashes,
        ),
        DataType::Utf8View => hash_bytes(
            column.as_string_view().iter().map(|v| v.map(str::as_bytes)),
            hashes,
        ),
        DataType::Binary => hash_bytes(column.as_binary::<i32>().iter(), hashes),
        DataType::LargeBinary => hash_bytes(column.as_binary::<i64>().iter(), hashes),
        other => {
            return Err(Error::Plan(format!(
                "cannot use a column of type {other} as a key"
            )));
        }
    }
    Ok(())
}

/// Whether a column of this type can be a key (hash partitioning, grouping).
pub fn is_hashable(data_type: &DataType) -> bool {
    let probe = arrow::array::new_empty_array(data_type);
    hash_column(&probe, &mut []).is_ok()
}

/// The key group of a key hash.
#[inline]
pub fn key_group(hash: u64, max_key_groups: u32) -> u32 {
    (hash % u64::from(max_key_groups)) as u32
}

/// The subtask that owns `key_group` when the operator runs with `parallelism` subtasks.
#[inline]
pub fn subtask_for_key_group(key_group: u32, max_key_groups: u32, parallelism: usize) -> usize {
    (key_group as usize * parallelism) / max_key_groups as usize
}

/// The key groups owned by `subtask` out of `parallelism`: the inverse of
/// [`subtask_for_key_group`].
pub fn key_groups_of_subtask(
    subtask: usize,
    max_key_groups: u32,
    parallelism: usize,
) -> std::ops::Range<u32> {
    let n = max_key_groups as usize;
    let start = (subtask * n).div_ceil(parallelism);
    let end = ((subtask + 1) * n).div_ceil(parallelism);
    start as u32..end as u32
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn hashes_are_stable_across_releases() {
        // These values are part of the checkpoint format: changing them moves state.
        let cols: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![0, 1, 1000]))];
        let mut h = Vec::new();
        hash_rows(&cols, &mut h).unwrap();
        let again = {
            let mut h2 = Vec::new();
            hash_rows(&cols, &mut h2).unwrap();
            h2
        };
        assert_eq!(h, again);
        assert_eq!(h[0], combine(0, mix64(0)));
        assert_ne!(h[1], h[2]);
    }

    #[test]
    fn equal_keys_hash_equal_across_int_widths_and_nulls_hash_alike() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(7), None]));
        let b: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![Some(7), None]));
        let (mut ha, mut hb) = (Vec::new(), Vec::new());
        hash_rows(&[a], &mut ha).unwrap();
        hash_rows(&[b], &mut hb).unwrap();
        assert_eq!(ha, hb);
        let s: ArrayRef = Arc::new(StringArray::from(vec!["x", "y"]));
        hash_rows(&[s], &mut ha).unwrap();
        assert_ne!(ha[0], ha[1]);
    }

    #[test]
    fn key_group_ranges_partition_all_groups_for_every_parallelism() {
        for max in [1u32, 7, 128] {
            for p in 1..=max.min(20) as usize {
                let mut next = 0;
                for s in 0..p {
                    let range = key_groups_of_subtask(s, max, p);
                    assert_eq!(range.start, next);
                    for kg in range.clone() {
                        assert_eq!(subtask_for_key_group(kg, max, p), s);
                    }
                    next = range.end;
                }
                assert_eq!(next, max);
            }
        }
    }

    #[test]
    fn unsupported_key_types_are_a_plan_error() {
        assert!(is_hashable(&DataType::Utf8));
        assert!(!is_hashable(&DataType::Float64));
    }
}
