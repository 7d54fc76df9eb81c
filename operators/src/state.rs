//! How operators write their state into checkpoints, so that any parallelism can read it.
//!
//! [`Operator::snapshot`](runnel_runtime::Operator::snapshot) returns Arrow batches. The
//! convention every built-in operator follows:
//!
//! * **Keyed state** (per key: open windows, sessions, recent values) is rows. Each row
//!   carries a non-null `UInt32` column [`KEY_GROUP_COLUMN`] (`_key_group`), the first
//!   column of the batch: the key group of the row's key, i.e.
//!   `keys::key_group(hash, max_key_groups)` with the hash computed by `keys::hash_rows`
//!   over the key columns *in their input types*, exactly as the hash edge in front of the
//!   operator routes rows ([`key_groups`]). On restore the runtime hands subtask `s` of `P`
//!   the rows whose key group is in `keys::key_groups_of_subtask(s, max_key_groups, P)`
//!   ([`retain_key_groups`], [`state_for_subtask`]): after a rescale each key's state lands
//!   where the key's future rows are routed.
//! * **Scalar state** (the watermark) goes into the schema metadata ([`WATERMARK_KEY`]),
//!   together with the kind of state ([`KIND_KEY`]), so restoring into an operator of
//!   another kind or geometry fails instead of misreading columns. Every batch carries
//!   it, so any restored row comes with the watermark it was written under; an operator
//!   with no keyed state returns one empty batch, so its state file still records it.
//!   (A subtask that restores no row at all starts empty and learns the watermark from
//!   the runtime, which announces the node's restored watermark before any input.)
//! * One operator's batches share **one schema**, so a subtask's state is one Arrow IPC
//!   file.
//!
//! On restore after a rescale, a subtask may get the parts of several old subtasks (2 -> 1)
//! or a slice of one (2 -> 3); scalar state is combined conservatively, see
//! [`restored_watermark`].

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use arrow::buffer::BooleanBuffer;
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};
use arrow::record_batch::RecordBatch;
use runnel_runtime::keys::{hash_rows, key_group, key_groups_of_subtask};
use runnel_runtime::{Error, Millis, Result, WATERMARK_START};

/// Name of the key-group column of keyed state rows (the first column of the built-in
/// operators' state): `_key_group`, defined by the runtime, which splits state by it.
pub use runnel_runtime::keys::KEY_GROUP_COLUMN;
/// Schema metadata key: the operator subtask's watermark when it took the snapshot.
pub const WATERMARK_KEY: &str = "runnel.watermark";
/// Schema metadata key: what wrote the state (operator kind, format version, geometry).
pub const KIND_KEY: &str = "runnel.state";

/// Checks the number of key groups an operator is created with.
pub fn check_max_key_groups(max_key_groups: u32) -> Result<u32> {
    if max_key_groups == 0 {
        return Err(Error::Plan("max_key_groups must be at least 1".into()));
    }
    Ok(max_key_groups)
}

/// The field of the [`KEY_GROUP_COLUMN`].
pub fn key_group_field() -> Field {
    Field::new(KEY_GROUP_COLUMN, DataType::UInt32, false)
}

/// The key group of each of `num_rows` rows of `key_columns` (in their input types); all
/// rows are in key group 0 when there are no key columns.
pub fn key_groups(
    key_columns: &[ArrayRef],
    num_rows: usize,
    max_key_groups: u32,
) -> Result<UInt32Array> {
    let max = check_max_key_groups(max_key_groups)?;
    let mut hashes = Vec::with_capacity(num_rows);
    hash_rows(key_columns, &mut hashes)?;
    hashes.resize(num_rows, 0);
    let groups: Vec<u32> = hashes.iter().map(|&h| key_group(h, max)).collect();
    Ok(UInt32Array::from(groups))
}

/// The schema of state batches: `fields` (the first one [`key_group_field`] for keyed
/// state) plus the scalar state in the metadata.
pub fn state_schema(kind: &str, fields: Vec<Field>, watermark: Millis) -> SchemaRef {
    let metadata = HashMap::from([
        (KIND_KEY.to_string(), kind.to_string()),
        (WATERMARK_KEY.to_string(), watermark.to_string()),
    ]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// Checks that `batch` was written by an operator of `kind` with columns of `expected`
/// types, and returns the watermark in its metadata.
pub fn check_state_batch(batch: &RecordBatch, kind: &str, expected: &Schema) -> Result<Millis> {
    let schema = batch.schema();
    let found = schema.metadata().get(KIND_KEY).map(String::as_str);
    if found != Some(kind) {
        return Err(Error::Plan(format!(
            "cannot restore checkpoint state written by `{}` into `{kind}`: \
             the job changed incompatibly",
            found.unwrap_or("unknown")
        )));
    }
    let types = |s: &Schema| -> Vec<DataType> {
        s.fields().iter().map(|f| f.data_type().clone()).collect()
    };
    if types(&schema) != types(expected) {
        return Err(Error::Plan(format!(
            "checkpoint state of `{kind}` has columns {:?}, expected {:?}: \
             the job's input or aggregates changed",
            types(&schema),
            types(expected)
        )));
    }
    if let Some(groups) = key_group_column(batch)?
        && groups.null_count() > 0
    {
        return Err(Error::Internal(format!(
            "`{kind}` state has null key groups"
        )));
    }
    let watermark = schema.metadata().get(WATERMARK_KEY);
    watermark
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| Error::Internal(format!("`{kind}` state has a bad watermark {watermark:?}")))
}

/// The watermark to resume with after restoring `batches`: the **minimum** over the
/// restored parts, or `None` if there are none (a fresh start).
///
/// With aligned barriers every subtask of an operator holds the same watermark at a
/// checkpoint: each one's watermark is the minimum over the same upstream subtasks, which
/// broadcast their watermarks in the same order relative to the barrier to every
/// downstream subtask. Then minimum and maximum agree and the restore is exact, at any
/// parallelism. Should parts disagree (state assembled from an unaligned snapshot), the
/// minimum errs on the side that loses nothing: a watermark higher than a part's own
/// would skip firing that part's windows between the two (they fire only once the
/// watermark passes their end, and windows at or before the restored watermark count as
/// fired) and declare late rows the original run aggregated, silently dropping results.
/// The minimum only makes the operator more lenient: rows the part with the higher
/// watermark would have called late are aggregated, and windows between the two
/// watermarks may be emitted again, which is visible downstream rather than lost.
pub fn restored_watermark(
    batches: &[RecordBatch],
    kind: &str,
    expected: &Schema,
) -> Result<Option<Millis>> {
    let mut min: Option<Millis> = None;
    for batch in batches {
        let w = check_state_batch(batch, kind, expected)?;
        min = Some(min.map_or(w, |m| m.min(w)));
    }
    Ok(min)
}

/// An empty state batch: carries the scalar state of an operator with no keyed state.
pub fn empty_state(schema: &SchemaRef) -> RecordBatch {
    RecordBatch::new_empty(schema.clone())
}

/// The [`KEY_GROUP_COLUMN`] of a state batch, or `None` for a batch of operator-wide
/// state (handed to every subtask on restore).
pub fn key_group_column(batch: &RecordBatch) -> Result<Option<&UInt32Array>> {
    let Ok(index) = batch.schema().index_of(KEY_GROUP_COLUMN) else {
        return Ok(None);
    };
    batch
        .column(index)
        .as_primitive_opt::<UInt32Type>()
        .map(Some)
        .ok_or_else(|| Error::Internal(format!("`{KEY_GROUP_COLUMN}` is not UInt32")))
}

/// The rows of `batch` whose key group is in `groups` (the whole batch if it has no key
/// group column). The schema, with its metadata, is kept even if no row is.
pub fn retain_key_groups(batch: &RecordBatch, groups: Range<u32>) -> Result<RecordBatch> {
    let Some(column) = key_group_column(batch)? else {
        return Ok(batch.clone());
    };
    let values = column.values();
    let keep = BooleanBuffer::collect_bool(values.len(), |i| groups.contains(&values[i]));
    Ok(filter_record_batch(batch, &BooleanArray::new(keep, None))?)
}

/// What subtask `subtask` of `parallelism` restores from the state of all old subtasks:
/// every batch, restricted to the key groups the subtask owns now.
pub fn state_for_subtask(
    state: &[RecordBatch],
    subtask: usize,
    max_key_groups: u32,
    parallelism: usize,
) -> Result<Vec<RecordBatch>> {
    let groups = key_groups_of_subtask(subtask, check_max_key_groups(max_key_groups)?, parallelism);
    state
        .iter()
        .map(|b| retain_key_groups(b, groups.clone()))
        .collect()
}

/// The watermark of a restored operator that keeps it as `Option` (`None`: none yet).
pub fn optional_watermark(restored: Option<Millis>) -> Option<Millis> {
    restored.filter(|&w| w != WATERMARK_START)
}

/// One subtask's state through an Arrow IPC file, as checkpoints store it (for tests).
#[cfg(test)]
pub(crate) fn through_ipc(state: Vec<RecordBatch>) -> Vec<RecordBatch> {
    use arrow::ipc::{reader::FileReader, writer::FileWriter};
    let mut writer = FileWriter::try_new(Vec::new(), &state[0].schema()).unwrap();
    for batch in &state {
        writer.write(batch).unwrap();
    }
    let bytes = writer.into_inner().unwrap();
    let reader = FileReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    reader.map(|b| b.unwrap()).collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn key_groups_follow_the_runtime_hash_and_filtering_keeps_metadata() {
        let keys: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(StringArray::from(vec![Some("a"), Some("b"), None])),
        ];
        let groups = key_groups(&keys, 3, 128).unwrap();
        let mut hashes = Vec::new();
        hash_rows(&keys, &mut hashes).unwrap();
        let expected: Vec<u32> = hashes.iter().map(|&h| key_group(h, 128)).collect();
        assert_eq!(groups.values().to_vec(), expected);
        assert_eq!(key_groups(&[], 2, 128).unwrap().values().to_vec(), [0, 0]);
        assert!(key_groups(&keys, 3, 0).is_err());

        let fields = vec![key_group_field(), Field::new("k", DataType::Int64, true)];
        let schema = state_schema("test/1", fields, -5);
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(groups), keys[0].clone()]).unwrap();
        let mut total = 0;
        for s in 0..3 {
            let part = state_for_subtask(std::slice::from_ref(&batch), s, 128, 3).unwrap();
            total += part[0].num_rows();
            assert_eq!(check_state_batch(&part[0], "test/1", &schema).unwrap(), -5);
        }
        assert_eq!(total, 3);
        assert!(matches!(
            check_state_batch(&batch, "other/1", &schema),
            Err(Error::Plan(_))
        ));
    }

    #[test]
    fn the_restored_watermark_is_the_minimum_of_the_parts() {
        let schema = |w| state_schema("t", vec![key_group_field()], w);
        let parts = [empty_state(&schema(7)), empty_state(&schema(3))];
        let expected = schema(0);
        assert_eq!(restored_watermark(&parts, "t", &expected).unwrap(), Some(3));
        assert_eq!(restored_watermark(&[], "t", &expected).unwrap(), None);
        assert_eq!(optional_watermark(Some(WATERMARK_START)), None);
    }
}
