//! Names and object paths of a job's checkpoint data.
//!
//! Everything a job checkpoints lives under one directory of the object-store root:
//!
//! ```text
//! {root}/jobs/{job}/manifests/{seq:020}.json                                  the chain
//! {root}/jobs/{job}/checkpoints/{epoch:020}-g{generation}/{node}/{subtask:05}.arrow
//! ```
//!
//! Job and node names are validated before any path is built (`[A-Za-z0-9._-]`, no
//! leading `.`, so no `..` traversal and no hidden files), because both reach us from
//! users. Numbers are zero-padded so that the lexicographic order of object names is the
//! numeric order, which lets a writer list only the manifests after its own.
//!
//! State files are referenced from manifests by their path *relative to the job
//! directory* (`checkpoints/...`), so a job's data can be moved to another root. A path
//! read back from a manifest is re-parsed with [`parse_state_path`] before it is used:
//! a damaged manifest can never make us read or delete outside the job directory.

use object_store::path::Path;

use crate::error::{Error, Result};

/// Longest accepted job or node name.
pub const MAX_NAME_LEN: usize = 200;

const SEQ_DIGITS: usize = 20;
const MANIFEST_SUFFIX: &str = ".json";
const STATE_SUFFIX: &str = ".arrow";
const CHECKPOINTS: &str = "checkpoints";

/// Checks that `name` may name a job (`what` = "job") or a node (`what` = "node").
pub fn validate_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::Plan(format!("{what} name must not be empty")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::Plan(format!(
            "{what} name is {} characters long; the limit is {MAX_NAME_LEN}",
            name.len()
        )));
    }
    if name.starts_with('.') {
        return Err(Error::Plan(format!(
            "{what} name {name:?} must not start with '.'"
        )));
    }
    if let Some(bad) = name.chars().find(|c| !is_name_char(*c)) {
        return Err(Error::Plan(format!(
            "{what} name {name:?} contains {bad:?}; allowed are letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// `{root}/jobs/{job}`; `job` must have been validated.
pub fn job_dir(root: &Path, job: &str) -> Path {
    root.clone().join("jobs").join(job)
}

/// `{job_dir}/manifests`.
pub fn manifest_dir(job_dir: &Path) -> Path {
    job_dir.clone().join("manifests")
}

/// `{job_dir}/manifests/{seq:020}.json`.
pub fn manifest_path(job_dir: &Path, seq: u64) -> Path {
    manifest_dir(job_dir).join(format!("{seq:0SEQ_DIGITS$}{MANIFEST_SUFFIX}").as_str())
}

/// The sequence number named by a manifest's file name, or `None` for any other object.
pub fn parse_manifest_name(file_name: &str) -> Option<u64> {
    parse_padded(file_name.strip_suffix(MANIFEST_SUFFIX)?)
}

/// `{job_dir}/checkpoints`: every state file of the job is below it.
pub fn checkpoints_dir(job_dir: &Path) -> Path {
    job_dir.clone().join(CHECKPOINTS)
}

/// Where one subtask's state of one checkpoint goes, as parsed from a relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFileKey {
    pub epoch: u64,
    /// Generation of the instance that wrote the file: a zombie and its successor never
    /// write the same path, even for the same epoch.
    pub generation: u64,
    pub node: String,
    pub subtask: usize,
}

impl StateFileKey {
    /// `checkpoints/{epoch:020}-g{generation}/{node}/{subtask:05}.arrow`, relative to the
    /// job directory; fails if the node name is not valid in a path.
    pub fn relative_path(&self) -> Result<String> {
        validate_name("node", &self.node)?;
        Ok(format!(
            "{CHECKPOINTS}/{:0SEQ_DIGITS$}-g{}/{}/{:05}{STATE_SUFFIX}",
            self.epoch, self.generation, self.node, self.subtask
        ))
    }
}

/// Parses a relative state-file path written by [`StateFileKey::relative_path`]; `None`
/// for anything else (such objects are never read or deleted by the protocol).
pub fn parse_state_path(relative: &str) -> Option<StateFileKey> {
    let mut parts = relative.split('/');
    let (top, dir, node, file) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if top != CHECKPOINTS || parts.next().is_some() {
        return None;
    }
    let (epoch, generation) = dir.split_once("-g")?;
    let generation = generation.parse().ok().filter(|_| is_decimal(generation))?;
    validate_name("node", node).ok()?;
    let subtask = file.strip_suffix(STATE_SUFFIX)?;
    if subtask.len() < 5 || !is_decimal(subtask) {
        return None;
    }
    Some(StateFileKey {
        epoch: parse_padded(epoch)?,
        generation,
        node: node.to_string(),
        subtask: subtask.parse().ok()?,
    })
}

/// The object path of a relative state path, if it is one [`parse_state_path`] accepts.
pub fn state_object_path(job_dir: &Path, relative: &str) -> Option<Path> {
    parse_state_path(relative)?;
    Some(
        relative
            .split('/')
            .fold(job_dir.clone(), |path, part| path.join(part)),
    )
}

fn parse_padded(digits: &str) -> Option<u64> {
    if digits.len() != SEQ_DIGITS || !is_decimal(digits) {
        return None;
    }
    digits.parse().ok()
}

fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_odd_names_are_refused() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a b", "é", &long,
        ] {
            let err = validate_name("job", bad).unwrap_err();
            assert!(matches!(err, Error::Plan(_)), "{bad:?}: {err}");
        }
        for good in ["q5", "hot-items.v2", "A_1", "a..b"] {
            validate_name("job", good).unwrap();
        }
    }

    #[test]
    fn manifest_paths_are_zero_padded_and_parse_back() {
        let dir = job_dir(&Path::from("data"), "q5");
        let path = manifest_path(&dir, 42);
        assert_eq!(
            path.as_ref(),
            "data/jobs/q5/manifests/00000000000000000042.json"
        );
        assert_eq!(parse_manifest_name(path.filename().unwrap()), Some(42));
        for other in ["42.json", "00000000000000000042.json.tmp", "x.json", ""] {
            assert_eq!(parse_manifest_name(other), None, "{other}");
        }
    }

    #[test]
    fn state_paths_round_trip_and_reject_anything_else() {
        let key = StateFileKey {
            epoch: 7,
            generation: 3,
            node: "window".into(),
            subtask: 12,
        };
        let rel = key.relative_path().unwrap();
        assert_eq!(
            rel,
            "checkpoints/00000000000000000007-g3/window/00012.arrow"
        );
        assert_eq!(parse_state_path(&rel), Some(key));
        let full = state_object_path(&job_dir(&Path::from("r"), "j"), &rel).unwrap();
        assert_eq!(full.as_ref(), format!("r/jobs/j/{rel}"));
        for bad in [
            "checkpoints/00000000000000000007-g3/../00012.arrow",
            "checkpoints/00000000000000000007-g3/w/00012.arrow/x",
            "checkpoints/7-g3/w/00012.arrow",
            "checkpoints/00000000000000000007-g/w/00012.arrow",
            "checkpoints/00000000000000000007-g3/w/12.arrow",
            "checkpoints/00000000000000000007-g3/w/00012.parquet",
            "../checkpoints/00000000000000000007-g3/w/00012.arrow",
            "other/00000000000000000007-g3/w/00012.arrow",
        ] {
            assert_eq!(parse_state_path(bad), None, "{bad}");
            assert!(state_object_path(&Path::from("r"), bad).is_none());
        }
        let bad_node = StateFileKey {
            node: "my window".into(),
            ..parse_state_path(&rel).unwrap()
        };
        assert!(bad_node.relative_path().is_err());
    }
}
