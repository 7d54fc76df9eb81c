//! Seeded mutation tests of both decoders: whatever the body, decoding returns records
//! or a [`BadInput`](super::BadInput), and never panics. Bounded to a few thousand cases
//! so they run with the unit tests; a failing seed reproduces.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Format, decode};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]))
}

fn ipc_body() -> Vec<u8> {
    let batch = |n: i64| {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(StringArray::from_iter(
                (0..n).map(|i| (i % 2 == 0).then(|| format!("n{i}"))),
            )),
            Arc::new(TimestampMillisecondArray::from_iter_values(0..n)),
        ];
        RecordBatch::try_new(schema(), columns).unwrap()
    };
    let mut writer = StreamWriter::try_new(Vec::new(), &schema()).unwrap();
    for n in [3, 1, 5] {
        writer.write(&batch(n)).unwrap();
    }
    writer.into_inner().unwrap()
}

const JSON_BODY: &str = "{\"id\": 1, \"name\": \"a\", \"at\": 5}\n\
                         {\"id\": -2, \"at\": \"1970-01-01T00:00:01Z\"}\n\
                         {\"id\": 3, \"name\": null, \"at\": [1]}\n";

fn mutate(valid: &[u8], rng: &mut StdRng, alphabet: &[u8]) -> Vec<u8> {
    let mut body = valid.to_vec();
    for _ in 0..rng.random_range(1..=6) {
        if body.is_empty() {
            break;
        }
        let at = rng.random_range(0..body.len());
        match rng.random_range(0..5) {
            0 => body[at] = rng.random(),
            1 => body[at] = alphabet[rng.random_range(0..alphabet.len())],
            2 => body[at] ^= 1 << rng.random_range(0..8),
            3 => body.truncate(at),
            _ => {
                let insert: Vec<u8> = (0..rng.random_range(1..8))
                    .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                    .collect();
                body.splice(at..at, insert);
            }
        }
    }
    body
}

fn never_panics(format: Format, valid: &[u8], alphabet: &[u8], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for case in 0..2_000 {
        let body = mutate(valid, &mut rng, alphabet);
        let result = std::panic::catch_unwind(|| {
            decode(format, &schema(), Bytes::from(body.clone()), &["at".into()])
        });
        assert!(result.is_ok(), "seed {seed} case {case} panicked: {body:?}");
    }
}

#[test]
fn mutated_arrow_streams_never_panic() {
    never_panics(
        Format::ArrowStream,
        &ipc_body(),
        &[0, 1, 0x7f, 0x80, 0xff, 8],
        1,
    );
}

#[test]
fn mutated_json_lines_never_panic() {
    never_panics(
        Format::JsonLines,
        JSON_BODY.as_bytes(),
        b"{}[]\",:0159.e-\\\nnul",
        2,
    );
}
