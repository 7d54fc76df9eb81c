//! Tests of the Nexmark generator against independent oracles: the `nexmark` crate's
//! plain sequential iterator for the row contents, and the Nexmark proportion formula
//! for event numbers and times.

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use arrow::util::display::array_value_to_string;
use nexmark::EventGenerator;
use nexmark::event::{Event, EventType};

use super::*;

/// Every row of `batches`, each value rendered as text.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, row).unwrap())
                .collect();
            out.push(values);
        }
    }
    out
}

fn times(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name("date_time").unwrap();
            col.as_primitive::<TimestampMillisecondType>()
                .values()
                .to_vec()
        })
        .collect()
}

fn options(max: u64, partitions: usize, batch_size: usize) -> NexmarkOptions {
    NexmarkOptions {
        seed: 7,
        base_time_millis: 1_000_000,
        events_per_second: 1_000,
        max_events: Some(max),
        batch_size,
        partitions,
        out_of_order_group_size: 1,
    }
}

/// Global event number of row `row` of `table`, from the 1:3:46 proportions.
fn event_number(table: NexmarkTable, row: u64) -> u64 {
    let (first, per_cycle) = match table {
        NexmarkTable::Person => (0, 1),
        NexmarkTable::Auction => (1, 3),
        NexmarkTable::Bid => (4, 46),
    };
    (row / per_cycle) * 50 + first + row % per_cycle
}

/// `base + round(n * 1000 / eps)`, computed in floating point.
fn oracle_time(o: &NexmarkOptions, table: NexmarkTable, row: u64) -> i64 {
    let ms = event_number(table, row) as f64 * 1000.0 / o.events_per_second as f64;
    o.base_time_millis + (ms + 0.5).floor() as i64
}

#[test]
fn same_options_give_identical_batches_and_seeds_differ() {
    for table in NexmarkTable::ALL {
        let o = options(300, 2, 64);
        let a = generate(&o, table).unwrap();
        assert_eq!(a, generate(&o, table).unwrap());
        let other = generate(
            &NexmarkOptions {
                seed: 8,
                ..o.clone()
            },
            table,
        )
        .unwrap();
        assert_eq!(rows(&a).len(), rows(&other).len());
        let strip_time = |r: Vec<Vec<String>>| -> Vec<Vec<String>> {
            r.into_iter()
                .map(|mut v| {
                    v.retain(|s| !s.starts_with("1970"));
                    v
                })
                .collect()
        };
        let (a, other) = (strip_time(rows(&a)), strip_time(rows(&other)));
        let same = a.iter().zip(&other).filter(|(x, y)| x == y).count();
        assert_eq!(same, 0, "{table}: seeds 7 and 8 share rows");
    }
}

#[test]
fn rows_match_the_crates_sequential_stream() {
    let o = options(400, 1, 37);
    let bids = generate(&o, NexmarkTable::Bid).unwrap();
    let mut crate_bids = EventGenerator::new(o.config()).with_type_filter(EventType::Bid);
    let batch = arrow::compute::concat_batches(&NexmarkTable::Bid.schema(), &bids).unwrap();
    assert_eq!(batch.num_rows(), 400);
    let auction = batch.column(0).as_primitive::<Int64Type>();
    let price = batch.column(2).as_primitive::<Int64Type>();
    let url = batch.column(4).as_string::<i32>();
    let extra = batch.column(6).as_string::<i32>();
    for row in 0..400 {
        let Some(Event::Bid(bid)) = crate_bids.next() else {
            panic!("not a bid")
        };
        assert_eq!(auction.value(row), bid.auction as i64);
        assert_eq!(price.value(row), bid.price as i64);
        assert_eq!(url.value(row), bid.url);
        assert_eq!(extra.value(row), bid.extra);
    }

    let auctions = generate(&o, NexmarkTable::Auction).unwrap();
    let batch = arrow::compute::concat_batches(&NexmarkTable::Auction.schema(), &auctions);
    let batch = batch.unwrap();
    let mut crate_auctions = EventGenerator::new(o.config()).with_type_filter(EventType::Auction);
    let id = batch.column(0).as_primitive::<Int64Type>();
    let seller = batch.column(7).as_primitive::<Int64Type>();
    let date_time = batch.column(5).as_primitive::<TimestampMillisecondType>();
    let expires = batch.column(6).as_primitive::<TimestampMillisecondType>();
    for row in 0..400 {
        let Some(Event::Auction(a)) = crate_auctions.next() else {
            panic!("not an auction")
        };
        assert_eq!(id.value(row), a.id as i64);
        assert_eq!(seller.value(row), a.seller as i64);
        let length = (a.expires - a.date_time) as i64;
        assert_eq!(expires.value(row) - date_time.value(row), length);
    }
}

#[test]
fn event_times_follow_the_configured_rate() {
    for table in NexmarkTable::ALL {
        let o = options(1000, 1, 100);
        let got = times(&generate(&o, table).unwrap());
        let want: Vec<i64> = (0..1000).map(|r| oracle_time(&o, table, r)).collect();
        assert_eq!(got, want, "{table}");
        assert!(got.windows(2).all(|w| w[0] <= w[1]));
    }
    // 46 bids per 50 events at 1000 events/s: 46,000 bids span 50 s of event time.
    let o = NexmarkOptions {
        max_events: Some(46_001),
        batch_size: 8192,
        ..options(0, 1, 1)
    };
    let t = times(&generate(&o, NexmarkTable::Bid).unwrap());
    assert_eq!(t[46_000] - t[0], 50_000);
}

#[test]
fn partitions_split_the_stream_exactly() {
    for table in NexmarkTable::ALL {
        let single = rows(&generate(&options(1001, 1, 50), table).unwrap());
        for n in [2, 3, 7] {
            let o = options(1001, n, 50);
            let mut union = Vec::new();
            for p in 0..n {
                let part = rows(&generate_partition(&o, table, p).unwrap());
                assert_eq!(part.len() as u64, o.partition_rows(p).unwrap());
                for (k, row) in part.iter().enumerate() {
                    assert_eq!(row, &single[p + k * n], "{table} p={p} k={k}");
                }
                union.extend(part);
            }
            let mut expected = single.clone();
            union.sort();
            expected.sort();
            assert_eq!(union, expected, "{table} n={n}");
            let interleaved = rows(&generate(&o, table).unwrap());
            let mut interleaved_sorted = interleaved.clone();
            interleaved_sorted.sort();
            assert_eq!(interleaved_sorted, expected);
        }
    }
}

#[test]
fn generate_interleaves_partitions_round_robin() {
    let o = options(1000, 3, 100);
    let all = generate_bids(&o, 1000).unwrap();
    let parts: Vec<_> = (0..3)
        .map(|p| generate_partition(&o, NexmarkTable::Bid, p).unwrap())
        .collect();
    assert_eq!(all.len(), 4 + 4 + 4);
    assert_eq!(all[0], parts[0][0]);
    assert_eq!(all[1], parts[1][0]);
    assert_eq!(all[2], parts[2][0]);
    assert_eq!(all[3], parts[0][1]);
    assert_eq!(all.iter().map(|b| b.num_rows()).sum::<usize>(), 1000);
}

#[test]
fn out_of_order_groups_are_bounded_permutations() {
    for table in NexmarkTable::ALL {
        let g = 100u64;
        let in_order = options(1000, 1, 128);
        let shuffled = NexmarkOptions {
            out_of_order_group_size: g,
            ..in_order.clone()
        };
        let want = rows(&generate(&in_order, table).unwrap());
        let got = rows(&generate(&shuffled, table).unwrap());
        assert_ne!(want, got, "{table}: not shuffled");
        for (w, o) in want.chunks(g as usize).zip(got.chunks(g as usize)) {
            let (mut w, mut o) = (w.to_vec(), o.to_vec());
            w.sort();
            o.sort();
            assert_eq!(w, o, "{table}: a group is not a permutation");
        }
        let bound = shuffled.max_out_of_orderness(table).as_millis() as i64;
        let t = times(&generate(&shuffled, table).unwrap());
        let mut max_seen = t[0];
        let mut max_lag = 0;
        for &ts in &t {
            max_lag = max_lag.max(max_seen - ts);
            max_seen = max_seen.max(ts);
        }
        assert!(max_lag > 0, "{table}: no disorder");
        assert!(max_lag <= bound, "{table}: lag {max_lag} > bound {bound}");
    }
}

#[test]
fn bounded_streams_are_prefixes_and_seek_replays() {
    let bounded = NexmarkOptions {
        out_of_order_group_size: 10,
        ..options(95, 2, 16)
    };
    let unbounded = NexmarkOptions {
        max_events: None,
        ..bounded.clone()
    };
    let mut a = NexmarkGenerator::new(bounded, 1).unwrap();
    let mut b = NexmarkGenerator::new(unbounded, 1).unwrap();
    let mut first = Vec::new();
    while let Some(batch) = a.next_batch(NexmarkTable::Bid).unwrap() {
        let same = b.next_batch_with_max_rows(NexmarkTable::Bid, batch.num_rows());
        assert_eq!(Some(&batch), same.unwrap().as_ref());
        first.push(batch);
    }
    assert_eq!(a.position(NexmarkTable::Bid), 47);
    assert_eq!(a.remaining(NexmarkTable::Bid), Some(0));
    assert_eq!(b.remaining(NexmarkTable::Bid), None);

    let mut replay = NexmarkGenerator::new(a.options().clone(), 1).unwrap();
    replay.seek(NexmarkTable::Bid, 16);
    let rest = replay.next_batch(NexmarkTable::Bid).unwrap().unwrap();
    assert_eq!(rest, first[1]);
    // Tables are independent streams with their own positions.
    assert_eq!(replay.position(NexmarkTable::Person), 0);
    let person = replay.next_batch_with_max_rows(NexmarkTable::Person, 3);
    assert_eq!(person.unwrap().unwrap().num_rows(), 3);
}

#[test]
fn seeds_select_disjoint_id_ranges() {
    let ids = |seed| {
        let o = NexmarkOptions {
            seed,
            ..options(10, 1, 10)
        };
        let batch = generate(&o, NexmarkTable::Person).unwrap().remove(0);
        batch
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    };
    assert_eq!(ids(0), (1000..1010).collect::<Vec<i64>>());
    assert!(ids(1).iter().all(|&id| id >= 1 << 32));
    let max = ids(super::super::options::MAX_SEED);
    assert!(max.iter().all(|&id| id > 0));
}

#[test]
fn invalid_requests_are_plan_errors() {
    let o = options(10, 2, 10);
    assert!(matches!(
        NexmarkGenerator::new(o.clone(), 2),
        Err(Error::Plan(_))
    ));
    let unbounded = NexmarkOptions {
        max_events: None,
        ..o
    };
    assert!(matches!(
        generate(&unbounded, NexmarkTable::Bid),
        Err(Error::Plan(_))
    ));
}
