//! Integer columns take integers only, exactly.
//!
//! Arrow's JSON decoder is lenient where a stream must not be: into a `BIGINT` it turns
//! `1.5` into 1, the string `"12"` into 12 and `-9223372036854775809` into the smallest
//! `BIGINT`. Each changes a value without a word, so after a body decodes, its lines are
//! scanned once more for the integer columns only (everything else is skipped without
//! being built), and a value that is not an integer literal within the column's range is
//! refused, naming the line and the field. Integer timestamps (epoch units) are held to
//! the same rule; their RFC 3339 strings are left to the decoder.

use std::fmt;

use arrow::datatypes::{DataType, Schema};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::BadInput;

/// Refuses the first value of `body` that an integer column would not hold exactly.
pub fn check(schema: &Schema, body: &[u8]) -> Result<(), BadInput> {
    let columns: Vec<(&str, Range)> = schema
        .fields()
        .iter()
        .filter_map(|f| Some((f.name().as_str(), Range::of(f.data_type())?)))
        .collect();
    if columns.is_empty() {
        return Ok(());
    }
    for (index, line) in body.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut deserializer = serde_json::Deserializer::from_slice(line);
        // The line decoded already; a parse error here cannot happen and is not ours.
        let Err(error) = Line(&columns).deserialize(&mut deserializer) else {
            continue;
        };
        if let Some(reason) = error.to_string().strip_prefix(REFUSED) {
            let reason = reason.split(" at line ").next().unwrap_or(reason);
            return Err(BadInput(format!("line {}: {reason}", index + 1)));
        }
    }
    Ok(())
}

/// Prefix of a refusal, telling it apart from serde's own errors.
const REFUSED: &str = "refused: ";

/// The values an integer column holds.
#[derive(Debug, Clone, Copy)]
struct Range {
    min: i128,
    max: i128,
    name: &'static str,
}

impl Range {
    fn of(data_type: &DataType) -> Option<Range> {
        let (min, max, name) = match data_type {
            DataType::Int8 => (i8::MIN.into(), i8::MAX.into(), "a TINYINT"),
            DataType::Int16 => (i16::MIN.into(), i16::MAX.into(), "a SMALLINT"),
            DataType::Int32 => (i32::MIN.into(), i32::MAX.into(), "an INT"),
            DataType::Int64 => (i64::MIN.into(), i64::MAX.into(), "a BIGINT"),
            DataType::UInt8 => (0, u8::MAX.into(), "a TINYINT UNSIGNED"),
            DataType::UInt16 => (0, u16::MAX.into(), "a SMALLINT UNSIGNED"),
            DataType::UInt32 => (0, u32::MAX.into(), "an INT UNSIGNED"),
            DataType::UInt64 => (0, u64::MAX.into(), "a BIGINT UNSIGNED"),
            DataType::Timestamp(..) => (i64::MIN.into(), i64::MAX.into(), "an integer timestamp"),
            _ => return None,
        };
        Some(Range { min, max, name })
    }
}

/// One JSON line: an object whose integer columns are checked.
struct Line<'a>(&'a [(&'a str, Range)]);

impl<'de> DeserializeSeed<'de> for Line<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Line<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.0.iter().find(|(name, _)| *name == key) {
                Some(&(name, range)) => map.next_value_seed(Value { name, range })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The value of integer column `name`.
struct Value<'a> {
    name: &'a str,
    range: Range,
}

impl Value<'_> {
    fn refuse<E: de::Error>(&self, what: impl fmt::Display) -> E {
        let Range { min, max, name } = self.range;
        E::custom(format_args!(
            "{REFUSED}field {:?}: {what} is not {name} (an integer from {min} to {max}); \
             no conversion is made",
            self.name
        ))
    }

    fn integer<E: de::Error>(&self, v: i128) -> Result<(), E> {
        if (self.range.min..=self.range.max).contains(&v) {
            Ok(())
        } else {
            Err(self.refuse(v))
        }
    }
}

impl<'de> DeserializeSeed<'de> for Value<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Value<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.integer(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.integer(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        Err(self.refuse(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        // null: the decoder has already judged it against the column's nullability.
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if self.range.name == "an integer timestamp" {
            // An RFC 3339 timestamp, parsed by the decoder.
            return Ok(());
        }
        Err(self.refuse(format_args!("the string {v:?}")))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        Err(self.refuse(v))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.refuse("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.refuse("an object"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, TimeUnit};

    use super::*;

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("small", DataType::Int8, true),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
        ]))
    }

    #[test]
    fn exact_integers_pass() {
        let body = "{\"id\": -9223372036854775808, \"name\": \"1.5\", \"at\": 5}\n\n\
                    {\"id\": 9223372036854775807, \"small\": -128, \"at\": \"1970-01-01T00:00:00Z\"}\n\
                    {\"id\": 0, \"small\": null, \"at\": 1, \"name\": {\"x\": [1.5]}}";
        check(&schema(), body.as_bytes()).unwrap();
    }

    #[test]
    fn lossy_values_are_refused_with_line_and_field() {
        let good = "{\"id\": 1, \"at\": 1}\n";
        for (bad, expected) in [
            (
                "{\"id\": 1.5, \"at\": 1}",
                "line 2: field \"id\": 1.5 is not a BIGINT",
            ),
            (
                "{\"id\": \"12\", \"at\": 1}",
                "line 2: field \"id\": the string \"12\"",
            ),
            (
                "{\"id\": -9223372036854775809, \"at\": 1}",
                "line 2: field \"id\": -9223372036854776000 is not a BIGINT",
            ),
            (
                "{\"id\": 1e3, \"at\": 1}",
                "line 2: field \"id\": 1000 is not",
            ),
            (
                "{\"id\": 1, \"small\": 128, \"at\": 1}",
                "line 2: field \"small\": 128 is not a TINYINT",
            ),
            (
                "{\"id\": 1, \"at\": 1.5}",
                "line 2: field \"at\": 1.5 is not an integer timestamp",
            ),
            ("{\"id\": true, \"at\": 1}", "line 2: field \"id\": true"),
        ] {
            let message = check(&schema(), format!("{good}{bad}\n{good}").as_bytes())
                .unwrap_err()
                .0;
            assert!(message.starts_with(expected), "{bad}: {message}");
        }
    }
}
