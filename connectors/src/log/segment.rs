//! Segment objects: one append, encoded as an Arrow IPC file.
//!
//! The IPC *file* format ends with a footer (schema + the position of every record
//! batch) followed by its length and the `ARROW1` magic. The log puts what it needs to
//! know about a segment into the schema's custom metadata, which the footer repeats:
//!
//! - `runnel.row_count`: rows in the segment, so the end offset of a partition is known
//!   from the last segment's footer alone;
//! - `runnel.producer_id`, `runnel.producer_seq`: the producer of the append, so the
//!   dedup state can be rebuilt after a restart by reading only footers (a small ranged
//!   GET of each object's tail), never the data;
//! - `runnel.epoch`: the checkpoint epoch whose phase-2 commit appended the segment (an
//!   exactly-once sink's append), so a reader can tell which epoch committed each row and
//!   resume after one. Plain appends have none, nor do segments written before the key
//!   existed: both read as before.
//!
//! Any Arrow reader opens a segment (`pyarrow.ipc.open_file`). Reads decode the whole
//! object zero-copy: the fetched bytes become an Arrow `Buffer` and every column slices
//! into it ([`FileDecoder`]), nothing is copied unless a buffer is misaligned.

use std::collections::HashMap;

use arrow::buffer::Buffer;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::convert::fb_to_schema;
use arrow::ipc::reader::{FileDecoder, read_footer_length};
use arrow::ipc::root_as_footer;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use runnel_runtime::Epoch;

use super::producer::ProducerSeq;

const ROW_COUNT: &str = "runnel.row_count";
const PRODUCER_ID: &str = "runnel.producer_id";
const PRODUCER_SEQ: &str = "runnel.producer_seq";
const EPOCH: &str = "runnel.epoch";

/// Footer length (4 bytes) + `ARROW1`.
const TRAILER_LEN: usize = 10;

/// Bytes fetched from a segment's tail to read its footer; a larger footer (a very wide
/// schema) costs one more ranged read.
pub(crate) const FOOTER_GUESS: u64 = 4096;

/// What a segment's footer says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub rows: u64,
    pub producer: Option<ProducerSeq>,
    /// The epoch whose commit appended the segment; `None` for a plain append.
    pub epoch: Option<Epoch>,
}

/// A whole segment, decoded.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub batches: Vec<RecordBatch>,
    pub epoch: Option<Epoch>,
}

/// Encodes `batches` (already checked against `schema`) as one segment.
pub(crate) fn encode(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    rows: u64,
    producer: Option<&ProducerSeq>,
    epoch: Option<Epoch>,
) -> Result<Bytes, ArrowError> {
    let mut metadata = schema.metadata().clone();
    metadata.insert(ROW_COUNT.into(), rows.to_string());
    if let Some(p) = producer {
        metadata.insert(PRODUCER_ID.into(), p.producer_id.clone());
        metadata.insert(PRODUCER_SEQ.into(), p.seq.to_string());
    }
    if let Some(epoch) = epoch {
        metadata.insert(EPOCH.into(), epoch.to_string());
    }
    let schema = Schema::new_with_metadata(schema.fields().clone(), metadata);
    let mut writer = FileWriter::try_new(Vec::with_capacity(capacity(batches)), &schema)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(Bytes::from(writer.into_inner()?))
}

/// Most bytes reserved up front for a segment; a larger one grows as it is written.
const MAX_RESERVED: usize = 64 * 1024 * 1024;

/// Bytes to reserve for encoding `batches`: what their rows actually occupy, capped.
///
/// Not `get_array_memory_size`: batches decoded from one request body share its buffer,
/// and that counts the whole buffer once per batch (thousands of small batches of a
/// megabyte body would claim gigabytes).
fn capacity(batches: &[RecordBatch]) -> usize {
    let held: usize = batches
        .iter()
        .map(held_bytes)
        .fold(0, usize::saturating_add);
    held.saturating_add(1024).min(MAX_RESERVED)
}

/// The bytes of the rows `batch` holds, not of buffers it shares with other batches
/// (which `get_array_memory_size` counts whole, once per batch); a column whose slice
/// cannot be sized counts whole.
pub fn held_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .fold(0, usize::saturating_add)
}

/// How many bytes at the end of a segment hold the footer and trailer, from a tail of at
/// least [`TRAILER_LEN`] bytes.
pub(crate) fn footer_span(tail: &[u8]) -> Result<usize, ArrowError> {
    let trailer: [u8; TRAILER_LEN] = tail
        .get(tail.len().saturating_sub(TRAILER_LEN)..)
        .and_then(|t| t.try_into().ok())
        .ok_or_else(|| ArrowError::ParseError("segment is too short".into()))?;
    Ok(read_footer_length(trailer)? + TRAILER_LEN)
}

fn footer_schema(tail: &[u8]) -> Result<(Schema, arrow::ipc::MetadataVersion), ArrowError> {
    let span = footer_span(tail)?;
    let start = tail
        .len()
        .checked_sub(span)
        .ok_or_else(|| ArrowError::ParseError("footer is longer than the segment".into()))?;
    let footer = root_as_footer(&tail[start..tail.len() - TRAILER_LEN])
        .map_err(|e| ArrowError::ParseError(format!("bad segment footer: {e}")))?;
    let schema = footer
        .schema()
        .ok_or_else(|| ArrowError::ParseError("segment footer has no schema".into()))?;
    Ok((fb_to_schema(schema), footer.version()))
}

/// Reads the segment metadata from a tail holding the whole footer
/// (see [`footer_span`]).
pub(crate) fn read_meta(tail: &[u8]) -> Result<SegmentMeta, ArrowError> {
    let (schema, _) = footer_schema(tail)?;
    meta_of(schema.metadata())
}

fn meta_of(metadata: &HashMap<String, String>) -> Result<SegmentMeta, ArrowError> {
    let number = |key: &str| -> Result<Option<u64>, ArrowError> {
        metadata
            .get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| ArrowError::ParseError(format!("bad {key} {v:?} in segment")))
            })
            .transpose()
    };
    let rows = number(ROW_COUNT)?
        .ok_or_else(|| ArrowError::ParseError(format!("segment has no {ROW_COUNT}")))?;
    let producer = match (metadata.get(PRODUCER_ID), number(PRODUCER_SEQ)?) {
        (Some(id), Some(seq)) => Some(ProducerSeq::new(id.clone(), seq)),
        _ => None,
    };
    let epoch = number(EPOCH)?;
    Ok(SegmentMeta {
        rows,
        producer,
        epoch,
    })
}

/// Decodes a whole segment into batches carrying the topic's `schema`, zero-copy.
pub(crate) fn decode(schema: &SchemaRef, bytes: Bytes) -> Result<Decoded, ArrowError> {
    let buffer = Buffer::from(bytes);
    let (file_schema, version) = footer_schema(&buffer)?;
    check_fields(schema, &file_schema)?;
    let epoch = meta_of(file_schema.metadata())?.epoch;
    let span = footer_span(&buffer)?;
    let footer = root_as_footer(&buffer[buffer.len() - span..buffer.len() - TRAILER_LEN])
        .map_err(|e| ArrowError::ParseError(format!("bad segment footer: {e}")))?;
    let slice = |block: &arrow::ipc::Block| -> Result<Buffer, ArrowError> {
        let offset = usize::try_from(block.offset()).ok();
        let len = usize::try_from(block.metaDataLength())
            .ok()
            .zip(usize::try_from(block.bodyLength()).ok())
            .and_then(|(m, b)| m.checked_add(b));
        match offset.zip(len) {
            Some((o, l)) if o.checked_add(l).is_some_and(|e| e <= buffer.len()) => {
                Ok(buffer.slice_with_length(o, l))
            }
            _ => Err(ArrowError::ParseError("segment block out of bounds".into())),
        }
    };
    let mut decoder = FileDecoder::new(schema.clone(), version);
    for block in footer.dictionaries().iter().flatten() {
        decoder.read_dictionary(block, &slice(block)?)?;
    }
    let blocks = footer.recordBatches().into_iter().flatten();
    let mut batches = Vec::with_capacity(blocks.size_hint().0);
    for block in blocks {
        if let Some(batch) = decoder.read_record_batch(block, &slice(block)?)? {
            batches.push(batch);
        }
    }
    Ok(Decoded { batches, epoch })
}

fn check_fields(topic: &Schema, file: &Schema) -> Result<(), ArrowError> {
    let same = topic.fields().len() == file.fields().len()
        && topic
            .fields()
            .iter()
            .zip(file.fields())
            .all(|(t, f)| t.name() == f.name() && t.data_type().equals_datatype(f.data_type()));
    if same {
        Ok(())
    } else {
        Err(ArrowError::SchemaError(format!(
            "segment schema {file} differs from the topic schema {topic}"
        )))
    }
}

/// Whether a schema needs its batches concatenated before encoding: the IPC file format
/// cannot replace a dictionary between batches.
pub(crate) fn has_dictionaries(schema: &Schema) -> bool {
    schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), arrow::datatypes::DataType::Dictionary(..)))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field};

    use super::*;

    fn batch(schema: &SchemaRef, from: i64, n: i64) -> RecordBatch {
        let ids = Int64Array::from_iter_values(from..from + n);
        let names = StringArray::from_iter_values((from..from + n).map(|i| format!("n{i}")));
        RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(names)]).unwrap()
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn the_reservation_counts_rows_held_not_shared_buffers() {
        let schema = schema();
        let whole = batch(&schema, 0, 100_000);
        let slices: Vec<RecordBatch> = (0..1000).map(|i| whole.slice(i * 100, 1)).collect();
        assert!(slices[0].get_array_memory_size() > 800_000);
        assert!(capacity(&slices) < 100_000, "{}", capacity(&slices));
        let bytes = encode(&schema, &slices, 1000, None, None).unwrap();
        assert_eq!(decode(&schema, bytes).unwrap().batches.len(), 1000);
    }

    #[test]
    fn segments_round_trip_with_their_metadata() {
        let schema = schema();
        let batches = vec![batch(&schema, 0, 3), batch(&schema, 3, 4)];
        let producer = ProducerSeq::new("job-1", 9);
        let bytes = encode(&schema, &batches, 7, Some(&producer), Some(12)).unwrap();
        // The footer alone, as a ranged read of the tail would return it.
        let span = footer_span(&bytes).unwrap();
        let meta = read_meta(&bytes[bytes.len() - span..]).unwrap();
        assert_eq!(meta.rows, 7);
        assert_eq!(meta.producer, Some(producer));
        assert_eq!(meta.epoch, Some(12));
        let back = decode(&schema, bytes).unwrap();
        assert_eq!(back.batches, batches);
        assert_eq!(back.epoch, Some(12));
        // Readers see the topic schema, not the segment's bookkeeping.
        assert_eq!(back.batches[0].schema(), schema);
    }

    #[test]
    fn segments_without_an_epoch_still_read() {
        let schema = schema();
        // What a plain append writes, and what every segment held before epochs were
        // recorded: no `runnel.epoch` key at all.
        let bytes = encode(&schema, &[batch(&schema, 0, 2)], 2, None, None).unwrap();
        assert_eq!(read_meta(&bytes).unwrap().epoch, None);
        let back = decode(&schema, bytes).unwrap();
        assert_eq!((back.batches[0].num_rows(), back.epoch), (2, None));
        // A malformed epoch is an error, not a silent "no epoch".
        let mut metadata = HashMap::new();
        metadata.insert(ROW_COUNT.to_string(), "2".to_string());
        metadata.insert(EPOCH.to_string(), "two".to_string());
        assert!(meta_of(&metadata).is_err());
    }

    #[test]
    fn segments_without_producer_and_garbage_are_told_apart() {
        let schema = schema();
        let bytes = encode(&schema, &[batch(&schema, 0, 1)], 1, None, None).unwrap();
        assert_eq!(read_meta(&bytes).unwrap().producer, None);
        assert!(read_meta(b"not an arrow file at all").is_err());
        assert!(read_meta(b"short").is_err());
        let other = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
        assert!(decode(&other, bytes.clone()).is_err());
        // A truncated object is an error, not a panic.
        assert!(decode(&schema, bytes.slice(bytes.len() / 2..)).is_err());
    }
}
