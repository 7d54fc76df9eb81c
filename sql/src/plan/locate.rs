//! Pointing a planning error at the token it is about.
//!
//! DataFusion's planner attaches a source span to some errors (unknown columns and
//! tables, the window table functions' own errors); the rest, and the refusals of the
//! translation, name what they are about (a keyword, a function, a column) and are
//! located at its first occurrence in the query's tokens.

use datafusion::common::{DataFusionError, Span};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan};

use crate::error::SqlError;
use crate::parse::cursor::is_word;

/// What a translation error is about, to locate it.
#[derive(Debug, Clone)]
pub(crate) enum Hint {
    /// Nothing in particular: the start of the query.
    None,
    /// The first occurrence of a word (keyword or identifier) or symbol.
    Word(String),
    /// The first word of the list that occurs (in the list's order of preference).
    FirstOf(Vec<String>),
    /// A function call `name(`.
    Call(String),
    /// A known span.
    Span(Span),
}

/// A refusal of the translation.
#[derive(Debug, Clone)]
pub(crate) struct TranslateError {
    pub message: String,
    pub hint: Hint,
}

impl TranslateError {
    pub fn new(message: impl Into<String>, hint: Hint) -> Self {
        TranslateError {
            message: message.into(),
            hint,
        }
    }
}

/// The tokens of a query, to find what an error is about.
pub(crate) struct Locator {
    tokens: Vec<TokenWithSpan>,
    start: Location,
}

impl Locator {
    pub fn new(tokens: Vec<TokenWithSpan>, start: Location) -> Self {
        let tokens = tokens
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        Locator { tokens, start }
    }

    fn word(&self, word: &str) -> Option<Location> {
        self.tokens
            .iter()
            .find(|t| {
                is_word(&t.token, word)
                    || matches_ident(&t.token, word)
                    || t.token.to_string() == word
            })
            .map(|t| t.span.start)
    }

    fn call(&self, name: &str) -> Option<Location> {
        self.tokens
            .windows(2)
            .find(|w| {
                (is_word(&w[0].token, name) || matches_ident(&w[0].token, name))
                    && w[1].token == Token::LParen
            })
            .map(|w| w[0].span.start)
    }

    fn find(&self, hint: &Hint) -> Option<Location> {
        match hint {
            Hint::None => None,
            Hint::Word(word) => self.word(word),
            Hint::FirstOf(words) => words.iter().find_map(|w| self.word(w)),
            Hint::Call(name) => self.call(name).or_else(|| self.word(name)),
            Hint::Span(span) => Some(Location::new(span.start.line, span.start.column)),
        }
    }

    /// A refusal of the translation, located.
    pub fn translate_error(&self, error: TranslateError) -> SqlError {
        SqlError::at(self.find(&error.hint).unwrap_or(self.start), error.message)
    }

    /// A DataFusion planning error, located by its span or by the first name it quotes
    /// that occurs in the query.
    pub fn datafusion_error(&self, error: DataFusionError) -> SqlError {
        let located = error
            .diagnostic()
            .and_then(|d| d.span)
            .map(|s| Location::new(s.start.line, s.start.column));
        let message = clean_message(&error);
        let location = located
            .or_else(|| {
                quoted_names(&message)
                    .iter()
                    .find_map(|name| self.call(name).or_else(|| self.word(name)))
            })
            .unwrap_or(self.start);
        SqlError::at(location, message)
    }
}

fn matches_ident(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.value == word)
}

/// The error's message without DataFusion's `Error during planning: ` prefixes.
fn clean_message(error: &DataFusionError) -> String {
    let mut error = error;
    while let DataFusionError::Diagnostic(_, inner) | DataFusionError::Context(_, inner) = error {
        error = inner;
    }
    let text = match error {
        DataFusionError::Plan(m) | DataFusionError::NotImplemented(m) => m.clone(),
        DataFusionError::SchemaError(e, _) => e.to_string(),
        other => other.strip_backtrace(),
    };
    no_matching_function(&text).unwrap_or_else(|| text.trim().to_string())
}

/// DataFusion's long report of a function called with the wrong types, shortened to
/// the call and the accepted signatures.
fn no_matching_function(text: &str) -> Option<String> {
    const MARKER: &str = "No function matches the given name and argument types '";
    let start = text.find(MARKER)? + MARKER.len();
    let call = text[start..].split('\'').next()?;
    let candidates: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("Candidate functions:"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Some(format!(
        "no function matches the argument types of {call} (accepted: {})",
        candidates.join(", ")
    ))
}

/// Functions called (`sum(...)`) and names quoted with `'` or `` ` `` in a message.
fn quoted_names(message: &str) -> Vec<String> {
    let mut names = Vec::new();
    let calls = message
        .split_whitespace()
        .filter_map(|w| w.split_once('('))
        .map(|(f, _)| f);
    for name in
        calls.filter(|f| !f.is_empty() && f.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        names.push(name.to_string());
    }
    for quote in ['\'', '`'] {
        let mut parts = message.split(quote);
        parts.next();
        while let Some(inside) = parts.next() {
            let inside = inside.split('(').next().unwrap_or(inside);
            let name = inside.rsplit('.').next().unwrap_or(inside);
            if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                names.push(name.to_string());
            }
            parts.next();
        }
    }
    names
}
