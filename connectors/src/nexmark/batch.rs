//! Typed Arrow builders that turn generated Nexmark events into `RecordBatch`es.
//!
//! One builder per table, columns appended value by value into pre-sized typed builders
//! (string builders get a byte capacity from the average sizes Nexmark aims for), so a
//! batch is built without reallocation and without `ScalarValue`s.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow::record_batch::RecordBatch;
use nexmark::event::{Auction, Bid, Event, Person};
use runnel_runtime::{Error, Result};

use super::schema::NexmarkTable;

/// Nexmark ids and prices are `usize`; ids stay below 2^63 for every accepted seed (see
/// `options::MAX_SEED`), so saturation never happens in practice.
fn int(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A string builder for `rows` values of about `avg_len` bytes.
fn strings(rows: usize, avg_len: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows.saturating_mul(avg_len))
}

/// Builds one batch of one table.
pub(crate) enum TableBuilder {
    Bid(Box<BidColumns>),
    Auction(Box<AuctionColumns>),
    Person(Box<PersonColumns>),
}

impl TableBuilder {
    /// A builder with room for `rows` rows of `table`.
    pub(crate) fn new(table: NexmarkTable, rows: usize) -> Self {
        match table {
            NexmarkTable::Bid => TableBuilder::Bid(Box::new(BidColumns::new(rows))),
            NexmarkTable::Auction => TableBuilder::Auction(Box::new(AuctionColumns::new(rows))),
            NexmarkTable::Person => TableBuilder::Person(Box::new(PersonColumns::new(rows))),
        }
    }

    /// Appends `event` with event time `date_time` (milliseconds). The event must belong
    /// to the builder's table.
    pub(crate) fn append(&mut self, event: &Event, date_time: i64) -> Result<()> {
        match (self, event) {
            (TableBuilder::Bid(b), Event::Bid(e)) => b.append(e, date_time),
            (TableBuilder::Auction(b), Event::Auction(e)) => b.append(e, date_time),
            (TableBuilder::Person(b), Event::Person(e)) => b.append(e, date_time),
            (_, other) => {
                return Err(Error::Internal(format!(
                    "nexmark generator produced a {:?} event for another table",
                    other.event_type()
                )));
            }
        }
        Ok(())
    }

    /// The batch of everything appended so far.
    pub(crate) fn finish(self) -> Result<RecordBatch> {
        let (table, columns) = match self {
            TableBuilder::Bid(b) => (NexmarkTable::Bid, b.finish()),
            TableBuilder::Auction(b) => (NexmarkTable::Auction, b.finish()),
            TableBuilder::Person(b) => (NexmarkTable::Person, b.finish()),
        };
        Ok(RecordBatch::try_new(table.schema(), columns)?)
    }
}

pub(crate) struct BidColumns {
    auction: Int64Builder,
    bidder: Int64Builder,
    price: Int64Builder,
    channel: StringBuilder,
    url: StringBuilder,
    date_time: TimestampMillisecondBuilder,
    extra: StringBuilder,
}

impl BidColumns {
    fn new(rows: usize) -> Self {
        BidColumns {
            auction: Int64Builder::with_capacity(rows),
            bidder: Int64Builder::with_capacity(rows),
            price: Int64Builder::with_capacity(rows),
            channel: strings(rows, 12),
            url: strings(rows, 80),
            date_time: TimestampMillisecondBuilder::with_capacity(rows),
            extra: strings(rows, 72),
        }
    }

    fn append(&mut self, bid: &Bid, date_time: i64) {
        self.auction.append_value(int(bid.auction));
        self.bidder.append_value(int(bid.bidder));
        self.price.append_value(int(bid.price));
        self.channel.append_value(&bid.channel);
        self.url.append_value(&bid.url);
        self.date_time.append_value(date_time);
        self.extra.append_value(&bid.extra);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.auction.finish()),
            Arc::new(self.bidder.finish()),
            Arc::new(self.price.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.url.finish()),
            Arc::new(self.date_time.finish()),
            Arc::new(self.extra.finish()),
        ]
    }
}

pub(crate) struct AuctionColumns {
    id: Int64Builder,
    item_name: StringBuilder,
    description: StringBuilder,
    initial_bid: Int64Builder,
    reserve: Int64Builder,
    date_time: TimestampMillisecondBuilder,
    expires: TimestampMillisecondBuilder,
    seller: Int64Builder,
    category: Int64Builder,
    extra: StringBuilder,
}

impl AuctionColumns {
    fn new(rows: usize) -> Self {
        AuctionColumns {
            id: Int64Builder::with_capacity(rows),
            item_name: strings(rows, 20),
            description: strings(rows, 100),
            initial_bid: Int64Builder::with_capacity(rows),
            reserve: Int64Builder::with_capacity(rows),
            date_time: TimestampMillisecondBuilder::with_capacity(rows),
            expires: TimestampMillisecondBuilder::with_capacity(rows),
            seller: Int64Builder::with_capacity(rows),
            category: Int64Builder::with_capacity(rows),
            extra: strings(rows, 340),
        }
    }

    /// `expires` keeps the crate's auction length (`expires - date_time`) on top of the
    /// exact event time.
    fn append(&mut self, auction: &Auction, date_time: i64) {
        let length = auction.expires.saturating_sub(auction.date_time);
        let length = i64::try_from(length).unwrap_or(i64::MAX);
        self.id.append_value(int(auction.id));
        self.item_name.append_value(&auction.item_name);
        self.description.append_value(&auction.description);
        self.initial_bid.append_value(int(auction.initial_bid));
        self.reserve.append_value(int(auction.reserve));
        self.date_time.append_value(date_time);
        self.expires.append_value(date_time.saturating_add(length));
        self.seller.append_value(int(auction.seller));
        self.category.append_value(int(auction.category));
        self.extra.append_value(&auction.extra);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.item_name.finish()),
            Arc::new(self.description.finish()),
            Arc::new(self.initial_bid.finish()),
            Arc::new(self.reserve.finish()),
            Arc::new(self.date_time.finish()),
            Arc::new(self.expires.finish()),
            Arc::new(self.seller.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.extra.finish()),
        ]
    }
}

pub(crate) struct PersonColumns {
    id: Int64Builder,
    name: StringBuilder,
    email_address: StringBuilder,
    credit_card: StringBuilder,
    city: StringBuilder,
    state: StringBuilder,
    date_time: TimestampMillisecondBuilder,
    extra: StringBuilder,
}

impl PersonColumns {
    fn new(rows: usize) -> Self {
        PersonColumns {
            id: Int64Builder::with_capacity(rows),
            name: strings(rows, 12),
            email_address: strings(rows, 17),
            credit_card: strings(rows, 19),
            city: strings(rows, 10),
            state: strings(rows, 2),
            date_time: TimestampMillisecondBuilder::with_capacity(rows),
            extra: strings(rows, 150),
        }
    }

    fn append(&mut self, person: &Person, date_time: i64) {
        self.id.append_value(int(person.id));
        self.name.append_value(&person.name);
        self.email_address.append_value(&person.email_address);
        self.credit_card.append_value(&person.credit_card);
        self.city.append_value(&person.city);
        self.state.append_value(&person.state);
        self.date_time.append_value(date_time);
        self.extra.append_value(&person.extra);
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.email_address.finish()),
            Arc::new(self.credit_card.finish()),
            Arc::new(self.city.finish()),
            Arc::new(self.state.finish()),
            Arc::new(self.date_time.finish()),
            Arc::new(self.extra.finish()),
        ]
    }
}
