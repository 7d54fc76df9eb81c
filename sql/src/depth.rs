//! A bound on how deeply expressions nest.
//!
//! sqlparser parses a left-deep chain such as `1 + 1 + ... + 1` in a loop, but the tree it
//! returns is as deep as the chain is long, and every later pass over it (DataFusion's
//! planner, type coercion, optimizer, the unparser, even dropping it) recurses once per
//! level. A few hundred levels overflow a thread's stack and abort the process, so every
//! parsed query and expression is measured here before anything else walks it. The walk
//! itself stops at the limit, so measuring a hostile tree is cheap and shallow.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Visit, Visitor};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::error::{Result, SqlError};
use crate::parse::cursor::DIALECT;

/// Default of [`Limits::max_expr_depth`]: deeper than any hand-written query, shallow
/// enough that DataFusion plans it on an ordinary thread's stack.
pub const DEFAULT_MAX_EXPR_DEPTH: usize = 64;

/// Bounds on what one SQL text may ask of the planner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of expressions (each operator, function call or subquery is a
    /// level; `a + b + c` is two), also the parser's recursion limit.
    pub max_expr_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_expr_depth: DEFAULT_MAX_EXPR_DEPTH,
        }
    }
}

impl Limits {
    /// The message of a text that nests deeper than the limit.
    pub fn too_deep(&self) -> String {
        format!(
            "expressions are nested too deep: the limit is {} levels (max_expr_depth)",
            self.max_expr_depth
        )
    }

    /// Refuses tokens whose parentheses nest deeper than the limit, before the parser
    /// sees them: sqlparser backtracks over nested `NOT (` and similar prefixes, so
    /// such a text ties it up for minutes long before its recursion limit is reached.
    pub(crate) fn check_parentheses(&self, tokens: &[TokenWithSpan]) -> Result<()> {
        let mut depth = 0usize;
        for token in tokens {
            match token.token {
                Token::LParen => {
                    depth += 1;
                    if depth > self.max_expr_depth {
                        return Err(SqlError::at(token.span.start, self.too_deep()));
                    }
                }
                Token::RParen => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether the expressions of `node` (a query, statement or expression) nest no
    /// deeper than the limit.
    pub(crate) fn fits(&self, node: &impl Visit) -> bool {
        let mut meter = DepthMeter {
            depth: 0,
            limit: self.max_expr_depth,
        };
        node.visit(&mut meter).is_continue()
    }
}

/// Refuses a standard SQL text (a `/v1/query` body) whose expressions nest deeper than
/// `limits` allow; other syntax errors are left for the planner to report.
///
/// ```
/// let limits = runnel_sql::Limits { max_expr_depth: 8 };
/// assert!(runnel_sql::check_query_depth("SELECT 1 + 1", limits).is_ok());
/// assert!(runnel_sql::check_query_depth(&format!("SELECT {}", vec!["1"; 20].join("+")), limits).is_err());
/// ```
pub fn check_query_depth(sql: &str, limits: Limits) -> Result<()> {
    if let Ok(tokens) = Tokenizer::new(&DIALECT, sql).tokenize_with_location() {
        limits.check_parentheses(&tokens)?;
    }
    let parsed = Parser::new(&DIALECT)
        .with_recursion_limit(limits.max_expr_depth)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements());
    let fits = match &parsed {
        Ok(statements) => statements.iter().all(|s| limits.fits(s)),
        Err(ParserError::RecursionLimitExceeded) => false,
        Err(_) => true,
    };
    if fits {
        Ok(())
    } else {
        Err(SqlError::at(Location::new(1, 1), limits.too_deep()))
    }
}

/// Counts open expressions on the way down; breaks as soon as there are too many.
struct DepthMeter {
    depth: usize,
    limit: usize,
}

impl Visitor for DepthMeter {
    type Break = ();

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > self.limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn expr(sql: &str) -> Expr {
        Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_expr()
            .unwrap()
    }

    #[test]
    fn a_left_deep_chain_is_as_deep_as_it_is_long() {
        let limits = Limits { max_expr_depth: 10 };
        // Ten terms: nine operators over one leaf.
        assert!(limits.fits(&expr(&["1"; 9].join(" + "))));
        assert!(!limits.fits(&expr(&["1"; 11].join(" + "))));
        assert!(!limits.fits(&expr(&vec!["a"; 500].join(" AND "))));
    }

    #[test]
    fn wide_expressions_are_not_deep() {
        let limits = Limits { max_expr_depth: 10 };
        let wide = format!("f({})", vec!["a + b"; 200].join(", "));
        assert!(limits.fits(&expr(&wide)));
    }
}

#[cfg(test)]
mod query_tests {
    use super::*;

    /// sqlparser's frames are large in unoptimized builds: parse on a roomy stack, as the
    /// server does.
    #[test]
    fn nested_parentheses_are_refused_before_parsing() {
        let limits = Limits::default();
        let sql = format!("SELECT {}true{}", "NOT (".repeat(2000), ")".repeat(2000));
        let error = check_query_depth(&sql, limits).unwrap_err();
        assert!(error.message.contains("too deep"), "{}", error.message);
        let fine = format!("SELECT {}1{}", "(".repeat(10), ")".repeat(10));
        assert!(check_query_depth(&fine, limits).is_ok());
    }

    #[test]
    fn hostile_queries_are_refused_as_too_deep() {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(refuse_hostile_queries)
            .unwrap()
            .join()
            .unwrap();
    }

    fn refuse_hostile_queries() {
        let limits = Limits::default();
        for sql in [
            format!("SELECT {}true{}", "NOT (".repeat(2000), ")".repeat(2000)),
            format!("SELECT {}1", "- ".repeat(2000)),
            format!("SELECT {}1{}", "(".repeat(1000), ")".repeat(1000)),
            format!("SELECT {}", vec!["'a'"; 1000].join(" || ")),
        ] {
            let err = check_query_depth(&sql, limits).unwrap_err();
            assert!(err.message.contains("too deep"), "{err}");
        }
        assert!(check_query_depth("SELECT 1 + 2 WHERE NOT false", limits).is_ok());
    }
}
