//! The column types a `CREATE SOURCE` may declare, and their Arrow types.
//!
//! A small closed set rather than every SQL type: these are the types the connectors
//! produce and the operators aggregate, and a closed enum serializes into a job
//! definition without depending on Arrow's serde support.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::sql::sqlparser::ast::{self, TimezoneInfo};
use serde::{Deserialize, Serialize};

/// A declared column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqlType {
    /// `BOOLEAN`
    Boolean,
    /// `SMALLINT`: Int16.
    SmallInt,
    /// `INT`, `INTEGER`: Int32.
    Int,
    /// `BIGINT`: Int64.
    BigInt,
    /// `REAL`, `FLOAT4`: Float32.
    Real,
    /// `DOUBLE`, `FLOAT`, `FLOAT8`: Float64.
    Double,
    /// `VARCHAR`, `TEXT`, `STRING`: Utf8.
    Varchar,
    /// `DATE`: Date32.
    Date,
    /// `TIMESTAMP(p)` without time zone, `p` in 0, 3, 6, 9 (default 3: milliseconds).
    Timestamp {
        /// Digits of fractional seconds.
        precision: u8,
    },
}

impl SqlType {
    /// The type a SQL type name stands for, or why it is refused.
    pub fn from_sql(data_type: &ast::DataType) -> Result<SqlType, String> {
        use ast::DataType as D;
        Ok(match data_type {
            D::Boolean | D::Bool => SqlType::Boolean,
            D::SmallInt(_) | D::Int2(_) => SqlType::SmallInt,
            D::Int(_) | D::Integer(_) | D::Int4(_) => SqlType::Int,
            D::BigInt(_) | D::Int8(_) | D::Int64 => SqlType::BigInt,
            D::Real | D::Float4 => SqlType::Real,
            D::Double(_) | D::DoublePrecision | D::Float(_) | D::Float8 | D::Float64 => {
                SqlType::Double
            }
            D::Varchar(_) | D::Text | D::String(_) => SqlType::Varchar,
            D::Date => SqlType::Date,
            D::Timestamp(precision, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
                let precision = precision.unwrap_or(3);
                if ![0, 3, 6, 9].contains(&precision) {
                    return Err(format!(
                        "TIMESTAMP({precision}) is not supported: precision must be 0, 3, 6 or 9"
                    ));
                }
                SqlType::Timestamp {
                    precision: precision as u8,
                }
            }
            other => {
                return Err(format!(
                    "column type {other} is not supported (supported: BOOLEAN, SMALLINT, INT, \
                     BIGINT, REAL, DOUBLE, VARCHAR, DATE, TIMESTAMP(p))"
                ));
            }
        })
    }

    /// The Arrow type of the column's values.
    pub fn to_arrow(self) -> DataType {
        match self {
            SqlType::Boolean => DataType::Boolean,
            SqlType::SmallInt => DataType::Int16,
            SqlType::Int => DataType::Int32,
            SqlType::BigInt => DataType::Int64,
            SqlType::Real => DataType::Float32,
            SqlType::Double => DataType::Float64,
            SqlType::Varchar => DataType::Utf8,
            SqlType::Date => DataType::Date32,
            SqlType::Timestamp { precision } => DataType::Timestamp(
                match precision {
                    0 => TimeUnit::Second,
                    3 => TimeUnit::Millisecond,
                    6 => TimeUnit::Microsecond,
                    _ => TimeUnit::Nanosecond,
                },
                None,
            ),
        }
    }

    /// The declared type of an Arrow type, for sources whose schema is fixed (Nexmark).
    pub fn from_arrow(data_type: &DataType) -> Option<SqlType> {
        [
            SqlType::Boolean,
            SqlType::SmallInt,
            SqlType::Int,
            SqlType::BigInt,
            SqlType::Real,
            SqlType::Double,
            SqlType::Varchar,
            SqlType::Date,
            SqlType::Timestamp { precision: 0 },
            SqlType::Timestamp { precision: 3 },
            SqlType::Timestamp { precision: 6 },
            SqlType::Timestamp { precision: 9 },
        ]
        .into_iter()
        .find(|t| &t.to_arrow() == data_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_types_round_trip() {
        for t in [
            SqlType::BigInt,
            SqlType::Varchar,
            SqlType::Timestamp { precision: 3 },
        ] {
            assert_eq!(SqlType::from_arrow(&t.to_arrow()), Some(t));
        }
        assert_eq!(SqlType::from_arrow(&DataType::UInt8), None);
    }
}
