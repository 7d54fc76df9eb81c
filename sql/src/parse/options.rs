//! `WITH (key = 'value', ...)` and the connectors they describe.
//!
//! Keys may be dotted (`nexmark.table`) or quoted; values are strings, numbers or bare
//! words. Every key must be used: a misspelled option is refused at its position rather
//! than silently ignored.

use datafusion::sql::sqlparser::tokenizer::{Location, Token};

use super::cursor::{Cursor, describe};
use crate::error::{Result, SqlError};
use crate::statement::{SinkConnector, SourceConnector};

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

    /// A string option, or `default`.
    pub fn string(&mut self, keys: &[&str], default: &str) -> String {
        self.take(keys)
            .map_or_else(|| default.to_string(), |item| item.value)
    }

    /// A non-negative integer option.
    pub fn number(&mut self, keys: &[&str]) -> Result<Option<u64>> {
        let Some(item) = self.take(keys) else {
            return Ok(None);
        };
        item.value.trim().parse::<u64>().map(Some).map_err(|_| {
            SqlError::at(
                item.value_at,
                format!(
                    "option `{}` must be a non-negative integer, not '{}'",
                    item.key, item.value
                ),
            )
        })
    }

    /// A positive integer option that fits `u32`.
    pub fn count(&mut self, keys: &[&str]) -> Result<Option<u32>> {
        let at = self.items.iter().find(|i| keys.contains(&i.key.as_str()));
        let at = at.map(|i| (i.key.clone(), i.value_at));
        match (self.number(keys)?, at) {
            (Some(n), Some((key, at))) => match u32::try_from(n) {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(SqlError::at(
                    at,
                    format!("option `{key}` must be between 1 and {}", u32::MAX),
                )),
            },
            _ => Ok(None),
        }
    }

    /// Fails on the first option nobody took.
    pub fn finish(self, known: &str) -> Result<()> {
        match self.items.first() {
            None => Ok(()),
            Some(item) => Err(SqlError::at(
                item.key_at,
                format!("unknown option `{}` (known: {known})", item.key),
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

/// The connector of `CREATE SOURCE name ... WITH (...)`.
pub(crate) fn source_connector(
    mut options: Options,
    name: &str,
    at: Location,
) -> Result<SourceConnector> {
    let Some(connector) = options.take(&["connector"]) else {
        return Err(options.missing(
            at,
            format!("source `{name}` needs WITH (connector = 'log' | 'nexmark', ...)"),
        ));
    };
    let connector_name = connector.value.to_lowercase();
    let source = match connector_name.as_str() {
        "log" => {
            let topic = options.string(&["topic"], name);
            let partitions = options.count(&["partitions"])?.unwrap_or(1);
            options.finish("connector, topic, partitions")?;
            SourceConnector::Log { topic, partitions }
        }
        "nexmark" => {
            let table = options.take(&["type", "table", "nexmark.table.type"]);
            let table = match table {
                None => "bid".to_string(),
                Some(item) => {
                    let parsed = item
                        .value
                        .parse::<runnel_connectors::nexmark::NexmarkTable>()
                        .map_err(|_| {
                            SqlError::at(
                                item.value_at,
                                format!(
                                    "unknown Nexmark event type '{}': expected bid, auction or person",
                                    item.value
                                ),
                            )
                        })?;
                    parsed.name().to_string()
                }
            };
            let events_per_second = options
                .number(&["rate", "events_per_second"])?
                .unwrap_or(10_000);
            let seed = options.number(&["seed"])?.unwrap_or(0);
            let max_events = options.number(&["max_events", "nexmark.event.num"])?;
            let partitions = options.count(&["partitions"])?.unwrap_or(1);
            options.finish("connector, type, rate, seed, max_events, partitions")?;
            SourceConnector::Nexmark {
                table,
                seed,
                events_per_second,
                max_events,
                partitions,
            }
        }
        other => {
            return Err(SqlError::at(
                connector.value_at,
                format!("unknown source connector '{other}': expected 'log' or 'nexmark'"),
            ));
        }
    };
    Ok(source)
}

/// The connector of `CREATE SINK name WITH (...)`; no `WITH` clause means the rows only
/// go to the job's result stream.
pub(crate) fn sink_connector(mut options: Options, name: &str) -> Result<SinkConnector> {
    if !options.is_present() {
        return Ok(SinkConnector::Results);
    }
    let Some(connector) = options.take(&["connector"]) else {
        return Err(options.missing(
            Location::new(1, 1),
            format!("sink `{name}` needs connector = 'log' | 'iceberg' in its WITH clause"),
        ));
    };
    let sink = match connector.value.to_lowercase().as_str() {
        "log" => {
            let topic = options.string(&["topic"], name);
            let partitions = options.count(&["partitions"])?;
            options.finish("connector, topic, partitions")?;
            SinkConnector::Log { topic, partitions }
        }
        "iceberg" => {
            let table = options.string(&["table"], name);
            options.finish("connector, table")?;
            SinkConnector::Iceberg { table }
        }
        other => {
            return Err(SqlError::at(
                connector.value_at,
                format!("unknown sink connector '{other}': expected 'log' or 'iceberg'"),
            ));
        }
    };
    Ok(sink)
}
