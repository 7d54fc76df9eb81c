//! Interval literals (`INTERVAL '10' SECOND`) as whole milliseconds.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::Expr;

/// The length of an interval literal in milliseconds, or why it is not one.
pub(crate) fn literal_millis(expr: &Expr, what: &str) -> Result<u64, String> {
    let not_interval =
        || format!("{what} must be an interval literal such as INTERVAL '10' SECOND");
    let Expr::Literal(value, _) = expr else {
        return Err(not_interval());
    };
    let nanos: i128 = match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            if v.months != 0 {
                return Err(format!(
                    "{what} cannot be counted in months: months have no fixed length"
                ));
            }
            i128::from(v.days) * 86_400_000_000_000 + i128::from(v.nanoseconds)
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            (i128::from(v.days) * 86_400_000 + i128::from(v.milliseconds)) * 1_000_000
        }
        ScalarValue::IntervalYearMonth(Some(_)) => {
            return Err(format!(
                "{what} cannot be counted in months: months have no fixed length"
            ));
        }
        _ => return Err(not_interval()),
    };
    if nanos % 1_000_000 != 0 {
        return Err(format!("{what} must be a whole number of milliseconds"));
    }
    u64::try_from(nanos / 1_000_000).map_err(|_| format!("{what} must not be negative"))
}
