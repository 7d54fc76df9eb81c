//! `CREATE SOURCE name (columns..., WATERMARK FOR column AS column - INTERVAL ...)
//! WITH (connector = ...)`.
//!
//! Windows run on event time, so every source declares its event-time column and how
//! late its rows may be. A Nexmark source may omit its columns (they are fixed by the
//! generator) and its watermark (`date_time`, no lateness: the generator is in order).

use arrow::datatypes::{DataType, Schema};
use datafusion::common::DFSchema;
use datafusion::sql::planner::{PlannerContext, SqlToRel};
use datafusion::sql::sqlparser::ast::{self, BinaryOperator, ColumnOption, Spanned};
use datafusion::sql::sqlparser::tokenizer::{Location, Token};
use runnel_connectors::registry::Registry;
use runnel_runtime::time::is_event_time_type;

use super::cursor::{Cursor, normalize};
use super::options::{Options, source_connector};
use crate::error::{Result, SqlError};
use crate::plan::{SqlContext, literal_millis};
use crate::statement::{ColumnDef, SourceDef, WatermarkDef};
use crate::types::SqlType;

/// Parses from `SOURCE` (after `CREATE`).
pub(crate) fn parse(cursor: &mut Cursor<'_>, registry: &Registry) -> Result<SourceDef> {
    let at = cursor.here();
    cursor.expect_word("SOURCE", "after CREATE")?;
    let (name, _) = cursor.identifier("a source name")?;
    let mut columns: Vec<ColumnDef> = Vec::new();
    let mut watermark = None;
    if cursor.eat(&Token::LParen) {
        loop {
            if cursor.peek_word("WATERMARK") {
                let clause_at = cursor.here();
                if watermark.is_some() {
                    return Err(cursor.error("a source has one WATERMARK clause"));
                }
                watermark = Some((watermark_clause(cursor)?, clause_at));
            } else {
                let column = column(cursor, &columns)?;
                columns.push(column);
            }
            if cursor.eat(&Token::RParen) {
                break;
            }
            cursor.expect(&Token::Comma, "or `)` in the column list")?;
        }
    }
    let options_at = cursor.here();
    let mut options = Options::parse(cursor)?;
    let idle_timeout_ms = options.idle_timeout()?;
    if !options.is_present() {
        return Err(SqlError::at(
            options_at,
            format!(
                "source `{name}` needs WITH (connector = {}, ...)",
                registry.source_names()
            ),
        ));
    }
    let connector = source_connector(options, &name, at, registry)?;
    let factory = registry
        .source(&connector.connector)
        .map_err(|e| SqlError::at(options_at, e.message))?;
    if let Some(fixed) = factory.fixed_schema(&connector.options) {
        check_fixed_columns(&mut columns, &fixed.schema, &connector.connector, at)?;
        if watermark.is_none() {
            watermark = Some((
                WatermarkDef {
                    column: fixed.event_time,
                    delay_ms: 0,
                    idle_timeout_ms: None,
                },
                at,
            ));
        }
    }
    check_metadata(&columns, factory.metadata(), &connector.connector, at)?;
    if columns.is_empty() {
        return Err(SqlError::at(
            options_at,
            format!("source `{name}` needs a column list: CREATE SOURCE {name} (column TYPE, ...)"),
        ));
    }
    let Some((mut watermark, watermark_at)) = watermark else {
        return Err(SqlError::at(
            options_at,
            format!(
                "source `{name}` needs an event-time column: add WATERMARK FOR <column> AS \
                 <column> - INTERVAL '5' SECOND to its column list"
            ),
        ));
    };
    let Some(time) = columns.iter().find(|c| c.name == watermark.column) else {
        return Err(SqlError::at(
            watermark_at,
            format!("WATERMARK FOR `{}`: no such column", watermark.column),
        ));
    };
    if !is_event_time_type(&time.data_type.to_arrow()) {
        return Err(SqlError::at(
            watermark_at,
            format!(
                "WATERMARK FOR `{}`: an event-time column is a TIMESTAMP or BIGINT milliseconds",
                watermark.column
            ),
        ));
    }
    watermark.idle_timeout_ms = idle_timeout_ms;
    Ok(SourceDef {
        name,
        columns,
        watermark,
        connector,
    })
}

fn column(cursor: &mut Cursor<'_>, declared: &[ColumnDef]) -> Result<ColumnDef> {
    let at = cursor.here();
    let def = cursor
        .parser
        .parse_column_def()
        .map_err(|e| cursor.parser_error(e))?;
    let name = normalize(&def.name);
    if declared.iter().any(|c| c.name == name) {
        return Err(SqlError::at(
            at,
            format!("column `{name}` is declared twice"),
        ));
    }
    let data_type =
        SqlType::from_sql(&def.data_type).map_err(|m| SqlError::at(type_location(&def, at), m))?;
    let mut nullable = true;
    let metadata = metadata_clause(cursor)?.map(|key| match key.is_empty() {
        true => name.clone(),
        false => key,
    });
    for option in &def.options {
        match &option.option {
            ColumnOption::NotNull => nullable = false,
            ColumnOption::Null => nullable = true,
            other => {
                return Err(SqlError::at(
                    location(option.span(), at),
                    format!("column option `{other}` is not supported (only NULL / NOT NULL)"),
                ));
            }
        }
    }
    Ok(ColumnDef {
        name,
        data_type,
        nullable,
        metadata,
    })
}

/// `METADATA [FROM 'key']` after a column's type: the key defaults to the column name.
fn metadata_clause(cursor: &mut Cursor<'_>) -> Result<Option<String>> {
    if !cursor.eat_word("METADATA") {
        return Ok(None);
    }
    if !cursor.eat_word("FROM") {
        return Ok(Some(String::new()));
    }
    let at = cursor.here();
    match cursor.parser.next_token().token {
        Token::SingleQuotedString(key) => Ok(Some(key)),
        _ => Err(SqlError::at(
            at,
            "expected a quoted metadata key after METADATA FROM (e.g. 'offset')",
        )),
    }
}

/// Metadata columns must name a key the connector offers, with its type.
fn check_metadata(
    columns: &[ColumnDef],
    offered: &[(&str, DataType)],
    connector: &str,
    at: Location,
) -> Result<()> {
    for column in columns {
        let Some(key) = &column.metadata else {
            continue;
        };
        let keys: Vec<&str> = offered.iter().map(|(k, _)| *k).collect();
        let Some((_, data_type)) = offered.iter().find(|(k, _)| k == key) else {
            return Err(SqlError::at(
                at,
                format!(
                    "column `{}`: connector '{connector}' has no metadata '{key}' (it offers: {})",
                    column.name,
                    if keys.is_empty() {
                        "none".to_string()
                    } else {
                        keys.join(", ")
                    }
                ),
            ));
        };
        if &column.data_type.to_arrow() != data_type {
            return Err(SqlError::at(
                at,
                format!(
                    "column `{}`: metadata '{key}' has type {data_type}, not {}",
                    column.name,
                    column.data_type.to_arrow()
                ),
            ));
        }
    }
    Ok(())
}

fn type_location(def: &ast::ColumnDef, fallback: Location) -> Location {
    let name_end = def.name.span.end;
    if name_end.line == 0 {
        fallback
    } else {
        Location::new(name_end.line, name_end.column + 1)
    }
}

fn location(span: datafusion::sql::sqlparser::tokenizer::Span, fallback: Location) -> Location {
    if span.start.line == 0 {
        fallback
    } else {
        span.start
    }
}

/// `WATERMARK FOR column AS column [- INTERVAL ...]`.
fn watermark_clause(cursor: &mut Cursor<'_>) -> Result<WatermarkDef> {
    cursor.expect_word("WATERMARK", "")?;
    cursor.expect_word("FOR", "after WATERMARK")?;
    let (column, _) = cursor.identifier("the event-time column after WATERMARK FOR")?;
    cursor.expect_word("AS", &format!("after WATERMARK FOR {column}"))?;
    let at = cursor.here();
    let expr = cursor
        .parser
        .parse_expr()
        .map_err(|e| cursor.parser_error(e))?;
    cursor.check_depth(&expr, at)?;
    let shape = || {
        SqlError::at(
            at,
            format!(
                "the watermark must be `{column}` or `{column} - INTERVAL '...' SECOND` \
                 (bounded out-of-orderness)"
            ),
        )
    };
    let names_column =
        |e: &ast::Expr| matches!(e, ast::Expr::Identifier(i) if normalize(i) == column);
    let delay_ms = match expr {
        ast::Expr::Identifier(_) if names_column(&expr) => 0,
        ast::Expr::BinaryOp {
            left,
            op: BinaryOperator::Minus,
            right,
        } if names_column(&left) => {
            let right_at = location(right.span(), at);
            let context = SqlContext::empty();
            let value = SqlToRel::new(&context)
                .sql_to_expr(*right, &DFSchema::empty(), &mut PlannerContext::new())
                .map_err(|e| SqlError::at(right_at, e.strip_backtrace()))?;
            literal_millis(&value, "the watermark delay").map_err(|m| SqlError::at(right_at, m))?
        }
        _ => return Err(shape()),
    };
    Ok(WatermarkDef {
        column,
        delay_ms,
        idle_timeout_ms: None,
    })
}

/// Columns a connector fixes: declared ones must match, and none declared means all.
fn check_fixed_columns(
    columns: &mut Vec<ColumnDef>,
    fixed: &Schema,
    connector: &str,
    at: Location,
) -> Result<()> {
    let generated: Vec<ColumnDef> = fixed
        .fields()
        .iter()
        .filter_map(|f| {
            Some(ColumnDef {
                name: f.name().clone(),
                data_type: SqlType::from_arrow(f.data_type())?,
                nullable: f.is_nullable(),
                metadata: None,
            })
        })
        .collect();
    if columns.is_empty() {
        *columns = generated;
        return Ok(());
    }
    let same = columns.len() == generated.len()
        && columns
            .iter()
            .zip(&generated)
            .all(|(a, b)| a.name == b.name && a.data_type == b.data_type);
    if !same {
        let expected: Vec<String> = generated
            .iter()
            .map(|c| format!("{} {:?}", c.name, c.data_type))
            .collect();
        return Err(SqlError::at(
            at,
            format!(
                "a {connector} source has the columns ({}); declare them all in this order \
                 or none",
                expected.join(", ")
            ),
        ));
    }
    // The connector decides nullability (a generator never produces nulls).
    *columns = generated;
    Ok(())
}
