//! Topic names and the object paths of the log.
//!
//! Layout under the log root (`{root}/log/`):
//!
//! ```text
//! {topic}/topic.json                       {"partitions": N, "version": 1}
//! {topic}/schema.arrow                     the schema, as an empty Arrow IPC stream
//! {topic}/{partition:05}/{base:020}.arrow  one segment: rows [base, base + rows)
//! ```
//!
//! Topic names later arrive from HTTP paths, so they are validated before any path is
//! built: only `[A-Za-z0-9._-]`, no leading `.` (which also rules out `.` and `..`), at
//! most [`MAX_TOPIC_NAME_LEN`] characters. Offsets are zero-padded so that the
//! lexicographic order of object names is the offset order, which lets a refresh list
//! only the segments after the last one it knows.

use object_store::path::Path;
use runnel_runtime::{Error, Result};

/// Longest accepted topic name.
pub const MAX_TOPIC_NAME_LEN: usize = 200;

const SEGMENT_SUFFIX: &str = ".arrow";
const OFFSET_DIGITS: usize = 20;

/// Checks that `name` can name a topic; the error says what is wrong with it.
pub fn validate_topic_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::Plan("topic name must not be empty".into()));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(Error::Plan(format!(
            "topic name is {} characters long; the limit is {MAX_TOPIC_NAME_LEN}",
            name.len()
        )));
    }
    if name.starts_with('.') {
        return Err(Error::Plan(format!(
            "topic name {name:?} must not start with '.'"
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(Error::Plan(format!(
            "topic name {name:?} contains {bad:?}; allowed are letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// `{root}/log`: the directory holding every topic.
pub fn log_dir(root: &Path) -> Path {
    root.clone().join("log")
}

/// `{root}/log/{topic}`; `topic` must have been validated.
pub fn topic_dir(root: &Path, topic: &str) -> Path {
    log_dir(root).join(topic)
}

/// `{topic_dir}/{partition:05}`.
pub fn partition_dir(topic_dir: &Path, partition: u32) -> Path {
    topic_dir.clone().join(format!("{partition:05}").as_str())
}

/// `{partition_dir}/{base:020}.arrow`.
pub fn segment_path(partition_dir: &Path, base: u64) -> Path {
    partition_dir
        .clone()
        .join(format!("{base:0OFFSET_DIGITS$}{SEGMENT_SUFFIX}").as_str())
}

/// The base offset named by a segment's file name, or `None` for any other object.
pub fn parse_segment_name(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != OFFSET_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_odd_names_are_refused() {
        let long = "a".repeat(MAX_TOPIC_NAME_LEN + 1);
        for bad in [
            "", ".", "..", "../x", "..%2fx", "%2e%2e", "a/b", "a\\b", ".hidden", "a b", "é", &long,
        ] {
            let err = validate_topic_name(bad).unwrap_err();
            assert!(matches!(err, Error::Plan(_)), "{bad:?}: {err}");
        }
        for good in ["bids", "nexmark.bids-v2", "A_1", "a..b", &"z".repeat(200)] {
            validate_topic_name(good).unwrap();
        }
    }

    #[test]
    fn paths_are_zero_padded_and_parse_back() {
        let dir = partition_dir(&topic_dir(&Path::from(""), "t"), 3);
        assert_eq!(dir.as_ref(), "log/t/00003");
        let seg = segment_path(&dir, 42);
        assert_eq!(seg.as_ref(), "log/t/00003/00000000000000000042.arrow");
        assert_eq!(parse_segment_name(seg.filename().unwrap()), Some(42));
        let rooted = topic_dir(&Path::from("data/root"), "t");
        assert_eq!(rooted.as_ref(), "data/root/log/t");
        for other in [
            "42.arrow",
            "00000000000000000042.arrow#1",
            "topic.json",
            "x.arrow",
        ] {
            assert_eq!(parse_segment_name(other), None, "{other}");
        }
        assert_eq!(
            parse_segment_name(&format!("{}.arrow", u64::MAX)),
            Some(u64::MAX)
        );
    }
}
