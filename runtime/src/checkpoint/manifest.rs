//! The manifests of a job's checkpoint chain, and their checksummed encoding.
//!
//! A manifest is one entry of the create-only chain `{job}/manifests/{seq:020}.json`.
//! There are two kinds:
//!
//! * a **checkpoint** manifest says "epoch `e` is complete": it names every state file,
//!   the source offsets the state corresponds to, and what each sink staged for `e`;
//! * a **fence** manifest is written by an instance as it starts. Its generation is
//!   higher than every generation before it, so an older instance that tries to append
//!   after it learns it is fenced. It repeats the checkpoint the instance restored from,
//!   so the newest entry of the chain always names the newest checkpoint.
//!
//! On storage a manifest is JSON wrapped in an envelope that carries the CRC-32 of the
//! exact bytes of the body: `{"crc32":N,"manifest":{...}}`. Object stores write whole
//! objects atomically, but a copy, a restore from backup or a disk can still truncate or
//! flip bytes; [`decode`] detects that instead of restoring from a damaged checkpoint.
//! The checksum covers the body bytes verbatim (a `RawValue`), not a re-serialization,
//! so it does not depend on how a future serde_json orders or formats keys.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The manifest format this code writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// One entry of the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The job the chain belongs to (checked on read against the directory it is in).
    pub job: String,
    /// Position in the chain; equals the number in the object's name.
    pub seq: u64,
    /// Generation of the instance that wrote this manifest.
    pub generation: u64,
    pub kind: ManifestKind,
    /// For a checkpoint: the checkpoint. For a fence: the checkpoint the instance
    /// restored from, `None` if it started fresh.
    pub checkpoint: Option<CheckpointMeta>,
}

/// What a manifest records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestKind {
    /// An instance started and claimed the chain.
    Fence,
    /// A checkpoint completed.
    Checkpoint,
}

/// A complete checkpoint: everything needed to resume the job at the end of `epoch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub epoch: u64,
    /// Generation of the instance that wrote the state (not necessarily the one that wrote
    /// the manifest naming it: fences repeat older checkpoints).
    pub generation: u64,
    /// Key groups of the job when the checkpoint was taken; fixed for the job's life.
    pub max_key_groups: u32,
    pub operators: Vec<OperatorState>,
    pub sources: Vec<SourcePosition>,
    pub sinks: Vec<SinkCommit>,
}

impl CheckpointMeta {
    /// Every state file the checkpoint references, as paths relative to the job directory.
    pub fn files(&self) -> impl Iterator<Item = &StateFile> {
        self.operators.iter().flat_map(|op| op.files.iter())
    }
}

/// The state of one subtask of one operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorState {
    pub node: String,
    pub subtask: usize,
    /// Parallelism of the node when the checkpoint was taken (restore may rescale).
    pub parallelism: usize,
    pub files: Vec<StateFile>,
    /// The subtask's input watermark when it took its snapshot: a restored operator
    /// resumes judging late rows from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<i64>,
}

/// One state file, with what is needed to detect a damaged copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// Relative to the job directory: `checkpoints/{epoch:020}-g{gen}/{node}/{subtask:05}.arrow`.
    pub path: String,
    pub size: u64,
    pub crc32: u32,
    pub rows: u64,
}

/// Where a source partition resumes: the next offset to read, and the largest event time
/// read from it so far (its watermark starts there again on restore).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    pub node: String,
    pub partition: u32,
    pub offset: u64,
    /// Absent in checkpoints written before it was recorded, and for a partition that
    /// has delivered no event yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_event_time: Option<i64>,
}

/// What one sink subtask staged for the epoch (phase 1), committed in phase 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkCommit {
    pub node: String,
    pub subtask: usize,
    pub staged: serde_json::Value,
}

/// A manifest that cannot be trusted: truncated, bit-flipped, of an unknown format, or
/// inconsistent with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt checkpoint manifest: {0}")]
pub struct CorruptManifest(pub String);

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    crc32: u32,
    manifest: &'a RawValue,
}

#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    crc32: u32,
    #[serde(borrow)]
    manifest: &'a RawValue,
}

#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

/// Encodes a manifest with its checksum. Infallible: every field serializes.
pub fn encode(manifest: &Manifest) -> Bytes {
    let body = serde_json::value::to_raw_value(manifest)
        .expect("a manifest always serializes to JSON: its maps have string keys");
    let envelope = EnvelopeOut {
        crc32: crc32fast::hash(body.get().as_bytes()),
        manifest: &body,
    };
    let bytes =
        serde_json::to_vec(&envelope).expect("an envelope of a u32 and raw JSON always serializes");
    Bytes::from(bytes)
}

/// Decodes and verifies a manifest written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Manifest, CorruptManifest> {
    let envelope: EnvelopeIn<'_> = serde_json::from_slice(bytes).map_err(|e| {
        CorruptManifest(format!(
            "not a manifest envelope ({} bytes): {e}",
            bytes.len()
        ))
    })?;
    let body = envelope.manifest.get();
    let actual = crc32fast::hash(body.as_bytes());
    if actual != envelope.crc32 {
        return Err(CorruptManifest(format!(
            "checksum mismatch: recorded crc32 {:#010x}, body has {actual:#010x}",
            envelope.crc32
        )));
    }
    let format: FormatOnly = serde_json::from_str(body)
        .map_err(|e| CorruptManifest(format!("manifest without a format: {e}")))?;
    if format.format != MANIFEST_FORMAT {
        return Err(CorruptManifest(format!(
            "unsupported manifest format {} (this build reads format {MANIFEST_FORMAT})",
            format.format
        )));
    }
    let manifest: Manifest = serde_json::from_str(body)
        .map_err(|e| CorruptManifest(format!("malformed manifest body: {e}")))?;
    check_consistent(&manifest)?;
    Ok(manifest)
}

/// Invariants every manifest we write satisfies; anything else was not written by us.
fn check_consistent(m: &Manifest) -> Result<(), CorruptManifest> {
    match (&m.kind, &m.checkpoint) {
        (ManifestKind::Checkpoint, None) => Err(CorruptManifest(format!(
            "checkpoint manifest {} names no checkpoint",
            m.seq
        ))),
        (ManifestKind::Checkpoint, Some(cp)) if cp.generation != m.generation => {
            Err(CorruptManifest(format!(
                "checkpoint manifest {} of generation {} holds state of generation {}",
                m.seq, m.generation, cp.generation
            )))
        }
        (_, Some(cp)) if cp.generation > m.generation => Err(CorruptManifest(format!(
            "fence {} of generation {} names state of a later generation {}",
            m.seq, m.generation, cp.generation
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A checkpoint of `epoch` written by `generation`, with one state file per subtask.
    pub(crate) fn meta(epoch: u64, generation: u64) -> CheckpointMeta {
        CheckpointMeta {
            epoch,
            generation,
            max_key_groups: 128,
            operators: (0..2)
                .map(|subtask| OperatorState {
                    node: "window".into(),
                    subtask,
                    parallelism: 2,
                    files: vec![StateFile {
                        path: format!(
                            "checkpoints/{epoch:020}-g{generation}/window/{subtask:05}.arrow"
                        ),
                        size: 100 + subtask as u64,
                        crc32: 7,
                        rows: 3,
                    }],
                    watermark: Some(1_000),
                })
                .collect(),
            sources: vec![SourcePosition {
                node: "bids".into(),
                partition: 0,
                offset: epoch * 10,
                max_event_time: None,
            }],
            sinks: vec![SinkCommit {
                node: "out".into(),
                subtask: 0,
                staged: serde_json::json!({"files": ["a.parquet"], "epoch": epoch}),
            }],
        }
    }

    pub(crate) fn checkpoint(seq: u64, generation: u64, epoch: u64) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            job: "q5".into(),
            seq,
            generation,
            kind: ManifestKind::Checkpoint,
            checkpoint: Some(meta(epoch, generation)),
        }
    }

    pub(crate) fn fence(seq: u64, generation: u64, restored: Option<CheckpointMeta>) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            job: "q5".into(),
            seq,
            generation,
            kind: ManifestKind::Fence,
            checkpoint: restored,
        }
    }

    #[test]
    fn round_trips_both_kinds() {
        for m in [
            checkpoint(3, 2, 9),
            fence(4, 3, Some(meta(9, 2))),
            fence(0, 1, None),
        ] {
            assert_eq!(decode(&encode(&m)).unwrap(), m);
        }
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_detected() {
        let bytes = encode(&checkpoint(3, 2, 9));
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.to_vec();
                damaged[i] ^= 1 << bit;
                // A flip may turn insignificant whitespace into other whitespace; none
                // exists in the compact encoding, so every flip must be caught.
                assert!(decode(&damaged).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn unknown_format_and_inconsistent_manifests_are_corrupt() {
        let reencode = |m: &Manifest| encode(m);
        let mut future = checkpoint(1, 1, 1);
        future.format = 2;
        let err = decode(&reencode(&future)).unwrap_err();
        assert!(err.0.contains("unsupported manifest format 2"), "{err}");

        let mut empty = checkpoint(1, 1, 1);
        empty.checkpoint = None;
        assert!(decode(&reencode(&empty)).is_err());

        let mut foreign_state = checkpoint(1, 2, 1);
        foreign_state.checkpoint = Some(meta(1, 1));
        assert!(decode(&reencode(&foreign_state)).is_err());

        assert!(decode(&reencode(&fence(2, 1, Some(meta(1, 2))))).is_err());
        assert!(decode(b"{}").is_err());
        assert!(decode(br#"{"crc32":0,"manifest":{}}"#).is_err());
    }
}
