//! What a writer staged for an epoch: the `meta` of its `PreCommit`.
//!
//! `{"files": [DataFile, ...]}`, each data file in iceberg's own JSON form (path, format,
//! record count, size, partition, column statistics), so the committer rebuilds exactly
//! the `DataFile`s the writer produced. `null` (a writer without rows) stages nothing.

use iceberg::spec::{
    DataFile, TableMetadata, deserialize_data_file_from_json, serialize_data_file_to_json,
};
use runnel_runtime::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
struct StagedFiles {
    files: Vec<serde_json::Value>,
}

/// The `meta` describing `files`, written for a table with `metadata`.
pub(crate) fn encode(files: Vec<DataFile>, metadata: &TableMetadata) -> Result<serde_json::Value> {
    let internal = |e: String| Error::Internal(format!("staged Iceberg data files: {e}"));
    let files = files
        .into_iter()
        .map(|file| {
            let json = serialize_data_file_to_json(
                file,
                metadata.default_partition_type(),
                metadata.format_version(),
            )
            .map_err(|e| internal(e.to_string()))?;
            serde_json::from_str(&json).map_err(|e| internal(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    serde_json::to_value(StagedFiles { files }).map_err(|e| internal(e.to_string()))
}

/// The data files a `meta` describes. Each must lie under the table's location: a
/// description from elsewhere is refused rather than added to the table.
pub(crate) fn decode(meta: serde_json::Value, metadata: &TableMetadata) -> Result<Vec<DataFile>> {
    let invalid =
        |e: String| Error::Internal(format!("staged Iceberg data files are invalid: {e}"));
    let staged: StagedFiles = match meta {
        serde_json::Value::Null => return Ok(Vec::new()),
        meta => serde_json::from_value(meta).map_err(|e| invalid(e.to_string()))?,
    };
    let under = format!("{}/", metadata.location().trim_end_matches('/'));
    staged
        .files
        .into_iter()
        .map(|json| {
            let file = deserialize_data_file_from_json(
                &json.to_string(),
                metadata.default_partition_spec_id(),
                metadata.default_partition_type(),
                metadata.current_schema(),
            )
            .map_err(|e| invalid(e.to_string()))?;
            if !file.file_path().starts_with(&under) {
                return Err(invalid(format!(
                    "{} is not under the table location {under}",
                    file.file_path()
                )));
            }
            Ok(file)
        })
        .collect()
}
