//! A naive, obviously correct model of the window operators, for tests.
//!
//! It keeps every row: hopping/tumbling/cumulative windows are found by enumerating, for
//! each row, every window that contains it; sessions by merging singleton sessions pairwise until
//! nothing touches. Aggregates are computed from the rows of a window at fire time. It
//! shares no code with the operators.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray,
};
use arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType,
};
use arrow::record_batch::RecordBatch;

use super::{AggregateExpr, avg, count, count_star, max, min, sum};

/// One input row.
#[derive(Debug, Clone)]
pub struct Event {
    pub ts: i64,
    pub k1: Option<i64>,
    pub k2: Option<String>,
    pub vi: Option<i32>,
    pub vf: Option<f32>,
    pub vt: Option<i64>,
}

/// A comparable cell value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum V {
    Null,
    Int(i64),
    /// f64 bits (tests only use exactly representable values).
    Float(u64),
    Str(String),
}

fn float(f: f64) -> V {
    V::Float(if f == 0.0 { 0.0f64 } else { f }.to_bits())
}

pub type Row = Vec<V>;

/// The input schema with the event time as `time_type` (ms, µs or Int64).
pub fn input_schema(time_type: &DataType) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", time_type.clone(), false),
        Field::new("k1", DataType::Int64, true),
        Field::new("k2", DataType::Utf8, true),
        Field::new("vi", DataType::Int32, true),
        Field::new("vf", DataType::Float32, true),
        Field::new("vt", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]))
}

pub fn to_batch(events: &[Event], schema: &SchemaRef) -> RecordBatch {
    let ts = events.iter().map(|e| e.ts);
    let time: ArrayRef = match schema.field(0).data_type() {
        DataType::Int64 => Arc::new(Int64Array::from_iter_values(ts)),
        DataType::Timestamp(TimeUnit::Microsecond, None) => Arc::new(
            TimestampMicrosecondArray::from_iter_values(ts.map(|t| t * 1000)),
        ),
        _ => Arc::new(TimestampMillisecondArray::from_iter_values(ts)),
    };
    let columns: Vec<ArrayRef> = vec![
        time,
        Arc::new(Int64Array::from_iter(events.iter().map(|e| e.k1))),
        Arc::new(StringArray::from_iter(events.iter().map(|e| e.k2.clone()))),
        Arc::new(Int32Array::from_iter(events.iter().map(|e| e.vi))),
        Arc::new(Float32Array::from_iter(events.iter().map(|e| e.vf))),
        Arc::new(TimestampMillisecondArray::from_iter(
            events.iter().map(|e| e.vt),
        )),
    ];
    RecordBatch::try_new(schema.clone(), columns).unwrap()
}

fn cell(column: &ArrayRef, i: usize) -> V {
    if column.is_null(i) {
        return V::Null;
    }
    match column.data_type() {
        DataType::Int64 => V::Int(column.as_primitive::<Int64Type>().value(i)),
        DataType::Int32 => V::Int(column.as_primitive::<Int32Type>().value(i).into()),
        DataType::Float64 => float(column.as_primitive::<Float64Type>().value(i)),
        DataType::Float32 => float(column.as_primitive::<Float32Type>().value(i).into()),
        DataType::Utf8 => V::Str(column.as_string::<i32>().value(i).to_string()),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            V::Int(column.as_primitive::<TimestampMillisecondType>().value(i))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            V::Int(column.as_primitive::<TimestampMicrosecondType>().value(i))
        }
        other => panic!("oracle cannot read {other}"),
    }
}

/// Every row of a batch as cells.
pub fn rows(batch: &RecordBatch) -> Vec<Row> {
    (0..batch.num_rows())
        .map(|i| batch.columns().iter().map(|c| cell(c, i)).collect())
        .collect()
}

/// The aggregates every randomized case computes.
pub fn all_aggregates() -> Vec<AggregateExpr> {
    vec![
        count_star(),
        count("vi"),
        sum("vi"),
        min("vi"),
        max("vi"),
        avg("vi"),
        count("vf").alias("cnt_f"),
        sum("vf"),
        min("vf"),
        max("vf"),
        avg("vf"),
        min("vt"),
        max("vt"),
    ]
}

/// The values of [`all_aggregates`] over `events`, computed row by row.
fn aggregate(events: &[&Event]) -> Vec<V> {
    let ints: Vec<i64> = events.iter().filter_map(|e| e.vi.map(i64::from)).collect();
    let floats: Vec<f64> = events.iter().filter_map(|e| e.vf.map(f64::from)).collect();
    let times: Vec<i64> = events.iter().filter_map(|e| e.vt).collect();
    let opt_int = |v: Option<i64>| v.map_or(V::Null, V::Int);
    let opt_float = |v: Option<f64>| v.map_or(V::Null, float);
    let int_sum: i64 = ints.iter().sum();
    let float_sum: f64 = floats.iter().sum();
    let fmin = floats.iter().copied().reduce(f64::min);
    let fmax = floats.iter().copied().reduce(f64::max);
    vec![
        V::Int(events.len() as i64),
        V::Int(ints.len() as i64),
        opt_int((!ints.is_empty()).then_some(int_sum)),
        opt_int(ints.iter().copied().min()),
        opt_int(ints.iter().copied().max()),
        opt_float((!ints.is_empty()).then(|| int_sum as f64 / ints.len() as f64)),
        V::Int(floats.len() as i64),
        opt_float((!floats.is_empty()).then_some(float_sum)),
        opt_float(fmin),
        opt_float(fmax),
        opt_float((!floats.is_empty()).then(|| float_sum / floats.len() as f64)),
        opt_int(times.iter().copied().min()),
        opt_int(times.iter().copied().max()),
    ]
}

/// The key cells of an event for the given key columns.
pub fn key_of(event: &Event, keys: &[&str]) -> Vec<V> {
    keys.iter()
        .map(|k| match *k {
            "k1" => event.k1.map_or(V::Null, V::Int),
            "k2" => event.k2.clone().map_or(V::Null, V::Str),
            other => panic!("unknown key {other}"),
        })
        .collect()
}

fn output_row(key: &[V], start: i64, end: i64, events: &[&Event]) -> Row {
    let mut row = key.to_vec();
    row.push(V::Int(start));
    row.push(V::Int(end));
    row.extend(aggregate(events));
    row
}

/// The windows of epoch-aligned kinds.
#[derive(Debug, Clone, Copy)]
enum Aligned {
    /// Windows of `size` starting at every multiple of `slide` (tumbling if equal).
    Hop { size: i64, slide: i64 },
    /// Windows starting at every multiple of `max_size`, ending at every `step` after
    /// their start up to `max_size`.
    Cumulate { step: i64, max_size: i64 },
}

impl Aligned {
    /// Every `[start, end)` that contains `t`.
    fn windows(self, t: i64) -> Vec<(i64, i64)> {
        let mut windows = Vec::new();
        match self {
            Aligned::Hop { size, slide } => {
                let mut s = t.div_euclid(slide) * slide;
                while s + size > t {
                    windows.push((s, s + size));
                    s -= slide;
                }
            }
            Aligned::Cumulate { step, max_size } => {
                let start = t.div_euclid(max_size) * max_size;
                for k in 1..=max_size / step {
                    if start + k * step > t {
                        windows.push((start, start + k * step));
                    }
                }
            }
        }
        windows
    }
}

/// Tumbling/hopping/cumulative windows: every window of every row.
pub struct AlignedOracle {
    shape: Aligned,
    pub keys: Vec<&'static str>,
    pub watermark: i64,
    /// (start, end, key) -> rows.
    windows: BTreeMap<(i64, i64, Vec<V>), Vec<Event>>,
    pub late: Vec<Event>,
}

impl AlignedOracle {
    /// Windows of `size` every `slide`.
    pub fn hop(size: i64, slide: i64, keys: Vec<&'static str>) -> Self {
        Self::new(Aligned::Hop { size, slide }, keys)
    }

    /// Windows growing by `step` up to `max_size`.
    pub fn cumulate(step: i64, max_size: i64, keys: Vec<&'static str>) -> Self {
        Self::new(Aligned::Cumulate { step, max_size }, keys)
    }

    fn new(shape: Aligned, keys: Vec<&'static str>) -> Self {
        AlignedOracle {
            shape,
            keys,
            watermark: i64::MIN,
            windows: BTreeMap::new(),
            late: vec![],
        }
    }

    pub fn on_batch(&mut self, events: &[Event]) {
        for e in events {
            let open: Vec<(i64, i64)> = self
                .shape
                .windows(e.ts)
                .into_iter()
                .filter(|&(_, end)| end > self.watermark)
                .collect();
            if open.is_empty() {
                self.late.push(e.clone());
            }
            for (start, end) in open {
                let key = key_of(e, &self.keys);
                self.windows
                    .entry((start, end, key))
                    .or_default()
                    .push(e.clone());
            }
        }
    }

    pub fn on_watermark(&mut self, watermark: i64) -> Vec<Row> {
        self.watermark = self.watermark.max(watermark);
        let fired: Vec<_> = self
            .windows
            .keys()
            .filter(|(_, end, _)| *end <= self.watermark)
            .cloned()
            .collect();
        fired
            .into_iter()
            .map(|k| {
                let events = self.windows.remove(&k).unwrap();
                let refs: Vec<&Event> = events.iter().collect();
                output_row(&k.2, k.0, k.1, &refs)
            })
            .collect()
    }
}

/// Session windows: singleton sessions merged pairwise until none touch.
pub struct SessionOracle {
    pub gap: i64,
    pub keys: Vec<&'static str>,
    pub watermark: i64,
    /// Open sessions: (key, start, end, rows).
    open: Vec<(Vec<V>, i64, i64, Vec<Event>)>,
    pub late: Vec<Event>,
}

impl SessionOracle {
    pub fn new(gap: i64, keys: Vec<&'static str>) -> Self {
        SessionOracle {
            gap,
            keys,
            watermark: i64::MIN,
            open: vec![],
            late: vec![],
        }
    }

    pub fn on_batch(&mut self, events: &[Event]) {
        // Per key: (start, end, rows, contains an already open session).
        type Candidate = (i64, i64, Vec<Event>, bool);
        let mut by_key: BTreeMap<Vec<V>, Vec<Candidate>> = BTreeMap::new();
        for (k, s, e, r) in self.open.drain(..) {
            by_key.entry(k).or_default().push((s, e, r, true));
        }
        for e in events {
            let candidate = (e.ts, e.ts + self.gap, vec![e.clone()], false);
            by_key
                .entry(key_of(e, &self.keys))
                .or_default()
                .push(candidate);
        }
        for (key, mut sessions) in by_key {
            'merge: loop {
                for i in 0..sessions.len() {
                    for j in i + 1..sessions.len() {
                        let (a, b) = (&sessions[i], &sessions[j]);
                        if a.0 <= b.1 && b.0 <= a.1 {
                            let b = sessions.remove(j);
                            let a = &mut sessions[i];
                            a.0 = a.0.min(b.0);
                            a.1 = a.1.max(b.1);
                            a.2.extend(b.2);
                            a.3 |= b.3;
                            continue 'merge;
                        }
                    }
                }
                break;
            }
            for (start, end, rows, old) in sessions {
                if !old && end <= self.watermark {
                    self.late.extend(rows);
                } else {
                    self.open.push((key.clone(), start, end, rows));
                }
            }
        }
    }

    pub fn on_watermark(&mut self, watermark: i64) -> Vec<Row> {
        self.watermark = self.watermark.max(watermark);
        let (fired, open): (Vec<_>, Vec<_>) =
            self.open.drain(..).partition(|s| s.2 <= self.watermark);
        self.open = open;
        fired
            .iter()
            .map(|(key, start, end, rows)| {
                let refs: Vec<&Event> = rows.iter().collect();
                output_row(key, *start, *end, &refs)
            })
            .collect()
    }
}
