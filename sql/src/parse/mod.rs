//! The statement front-end: splits a text into statements and parses runnel's own
//! (`CREATE SOURCE`, `CREATE SINK`, `SHOW`, `DROP SINK`, `EXPLAIN`) around sqlparser,
//! which parses the parts standard SQL has (column definitions, expressions, queries).

mod create_sink;
mod create_source;
pub(crate) mod cursor;
mod options;

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use runnel_connectors::registry::Registry;

use crate::depth::Limits;
use crate::error::{Result, SqlError};
use crate::statement::Statement;
use cursor::{Cursor, DIALECT, describe};

/// Parses every statement of `text` (separated by `;`).
///
/// ```
/// use runnel_sql::{Statement, parse};
/// let statements = parse("SHOW SOURCES; DROP SINK IF EXISTS hot_items").unwrap();
/// assert_eq!(statements[0], Statement::ShowSources);
/// assert_eq!(statements[1], Statement::DropSink { name: "hot_items".into(), if_exists: true });
/// ```
pub fn parse(text: &str) -> Result<Vec<Statement>> {
    parse_with(text, Registry::builtin())
}

/// Parses every statement of `text`, with the connectors of `registry`.
pub fn parse_with(text: &str, registry: &Registry) -> Result<Vec<Statement>> {
    parse_limited(text, registry, Limits::default())
}

/// Parses every statement of `text`, with the connectors of `registry`, refusing
/// expressions nested deeper than `limits` allow.
pub fn parse_limited(text: &str, registry: &Registry, limits: Limits) -> Result<Vec<Statement>> {
    let tokens = Tokenizer::new(&DIALECT, text)
        .tokenize_with_location()
        .map_err(|e| SqlError::at(e.location, e.message))?;
    limits.check_parentheses(&tokens)?;
    let mut statements = Vec::new();
    let mut current: Vec<TokenWithSpan> = Vec::new();
    for token in tokens {
        if token.token == Token::SemiColon {
            if let Some(statement) =
                parse_one(text, std::mem::take(&mut current), registry, limits)?
            {
                statements.push(statement);
            }
        } else {
            current.push(token);
        }
    }
    if let Some(statement) = parse_one(text, current, registry, limits)? {
        statements.push(statement);
    }
    Ok(statements)
}

fn parse_one(
    text: &str,
    tokens: Vec<TokenWithSpan>,
    registry: &Registry,
    limits: Limits,
) -> Result<Option<Statement>> {
    if tokens
        .iter()
        .all(|t| matches!(t.token, Token::Whitespace(_)))
    {
        return Ok(None);
    }
    let mut cursor = Cursor::new(tokens, limits);
    let statement = statement(text, &mut cursor, registry)?;
    cursor.expect_end()?;
    Ok(Some(statement))
}

fn statement(text: &str, cursor: &mut Cursor<'_>, registry: &Registry) -> Result<Statement> {
    if cursor.eat_word("CREATE") {
        if cursor.peek_word("SOURCE") {
            return create_source::parse(cursor, registry).map(Statement::CreateSource);
        }
        if cursor.peek_word("SINK") {
            return create_sink::parse(text, cursor, registry).map(Statement::CreateSink);
        }
        return Err(unexpected(cursor, "SOURCE or SINK after CREATE"));
    }
    if cursor.eat_word("SHOW") {
        for (word, statement) in [
            ("SOURCES", Statement::ShowSources),
            ("SINKS", Statement::ShowSinks),
            ("JOBS", Statement::ShowJobs),
        ] {
            if cursor.eat_word(word) {
                return Ok(statement);
            }
        }
        return Err(unexpected(cursor, "SOURCES, SINKS or JOBS after SHOW"));
    }
    if cursor.eat_word("DROP") {
        cursor.expect_word("SINK", "after DROP (only sinks can be dropped)")?;
        let if_exists = if cursor.eat_word("IF") {
            cursor.expect_word("EXISTS", "after DROP SINK IF")?;
            true
        } else {
            false
        };
        let (name, _) = cursor.identifier("a sink name")?;
        return Ok(Statement::DropSink { name, if_exists });
    }
    if cursor.eat_word("EXPLAIN") {
        cursor.expect_word("CREATE", "after EXPLAIN (EXPLAIN CREATE SINK ...)")?;
        if !cursor.peek_word("SINK") {
            return Err(unexpected(cursor, "SINK after EXPLAIN CREATE"));
        }
        return create_sink::parse(text, cursor, registry).map(Statement::Explain);
    }
    Err(unexpected(
        cursor,
        "CREATE SOURCE, CREATE SINK, SHOW, DROP SINK or EXPLAIN",
    ))
}

fn unexpected(cursor: &Cursor<'_>, expected: &str) -> SqlError {
    cursor.error(format!(
        "expected {expected}, found {}",
        describe(&cursor.parser.peek_token().token)
    ))
}
