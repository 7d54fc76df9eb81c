//! `CREATE SINK name [WITH (connector = ...)] AS query`.
//!
//! The query is checked for syntax here and kept as text with its position; it is
//! planned against the declared sources by [`crate::plan_sink`].

use datafusion::sql::sqlparser::tokenizer::Location;

use runnel_connectors::registry::Registry;

use super::cursor::Cursor;
use super::options::{Options, sink_connector};
use crate::error::Result;
use crate::statement::{QueryText, SinkDef};

/// Parses from `SINK` (after `CREATE`).
pub(crate) fn parse(text: &str, cursor: &mut Cursor<'_>, registry: &Registry) -> Result<SinkDef> {
    cursor.expect_word("SINK", "after CREATE")?;
    let (name, _) = cursor.identifier("a sink name")?;
    let options = Options::parse(cursor)?;
    let connector = sink_connector(options, &name, registry)?;
    cursor.expect_word(
        "AS",
        "before the sink's query (CREATE SINK name AS SELECT ...)",
    )?;
    let start = cursor.here();
    let query = cursor
        .parser
        .parse_query()
        .map_err(|e| cursor.parser_error(e))?;
    cursor.check_depth(&query, start)?;
    let end = cursor.here();
    let sql = slice(text, start, end).trim_end().to_string();
    Ok(SinkDef {
        name,
        connector,
        query: QueryText {
            sql,
            line: start.line,
            column: start.column,
        },
    })
}

/// The text between two locations.
fn slice(text: &str, from: Location, to: Location) -> &str {
    let (a, b) = (offset(text, from), offset(text, to));
    if a <= b { &text[a..b] } else { "" }
}

/// The byte offset of a (1-based, character-counted) location.
fn offset(text: &str, at: Location) -> usize {
    let mut line = 1;
    let mut column = 1;
    for (i, c) in text.char_indices() {
        if line == at.line && column == at.column {
            return i;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    text.len()
}
