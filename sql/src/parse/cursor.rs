//! A cursor over the tokens of one statement: sqlparser's `Parser` for the parts it
//! knows (identifiers, column definitions, expressions, queries) plus the few words of
//! runnel's own statements, every error located at a token.

use datafusion::sql::sqlparser::ast::{Ident, Visit};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan};

use crate::depth::Limits;
use crate::error::{Result, SqlError};

/// The dialect of every text this crate parses.
pub(crate) static DIALECT: GenericDialect = GenericDialect {};

/// The tokens of one statement, being consumed.
pub(crate) struct Cursor<'a> {
    pub parser: Parser<'a>,
    /// Bounds on what the statement may ask of the planner.
    pub limits: Limits,
    /// Just past the statement's last token: where "unexpected end" errors point.
    end: Location,
}

impl<'a> Cursor<'a> {
    /// A cursor over `tokens` (whitespace included), parsing within `limits`.
    pub fn new(tokens: Vec<TokenWithSpan>, limits: Limits) -> Self {
        let end = tokens
            .iter()
            .rev()
            .find(|t| !matches!(t.token, Token::Whitespace(_)))
            .map(|t| t.span.end)
            .unwrap_or(Location::new(1, 1));
        Cursor {
            parser: Parser::new(&DIALECT)
                .with_recursion_limit(limits.max_expr_depth)
                .with_tokens_with_locations(tokens),
            limits,
            end,
        }
    }

    /// Where the next token starts (the statement's end at EOF).
    pub fn here(&self) -> Location {
        self.location_of(&self.parser.peek_token())
    }

    /// Where `token` starts.
    pub fn location_of(&self, token: &TokenWithSpan) -> Location {
        if token.token == Token::EOF || token.span.start.line == 0 {
            self.end
        } else {
            token.span.start
        }
    }

    /// An error at the next token.
    pub fn error(&self, message: impl Into<String>) -> SqlError {
        SqlError::at(self.here(), message)
    }

    /// Whether the next token is the (unquoted) word `word`.
    pub fn peek_word(&self, word: &str) -> bool {
        is_word(&self.parser.peek_token().token, word)
    }

    /// Consumes the word `word` if it is next.
    pub fn eat_word(&mut self, word: &str) -> bool {
        let found = self.peek_word(word);
        if found {
            self.parser.next_token();
        }
        found
    }

    /// Consumes the word `word`, or fails saying what was expected.
    pub fn expect_word(&mut self, word: &str, context: &str) -> Result<()> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.error(format!(
                "expected {word} {context}, found {}",
                describe(&self.parser.peek_token().token)
            )))
        }
    }

    /// Consumes `token` if it is next.
    pub fn eat(&mut self, token: &Token) -> bool {
        self.parser.consume_token(token)
    }

    /// Consumes `token`, or fails saying what was expected.
    pub fn expect(&mut self, token: &Token, context: &str) -> Result<()> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(format!(
                "expected {token} {context}, found {}",
                describe(&self.parser.peek_token().token)
            )))
        }
    }

    /// An identifier (lower-cased unless quoted, as DataFusion resolves names) and where
    /// it starts.
    pub fn identifier(&mut self, what: &str) -> Result<(String, Location)> {
        let at = self.here();
        match &self.parser.peek_token().token {
            Token::Word(_) => {}
            other => {
                return Err(SqlError::at(
                    at,
                    format!("expected {what}, found {}", describe(other)),
                ));
            }
        }
        let ident = self
            .parser
            .parse_identifier()
            .map_err(|e| self.parser_error(e))?;
        Ok((normalize(&ident), at))
    }

    /// Fails unless every token was consumed.
    pub fn expect_end(&self) -> Result<()> {
        let next = self.parser.peek_token();
        if next.token == Token::EOF {
            Ok(())
        } else {
            Err(self.error(format!(
                "unexpected {} after the end of the statement",
                describe(&next.token)
            )))
        }
    }

    /// Refuses `node` (parsed at `at`) when its expressions nest deeper than the limit.
    pub fn check_depth(&self, node: &impl Visit, at: Location) -> Result<()> {
        if self.limits.fits(node) {
            Ok(())
        } else {
            Err(SqlError::at(at, self.limits.too_deep()))
        }
    }

    /// A sqlparser error, located at the position its message names (or the next token).
    pub fn parser_error(&self, error: ParserError) -> SqlError {
        parser_error(error, self.here())
    }
}

/// A sqlparser error as a [`SqlError`]: sqlparser appends ` at Line: L, Column: C`.
pub(crate) fn parser_error(error: ParserError, fallback: Location) -> SqlError {
    let message = match error {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => "the statement is nested too deeply".to_string(),
    };
    if let Some((text, at)) = message.rsplit_once(" at Line: ")
        && let Some((line, column)) = at.split_once(", Column: ")
        && let (Ok(line), Ok(column)) = (line.parse(), column.parse())
    {
        return SqlError::at(Location::new(line, column), tidy(text));
    }
    SqlError::at(fallback, tidy(&message))
}

/// sqlparser says `Expected: X, found: Y`; this crate says `expected X, found Y`.
fn tidy(message: &str) -> String {
    message
        .replacen("Expected: ", "expected ", 1)
        .replacen(", found: ", ", found ", 1)
}

/// Whether `token` is the unquoted word `word` (any case).
pub(crate) fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// A name as SQL resolves it: unquoted names are case-insensitive (lower-cased).
pub(crate) fn normalize(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// A token for an error message.
pub(crate) fn describe(token: &Token) -> String {
    match token {
        Token::EOF => "the end of the statement".to_string(),
        Token::Word(w) if w.quote_style.is_none() => w.value.to_uppercase(),
        other => format!("`{other}`"),
    }
}
