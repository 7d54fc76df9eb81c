//! Reading a connector's options: each key taken once, typed, with errors that name the
//! option so that the SQL layer can point at it.

use std::fmt;
use std::str::FromStr;

use super::spec::Options;

/// An option a connector refused: which one (`None` when the clause as a whole is at
/// fault, e.g. a required option is missing) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    pub key: Option<String>,
    pub message: String,
    /// The key itself is wrong (unknown), not its value.
    pub at_key: bool,
}

impl OptionError {
    pub fn at(key: &str, message: impl Into<String>) -> Self {
        OptionError {
            key: Some(key.to_string()),
            message: message.into(),
            at_key: false,
        }
    }

    /// The key `key` is not an option of the connector.
    pub fn unknown(key: &str, message: impl Into<String>) -> Self {
        OptionError {
            at_key: true,
            ..OptionError::at(key, message)
        }
    }

    pub fn clause(message: impl Into<String>) -> Self {
        OptionError {
            key: None,
            message: message.into(),
            at_key: false,
        }
    }
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OptionError {}

/// The options of one `WITH` clause as a connector consumes them; what it takes goes
/// into the canonical options under the first (canonical) key.
pub struct OptionReader {
    given: Options,
    canonical: Options,
    /// The key each taken option was written as, by canonical key.
    written: Options,
}

impl OptionReader {
    pub fn new(given: Options) -> Self {
        OptionReader {
            given,
            canonical: Options::new(),
            written: Options::new(),
        }
    }

    /// Removes the option named by any of `keys` (the first is canonical): its key as
    /// given and its value.
    fn take_raw(&mut self, keys: &[&str]) -> Option<(String, String)> {
        let key = keys.iter().find(|k| self.given.contains_key(**k))?;
        let value = self.given.remove(*key)?;
        self.written.insert(keys[0].to_string(), key.to_string());
        Some((key.to_string(), value))
    }

    /// An error about the option whose canonical key is `canonical`, at the key the
    /// user wrote.
    pub fn error(&self, canonical: &str, message: impl Into<String>) -> OptionError {
        let key = self
            .written
            .get(canonical)
            .map_or(canonical, String::as_str);
        OptionError::at(key, message)
    }

    /// A text option, kept as given.
    pub fn text(&mut self, keys: &[&str]) -> Option<String> {
        let (_, value) = self.take_raw(keys)?;
        self.canonical.insert(keys[0].to_string(), value.clone());
        Some(value)
    }

    /// A text option that must be present.
    pub fn required(&mut self, keys: &[&str]) -> Result<String, OptionError> {
        self.text(keys)
            .ok_or_else(|| OptionError::clause(format!("option `{}` is required", keys[0])))
    }

    /// A text option or `default`, stored either way.
    pub fn text_or(&mut self, keys: &[&str], default: &str) -> String {
        let value = self.text(keys).unwrap_or_else(|| default.to_string());
        self.canonical.insert(keys[0].to_string(), value.clone());
        value
    }

    /// One of `choices` (case-insensitive), or `default`.
    pub fn choice(
        &mut self,
        keys: &[&str],
        choices: &[&str],
        default: &str,
    ) -> Result<String, OptionError> {
        let value = self.text_or(keys, default).to_lowercase();
        if !choices.contains(&value.as_str()) {
            return Err(self.error(
                keys[0],
                format!(
                    "option `{}` must be one of {}, not '{value}'",
                    keys[0],
                    choices.join(", ")
                ),
            ));
        }
        self.canonical.insert(keys[0].to_string(), value.clone());
        Ok(value)
    }

    /// A parsed option (integers, durations...), stored in its canonical text.
    pub fn parsed<T: FromStr + ToString>(
        &mut self,
        keys: &[&str],
        what: &str,
    ) -> Result<Option<T>, OptionError> {
        let Some((given, value)) = self.take_raw(keys) else {
            return Ok(None);
        };
        let parsed = value.trim().parse::<T>().map_err(|_| {
            OptionError::at(
                &given,
                format!("option `{given}` must be {what}, not '{value}'"),
            )
        })?;
        self.canonical
            .insert(keys[0].to_string(), parsed.to_string());
        Ok(Some(parsed))
    }

    /// A count between 1 and `max`.
    pub fn count(&mut self, keys: &[&str], max: u32) -> Result<Option<u32>, OptionError> {
        let given = keys.iter().find(|k| self.given.contains_key(**k));
        let given = given.map_or(keys[0], |k| *k).to_string();
        match self.parsed::<u64>(keys, "a positive integer")? {
            Some(n) if n >= 1 && n <= u64::from(max) => Ok(Some(n as u32)),
            Some(_) => Err(OptionError::at(
                &given,
                format!("option `{given}` must be between 1 and {max}"),
            )),
            None => Ok(None),
        }
    }

    /// Sets a canonical option the connector derived.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.canonical.insert(key.to_string(), value.into());
    }

    /// Options under `prefix` (e.g. `properties.`), passed through untouched.
    pub fn prefixed(&mut self, prefix: &str) -> Options {
        let keys: Vec<String> = self
            .given
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        let mut out = Options::new();
        for key in keys {
            if let Some(value) = self.given.remove(&key) {
                self.canonical.insert(key.clone(), value.clone());
                out.insert(key, value);
            }
        }
        out
    }

    /// The canonical options; fails on the first option nobody took.
    pub fn finish(self, connector: &str, known: &[&str]) -> Result<Options, OptionError> {
        match self.given.keys().next() {
            None => Ok(self.canonical),
            Some(key) => Err(OptionError::unknown(
                key,
                format!(
                    "unknown option `{key}` for connector '{connector}' (known: connector, {})",
                    known.join(", ")
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(pairs: &[(&str, &str)]) -> OptionReader {
        OptionReader::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn aliases_become_canonical_and_leftovers_are_named() {
        let mut r = reader(&[("rate", "5"), ("oops", "1")]);
        assert_eq!(
            r.parsed::<u64>(&["events_per_second", "rate"], "n")
                .unwrap(),
            Some(5)
        );
        let err = r.finish("nexmark", &["events_per_second"]).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("oops"));
        let mut r = reader(&[("rate", "5")]);
        r.parsed::<u64>(&["events_per_second", "rate"], "n")
            .unwrap();
        let canonical = r.finish("nexmark", &[]).unwrap();
        assert_eq!(
            canonical.get("events_per_second").map(String::as_str),
            Some("5")
        );
    }

    #[test]
    fn bad_values_name_the_key_as_written() {
        let mut r = reader(&[("partitions", "0")]);
        assert_eq!(
            r.count(&["partitions"], 10).unwrap_err().key.as_deref(),
            Some("partitions")
        );
        let mut r = reader(&[("mode", "sideways")]);
        let err = r.choice(&["mode"], &["a", "b"], "a").unwrap_err();
        assert!(err.message.contains("one of a, b"), "{err}");
    }
}
