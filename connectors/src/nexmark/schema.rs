//! The three Nexmark tables and their Arrow schemas.
//!
//! Column names and types follow the Nexmark suites of Flink and RisingWave
//! (`bid(auction, bidder, price, channel, url, date_time, extra)` ...), so queries written
//! for those suites run unchanged. Ids and prices are `BIGINT` (Int64), times are
//! `TIMESTAMP(3)` (`Timestamp(Millisecond, None)`), text is `VARCHAR` (Utf8). Every column
//! is non-nullable: the generator never produces a null. `date_time` is the event-time
//! column of every table.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use runnel_runtime::Error;

/// One of the three Nexmark event streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NexmarkTable {
    /// Bids on auctions; 46 of every 50 Nexmark events.
    Bid,
    /// New auctions; 3 of every 50 events.
    Auction,
    /// New people (sellers and bidders); 1 of every 50 events.
    Person,
}

impl NexmarkTable {
    /// All tables, in a fixed order.
    pub const ALL: [NexmarkTable; 3] = [
        NexmarkTable::Bid,
        NexmarkTable::Auction,
        NexmarkTable::Person,
    ];

    /// The table's name as used in SQL: `bid`, `auction` or `person`.
    pub fn name(self) -> &'static str {
        match self {
            NexmarkTable::Bid => "bid",
            NexmarkTable::Auction => "auction",
            NexmarkTable::Person => "person",
        }
    }

    /// The Arrow schema of the table's batches (shared, cheap to clone).
    pub fn schema(self) -> SchemaRef {
        match self {
            NexmarkTable::Bid => BID_SCHEMA.clone(),
            NexmarkTable::Auction => AUCTION_SCHEMA.clone(),
            NexmarkTable::Person => PERSON_SCHEMA.clone(),
        }
    }

    /// The event-time column, `date_time` in every table.
    pub fn event_time_column(self) -> &'static str {
        "date_time"
    }

    /// Index of the table in [`NexmarkTable::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            NexmarkTable::Bid => 0,
            NexmarkTable::Auction => 1,
            NexmarkTable::Person => 2,
        }
    }
}

impl fmt::Display for NexmarkTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NexmarkTable {
    type Err = Error;

    /// Parses `bid`, `auction` or `person` (case-insensitive, a trailing `s` allowed).
    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.strip_suffix('s').unwrap_or(&lower) {
            "bid" => Ok(NexmarkTable::Bid),
            "auction" => Ok(NexmarkTable::Auction),
            "person" => Ok(NexmarkTable::Person),
            _ => Err(Error::Plan(format!(
                "unknown Nexmark table `{s}`: expected bid, auction or person"
            ))),
        }
    }
}

fn int64(name: &str) -> Field {
    Field::new(name, DataType::Int64, false)
}

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn timestamp(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, None),
        false,
    )
}

static BID_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    SchemaRef::new(Schema::new(vec![
        int64("auction"),
        int64("bidder"),
        int64("price"),
        utf8("channel"),
        utf8("url"),
        timestamp("date_time"),
        utf8("extra"),
    ]))
});

static AUCTION_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    SchemaRef::new(Schema::new(vec![
        int64("id"),
        utf8("item_name"),
        utf8("description"),
        int64("initial_bid"),
        int64("reserve"),
        timestamp("date_time"),
        timestamp("expires"),
        int64("seller"),
        int64("category"),
        utf8("extra"),
    ]))
});

static PERSON_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    SchemaRef::new(Schema::new(vec![
        int64("id"),
        utf8("name"),
        utf8("email_address"),
        utf8("credit_card"),
        utf8("city"),
        utf8("state"),
        timestamp("date_time"),
        utf8("extra"),
    ]))
});

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(table: NexmarkTable) -> Vec<(String, DataType)> {
        table
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    }

    #[test]
    fn schemas_match_the_nexmark_suites() {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let (i, s) = (DataType::Int64, DataType::Utf8);
        let expect = |cols: &[(&str, &DataType)]| -> Vec<(String, DataType)> {
            cols.iter()
                .map(|(n, t)| (n.to_string(), (*t).clone()))
                .collect()
        };
        assert_eq!(
            columns(NexmarkTable::Bid),
            expect(&[
                ("auction", &i),
                ("bidder", &i),
                ("price", &i),
                ("channel", &s),
                ("url", &s),
                ("date_time", &ts),
                ("extra", &s),
            ])
        );
        assert_eq!(
            columns(NexmarkTable::Auction),
            expect(&[
                ("id", &i),
                ("item_name", &s),
                ("description", &s),
                ("initial_bid", &i),
                ("reserve", &i),
                ("date_time", &ts),
                ("expires", &ts),
                ("seller", &i),
                ("category", &i),
                ("extra", &s),
            ])
        );
        assert_eq!(
            columns(NexmarkTable::Person),
            expect(&[
                ("id", &i),
                ("name", &s),
                ("email_address", &s),
                ("credit_card", &s),
                ("city", &s),
                ("state", &s),
                ("date_time", &ts),
                ("extra", &s),
            ])
        );
        for table in NexmarkTable::ALL {
            let schema = table.schema();
            assert!(schema.fields().iter().all(|f| !f.is_nullable()));
            assert!(schema.field_with_name(table.event_time_column()).is_ok());
        }
    }

    #[test]
    fn table_names_round_trip() {
        for table in NexmarkTable::ALL {
            assert_eq!(table.name().parse::<NexmarkTable>().unwrap(), table);
            assert_eq!(NexmarkTable::ALL[table.index()], table);
        }
        assert_eq!("Bids".parse::<NexmarkTable>().unwrap(), NexmarkTable::Bid);
        assert!(matches!(
            "orders".parse::<NexmarkTable>(),
            Err(Error::Plan(_))
        ));
    }
}
