//! `WITH (key = 'value', ...)` and the connectors they describe.
//!
//! Keys may be dotted (`nexmark.table`) or quoted; values are strings, numbers or bare
//! words. Every key must be used: a misspelled option is refused at its position rather
//! than silently ignored.

use datafusion::sql::sqlparser::tokenizer::{Location, Token};

use super::cursor::{Cursor, describe};
use crate::error::{Result, SqlError};
use runnel_connectors::registry::{
    ConnectorSpec, OptionError, Options as ConnectorOptions, Registry,
};

/// One `key = value` of a `WITH` clause.
#[derive(Debug, Clone)]
pub(crate) struct OptionValue {
    pub key: String,
    pub value: String,
    pub key_at: Location,
    pub value_at: Location,
}

/// The options of a `WITH` clause, taken one by one by the connector that reads them.
#[derive(Debug, Default)]
pub(crate) struct Options {
    items: Vec<OptionValue>,
    /// Where the `WITH` keyword is, for "missing option" errors.
    at: Option<Location>,
}

impl Options {
    /// Parses `WITH ( ... )` if the next word is `WITH`; no options otherwise.
    pub fn parse(cursor: &mut Cursor<'_>) -> Result<Options> {
        let at = cursor.here();
        if !cursor.eat_word("WITH") {
            return Ok(Options::default());
        }
        cursor.expect(&Token::LParen, "after WITH")?;
        let mut items: Vec<OptionValue> = Vec::new();
        if !cursor.eat(&Token::RParen) {
            loop {
                let item = parse_item(cursor)?;
                if items.iter().any(|i| i.key == item.key) {
                    return Err(SqlError::at(
                        item.key_at,
                        format!("option `{}` is given twice", item.key),
                    ));
                }
                items.push(item);
                if cursor.eat(&Token::RParen) {
                    break;
                }
                cursor.expect(&Token::Comma, "or `)` between options")?;
            }
        }
        Ok(Options {
            items,
            at: Some(at),
        })
    }

    /// Whether the clause was present.
    pub fn is_present(&self) -> bool {
        self.at.is_some()
    }

    /// Removes and returns the option named by any of `keys`.
    pub fn take(&mut self, keys: &[&str]) -> Option<OptionValue> {
        let index = self
            .items
            .iter()
            .position(|i| keys.contains(&i.key.as_str()))?;
        Some(self.items.remove(index))
    }

    /// Takes `'source.idle-timeout-ms'`, which every source connector accepts (the
    /// runtime, not the connector, tracks idle partitions).
    pub fn idle_timeout(&mut self) -> Result<Option<u64>> {
        let Some(item) = self.take(&["source.idle-timeout-ms"]) else {
            return Ok(None);
        };
        match item.value.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(Some(ms)),
            _ => Err(SqlError::at(
                item.value_at,
                format!(
                    "option `{}` must be a positive number of milliseconds, not '{}'",
                    item.key, item.value
                ),
            )),
        }
    }

    fn missing(&self, fallback: Location, message: String) -> SqlError {
        SqlError::at(self.at.unwrap_or(fallback), message)
    }
}

fn parse_item(cursor: &mut Cursor<'_>) -> Result<OptionValue> {
    let key_at = cursor.here();
    let mut key = String::new();
    loop {
        let token = cursor.parser.next_token().token;
        match token {
            Token::Word(w) if w.quote_style.is_none() => key.push_str(&w.value.to_lowercase()),
            Token::Word(w) => key.push_str(&w.value),
            Token::SingleQuotedString(s) => key.push_str(&s),
            other => {
                return Err(SqlError::at(
                    key_at,
                    format!("expected an option name, found {}", describe(&other)),
                ));
            }
        }
        if !cursor.eat(&Token::Period) {
            break;
        }
        key.push('.');
    }
    cursor.expect(&Token::Eq, &format!("after option `{key}`"))?;
    let value_at = cursor.here();
    let value = match cursor.parser.next_token().token {
        Token::SingleQuotedString(s) => s,
        Token::Number(n, _) => n,
        Token::Word(w) => w.value,
        other => {
            return Err(SqlError::at(
                value_at,
                format!(
                    "expected a value for option `{key}`, found {}",
                    describe(&other)
                ),
            ));
        }
    };
    Ok(OptionValue {
        key,
        value,
        key_at,
        value_at,
    })
}

/// The connector of `CREATE SOURCE name ... WITH (...)`, checked by its factory.
pub(crate) fn source_connector(
    options: Options,
    name: &str,
    at: Location,
    registry: &Registry,
) -> Result<ConnectorSpec> {
    let (connector, mut given, locations) =
        options.split(name, at, "source", || registry.source_names())?;
    let factory = registry
        .source(&connector.value.to_lowercase())
        .map_err(|e| SqlError::at(connector.value_at, e.message))?;
    given = factory
        .validate(name, given)
        .map_err(|e| locations.error(e))?;
    Ok(ConnectorSpec::new(factory.name(), given))
}

/// The connector of `CREATE SINK name WITH (...)`; no `WITH` clause means the rows only
/// go to the job's result stream.
pub(crate) fn sink_connector(
    options: Options,
    name: &str,
    registry: &Registry,
) -> Result<Option<ConnectorSpec>> {
    if !options.is_present() {
        return Ok(None);
    }
    let (connector, mut given, locations) =
        options.split(name, Location::new(1, 1), "sink", || registry.sink_names())?;
    let factory = registry
        .sink(&connector.value.to_lowercase())
        .map_err(|e| SqlError::at(connector.value_at, e.message))?;
    given = factory
        .validate(name, given)
        .map_err(|e| locations.error(e))?;
    Ok(Some(ConnectorSpec::new(factory.name(), given)))
}

/// Where each option of a clause was written, to point errors at it.
pub(crate) struct OptionLocations {
    /// Per option: its key, where the key is, where the value is.
    keys: Vec<(String, Location, Location)>,
    clause: Location,
}

impl OptionLocations {
    /// The error at the option it names (its value), or at the clause.
    pub fn error(&self, e: OptionError) -> SqlError {
        let at = e
            .key
            .as_ref()
            .and_then(|k| self.keys.iter().find(|(key, _, _)| key == k))
            .map_or(self.clause, |(_, key_at, value_at)| match e.at_key {
                true => *key_at,
                false => *value_at,
            });
        SqlError::at(at, e.message)
    }
}

impl Options {
    /// The `connector` option, the others as plain options, and where each was.
    fn split(
        mut self,
        name: &str,
        fallback: Location,
        what: &str,
        known: impl Fn() -> String,
    ) -> Result<(OptionValue, ConnectorOptions, OptionLocations)> {
        let Some(connector) = self.take(&["connector"]) else {
            return Err(self.missing(
                fallback,
                format!("{what} `{name}` needs WITH (connector = {}, ...)", known()),
            ));
        };
        let clause = self.at.unwrap_or(fallback);
        let keys = self
            .items
            .iter()
            .map(|i| (i.key.clone(), i.key_at, i.value_at))
            .collect();
        let given = self.items.into_iter().map(|i| (i.key, i.value)).collect();
        Ok((connector, given, OptionLocations { keys, clause }))
    }
}
