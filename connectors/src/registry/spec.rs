//! A connector as a job definition stores it: its name and its options, as text.
//!
//! Options are kept as the connector canonicalized them at submission (defaults filled,
//! aliases resolved), so a stored job opens the same source after an upgrade. Stored
//! definitions written before the registry kept typed fields
//! (`{"connector":"log","topic":"bids","partitions":4}`); they read as the same options.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Options of a connector, by key.
pub type Options = BTreeMap<String, String>;

/// `connector = '...'` and the rest of a `WITH` clause.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ConnectorSpec {
    /// The registry key (`log`, `nexmark`, `iceberg`, `kafka`, ...).
    pub connector: String,
    /// The other options, canonical.
    #[serde(flatten)]
    pub options: Options,
}

impl ConnectorSpec {
    pub fn new(connector: impl Into<String>, options: Options) -> Self {
        ConnectorSpec {
            connector: connector.into(),
            options,
        }
    }

    /// The option `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }
}

impl fmt::Display for ConnectorSpec {
    /// `kafka topic='bids', bootstrap.servers='...'`: what EXPLAIN shows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.connector)?;
        for (i, (key, value)) in self.options.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{key}='{value}'")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for ConnectorSpec {
    /// Accepts any JSON scalar as an option value (numbers and booleans of older
    /// definitions become their text; `null` is an unset option).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            connector: String,
            #[serde(flatten)]
            options: BTreeMap<String, serde_json::Value>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let mut options = Options::new();
        for (key, value) in raw.options {
            let text = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "option `{key}` must be a scalar, not {other}"
                    )));
                }
            };
            options.insert(key, text);
        }
        Ok(ConnectorSpec::new(raw.connector, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_definitions_stored_with_typed_fields() {
        let old = r#"{"connector":"nexmark","table":"bid","seed":0,"events_per_second":10000,"max_events":null,"partitions":2}"#;
        let spec: ConnectorSpec = serde_json::from_str(old).unwrap();
        assert_eq!(spec.connector, "nexmark");
        assert_eq!(spec.get("partitions"), Some("2"));
        assert_eq!(spec.get("max_events"), None);
        let back: ConnectorSpec =
            serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }
}
