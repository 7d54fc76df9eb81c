//! Topic metadata objects: `topic.json` and `schema.arrow`.
//!
//! Both are written once with `PutMode::Create` and never overwritten. The schema goes
//! first and `topic.json` last, so `topic.json` marks a complete topic. Creating a topic
//! that exists (or half-exists after a crash) succeeds when the definition is the same
//! and fails otherwise; concurrent creators of one definition both succeed.
//!
//! The schema is stored as an empty Arrow IPC stream (`pyarrow.ipc.open_stream(f).schema`
//! reads it), so it keeps every Arrow type and all metadata exactly.

use std::io::Cursor;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use runnel_runtime::{Error, Result};
use serde::{Deserialize, Serialize};

const TOPIC_FILE: &str = "topic.json";
const SCHEMA_FILE: &str = "schema.arrow";
const VERSION: u32 = 1;

/// Most partitions a topic may have (their directory names have five digits).
pub const MAX_PARTITIONS: u32 = 99_999;

#[derive(Debug, Serialize, Deserialize)]
struct TopicFile {
    partitions: u32,
    version: u32,
}

fn external(topic: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::external(format!("log topic {topic}"), e)
}

fn encode_schema(schema: &Schema) -> Result<Bytes> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    writer.finish()?;
    Ok(Bytes::from(writer.into_inner()?))
}

fn decode_schema(bytes: Bytes, topic: &str) -> Result<SchemaRef> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(|e| external(topic, e))?;
    Ok(reader.schema())
}

/// Writes `bytes` at `path` unless something is there; returns what is there.
async fn put_once(
    store: &dyn ObjectStore,
    path: &Path,
    bytes: Bytes,
    topic: &str,
) -> Result<Option<Bytes>> {
    match store
        .put_opts(path, bytes.into(), PutOptions::from(PutMode::Create))
        .await
    {
        Ok(_) => Ok(None),
        Err(object_store::Error::AlreadyExists { .. }) => {
            let existing = async { store.get(path).await?.bytes().await }
                .await
                .map_err(|e| external(topic, e))?;
            Ok(Some(existing))
        }
        Err(e) => Err(external(topic, e)),
    }
}

/// Creates the metadata of a topic, or checks that an existing one matches. Returns the
/// stored schema.
pub(crate) async fn create(
    store: &dyn ObjectStore,
    dir: &Path,
    name: &str,
    partitions: u32,
    schema: &SchemaRef,
) -> Result<SchemaRef> {
    if partitions == 0 || partitions > MAX_PARTITIONS {
        return Err(Error::Plan(format!(
            "topic {name} must have between 1 and {MAX_PARTITIONS} partitions, not {partitions}"
        )));
    }
    let schema_path = dir.clone().join(SCHEMA_FILE);
    let stored = match put_once(store, &schema_path, encode_schema(schema)?, name).await? {
        None => schema.clone(),
        Some(existing) => {
            let existing = decode_schema(existing, name)?;
            if existing.fields() != schema.fields() {
                return Err(Error::Conflict(format!(
                    "topic {name} already exists with schema {existing}, not {schema}"
                )));
            }
            existing
        }
    };
    let file = TopicFile {
        partitions,
        version: VERSION,
    };
    let json = serde_json::to_vec(&file).map_err(|e| external(name, e))?;
    let topic_path = dir.clone().join(TOPIC_FILE);
    if let Some(existing) = put_once(store, &topic_path, json.into(), name).await? {
        let existing = parse_topic_file(&existing, name)?;
        if existing.partitions != partitions {
            return Err(Error::Conflict(format!(
                "topic {name} already exists with {} partitions, not {partitions}",
                existing.partitions
            )));
        }
    }
    Ok(stored)
}

fn parse_topic_file(bytes: &[u8], name: &str) -> Result<TopicFile> {
    let file: TopicFile = serde_json::from_slice(bytes).map_err(|e| external(name, e))?;
    if file.version != VERSION || file.partitions == 0 || file.partitions > MAX_PARTITIONS {
        return Err(external(
            name,
            format!(
                "unsupported {TOPIC_FILE}: version {}, {} partitions",
                file.version, file.partitions
            ),
        ));
    }
    Ok(file)
}

/// Loads a topic's partition count and schema; `None` if the topic does not exist.
pub(crate) async fn load(
    store: &dyn ObjectStore,
    dir: &Path,
    name: &str,
) -> Result<Option<(u32, SchemaRef)>> {
    let topic_path = dir.clone().join(TOPIC_FILE);
    let json = match store.get(&topic_path).await {
        Ok(get) => get.bytes().await.map_err(|e| external(name, e))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(external(name, e)),
    };
    let file = parse_topic_file(&json, name)?;
    let schema_path = dir.clone().join(SCHEMA_FILE);
    let schema = async { store.get(&schema_path).await?.bytes().await }
        .await
        .map_err(|e| external(name, e))?;
    Ok(Some((file.partitions, decode_schema(schema, name)?)))
}

/// Whether the object at `dir` marks a complete topic.
pub(crate) async fn exists(store: &dyn ObjectStore, dir: &Path, name: &str) -> Result<bool> {
    match store.head(&dir.clone().join(TOPIC_FILE)).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(external(name, e)),
    }
}
