//! Where a table's files may go: under the catalog's warehouse, nowhere else.
//!
//! A table's `location`, a namespace's `location` property, and the table properties that
//! move its files (`write.data.path`, `write.metadata.path`, `write.object-storage.path`,
//! ...) decide where writers put Parquet and metadata files. Left to a catalog client,
//! they would let it aim the sinks (and every other writer) at any directory the process
//! can write: `/tmp`, another bucket, the data root's job or topic folders. So a location
//! must be a URL strictly under the warehouse whose every segment is a plain name (no
//! `..`, no empty segment, nothing a file system or URL would read twice), and a path
//! property must lie under the table's own location, where the sink looks for its files.

use std::collections::HashMap;

use runnel_runtime::checkpoint::layout::validate_name;

/// Whether table property `key` names a place files are written: `location`, and every
/// `write.*` property that ends in `.path` or carries `location` (the location provider).
pub fn is_path_property(key: &str) -> bool {
    key == "location"
        || (key.starts_with("write.") && (key.ends_with(".path") || key.contains("location")))
}

/// Checks that `location` lies strictly under `base` (a URL without a trailing slash)
/// and that every segment below it is a plain name; the reason otherwise.
pub fn check_under(what: &str, location: &str, base: &str) -> Result<(), String> {
    let base = base.trim_end_matches('/');
    let refuse = || format!("{what} {location:?} is not under {base}/");
    let below = location
        .strip_prefix(base)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(refuse)?;
    let below = below.strip_suffix('/').unwrap_or(below);
    if below.is_empty() {
        return Err(refuse());
    }
    for segment in below.split('/') {
        validate_name("path segment", segment).map_err(|e| format!("{what} {location:?}: {e}"))?;
    }
    Ok(())
}

/// Checks the path-like entries of `properties` of a table at `table_location`: each must
/// lie under the table's location (see the module docs).
pub fn check_table_properties(
    properties: &HashMap<String, String>,
    table_location: &str,
) -> Result<(), String> {
    for (key, value) in properties {
        if is_path_property(key) {
            check_under(&format!("table property {key}"), value, table_location)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAREHOUSE: &str = "file:///data/warehouse";

    #[test]
    fn only_plain_locations_under_the_warehouse_pass() {
        for good in [
            "file:///data/warehouse/default/t",
            "file:///data/warehouse/default/t/",
            "file:///data/warehouse/a/b.c_d-e",
        ] {
            check_under("location", good, WAREHOUSE).unwrap();
        }
        for bad in [
            "file:///tmp/x",
            "file:///data/warehouse",
            "file:///data/warehouse/",
            "file:///data/warehouse/../jobs",
            "file:///data/warehouse/default/../../log",
            "file:///data/warehouse//x",
            "file:///data/warehouse/./x",
            "file:///data/warehouse/%2e%2e/x",
            "file:///data/warehouse-other/x",
            "file:///data/jobs/hot",
            "s3://bucket/warehouse/x",
            "http://example.com/x",
            "../../x",
            "relative/x",
            "/data/warehouse/default/t",
        ] {
            let error = check_under("location", bad, WAREHOUSE).unwrap_err();
            assert!(error.contains(bad), "{bad}: {error}");
        }
    }

    #[test]
    fn write_paths_must_stay_under_the_table() {
        let table = "file:///data/warehouse/default/t";
        let ok = HashMap::from([
            ("write.data.path".to_string(), format!("{table}/data")),
            ("owner".to_string(), "/anything".to_string()),
        ]);
        check_table_properties(&ok, table).unwrap();
        for key in [
            "write.data.path",
            "write.metadata.path",
            "write.object-storage.path",
            "write.folder-storage.path",
            "write.location-provider.impl",
        ] {
            let bad = HashMap::from([(key.to_string(), "file:///tmp/x".to_string())]);
            let error = check_table_properties(&bad, table).unwrap_err();
            assert!(error.contains(key), "{error}");
            let sibling = HashMap::from([(
                key.to_string(),
                "file:///data/warehouse/default/other".to_string(),
            )]);
            assert!(check_table_properties(&sibling, table).is_err(), "{key}");
        }
    }
}
