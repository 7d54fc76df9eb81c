//! Operator state on storage: Arrow IPC files, verified by size and CRC-32 on read.
//!
//! State is already Arrow (operators snapshot into `RecordBatch`es), so a state file is
//! simply the Arrow IPC *file* format: self-describing, readable by pyarrow for
//! debugging, and written without a conversion. The manifest records each file's size
//! and CRC-32; [`verify`] checks both before a byte is decoded, so a truncated or damaged
//! file fails the restore with the file's name instead of restoring wrong state.

use std::io::Cursor;
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;

use super::manifest::StateFile;
use crate::error::{Error, Result};

/// Encodes state batches as one Arrow IPC file. All batches must share one schema; no
/// batches gives a valid file with an empty schema and no rows.
pub fn encode_state(batches: &[RecordBatch]) -> Result<Bytes> {
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    if let Some(other) = batches.iter().find(|b| b.schema() != schema) {
        return Err(Error::Internal(format!(
            "state batches of one file must share a schema: {schema:?} vs {:?}",
            other.schema()
        )));
    }
    let mut writer = FileWriter::try_new(Vec::new(), &schema)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(Bytes::from(writer.into_inner()?))
}

/// Decodes a state file written by [`encode_state`].
pub fn decode_state(bytes: &Bytes) -> Result<Vec<RecordBatch>> {
    let reader = FileReader::try_new(Cursor::new(bytes.clone()), None)?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// Total rows of `batches`, as recorded in [`StateFile::rows`].
pub fn count_rows(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

/// A state file whose bytes do not match its manifest entry.
#[derive(Debug, thiserror::Error)]
#[error(
    "checkpoint state file {path} is damaged: the manifest records {expected_size} bytes with \
     crc32 {expected_crc:#010x}, storage returned {actual_size} bytes with crc32 {actual_crc:#010x}"
)]
pub struct CorruptState {
    pub path: String,
    pub expected_size: u64,
    pub expected_crc: u32,
    pub actual_size: u64,
    pub actual_crc: u32,
}

/// Checks `bytes` against the size and CRC-32 recorded for `file`.
pub fn verify(file: &StateFile, bytes: &[u8]) -> Result<()> {
    let actual_crc = crc32fast::hash(bytes);
    if bytes.len() as u64 == file.size && actual_crc == file.crc32 {
        return Ok(());
    }
    Err(Error::external(
        "restoring checkpoint state",
        CorruptState {
            path: file.path.clone(),
            expected_size: file.size,
            expected_crc: file.crc32,
            actual_size: bytes.len() as u64,
            actual_crc,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    fn batch(keys: &[&str], counts: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("count", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(counts.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn state_round_trips_including_empty() {
        let batches = vec![batch(&["a", "b"], &[1, 2]), batch(&["c"], &[3])];
        let bytes = encode_state(&batches).unwrap();
        assert_eq!(decode_state(&bytes).unwrap(), batches);
        assert_eq!(count_rows(&batches), 3);
        let empty = encode_state(&[]).unwrap();
        assert!(decode_state(&empty).unwrap().is_empty());
    }

    #[test]
    fn mixed_schemas_are_refused() {
        let other = RecordBatch::new_empty(Arc::new(Schema::new(vec![Field::new(
            "x",
            DataType::Int64,
            true,
        )])));
        let err = encode_state(&[batch(&["a"], &[1]), other]).unwrap_err();
        assert!(matches!(err, Error::Internal(_)), "{err}");
    }

    #[test]
    fn verify_names_the_file_on_truncation_and_corruption() {
        let bytes = encode_state(&[batch(&["a"], &[1])]).unwrap();
        let file = StateFile {
            path: "checkpoints/00000000000000000001-g1/w/00000.arrow".into(),
            size: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
            rows: 1,
        };
        verify(&file, &bytes).unwrap();
        let truncated = verify(&file, &bytes[..bytes.len() - 1]).unwrap_err();
        let mut flipped = bytes.to_vec();
        flipped[bytes.len() / 2] ^= 0x10;
        let flipped = verify(&file, &flipped).unwrap_err();
        for err in [truncated, flipped] {
            let text = err.to_string();
            assert!(text.contains(&file.path), "{text}");
            assert!(text.contains("damaged"), "{text}");
        }
    }
}
