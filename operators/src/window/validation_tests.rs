//! Typing and validation: result types of MIN/MAX, plan errors for bad specs, data
//! errors for bad records.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Date32Array, Int64Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use runnel_runtime::{Error, Output, WATERMARK_END};

use super::tests::{batch, lines, ms, schema, spec};
use super::*;

#[test]
fn min_max_keep_temporal_types() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Int64, false),
        Field::new("day", DataType::Date32, true),
    ]));
    let spec = WindowAggregateSpec {
        kind: WindowKind::Tumbling { size: ms(10) },
        time_column: "ts".into(),
        key_columns: vec![],
        aggregates: vec![min("day"), max("day")],
    };
    let output = spec.output_schema(&schema).unwrap();
    assert_eq!(output.field(2).data_type(), &DataType::Date32);
    let mut op = spec.create(&schema).unwrap();
    let mut out = Output::default();
    let rows = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(Date32Array::from(vec![Some(19_000), None, Some(18_000)])),
        ],
    )
    .unwrap();
    op.on_batch(0, rows, &mut out).unwrap();
    op.on_watermark(WATERMARK_END, &mut out).unwrap();
    assert_eq!(
        lines(&out.take().0),
        ["window_start=0 window_end=10 min_day=2019-04-14 max_day=2022-01-08"]
    );
}

#[test]
fn invalid_specs_are_plan_errors() {
    let tumble = |size| WindowKind::Tumbling { size };
    let cases = [
        (
            spec(tumble(ms(0)), &[], vec![count_star()]),
            "must be positive",
        ),
        (
            spec(tumble(Duration::from_micros(1500)), &[], vec![count_star()]),
            "whole number",
        ),
        (
            spec(
                WindowKind::Hopping {
                    size: ms(5),
                    slide: ms(10),
                },
                &[],
                vec![count_star()],
            ),
            "larger than its size",
        ),
        (
            spec(
                WindowKind::Cumulative {
                    step: ms(4),
                    max_size: ms(10),
                },
                &[],
                vec![count_star()],
            ),
            "max size (10 ms) is not a multiple of its step (4 ms)",
        ),
        (
            spec(
                WindowKind::Cumulative {
                    step: ms(10),
                    max_size: ms(4),
                },
                &[],
                vec![count_star()],
            ),
            "max size (4 ms) is not a multiple of its step (10 ms)",
        ),
        (
            spec(
                WindowKind::Cumulative {
                    step: ms(0),
                    max_size: ms(10),
                },
                &[],
                vec![count_star()],
            ),
            "step must be positive",
        ),
        (
            spec(
                WindowKind::Cumulative {
                    step: ms(2),
                    max_size: ms(0),
                },
                &[],
                vec![count_star()],
            ),
            "max size must be positive",
        ),
        (
            spec(tumble(ms(5)), &["nope"], vec![count_star()]),
            "unknown key column `nope`",
        ),
        (
            spec(tumble(ms(5)), &["price"], vec![count_star()]),
            "not a key type",
        ),
        (
            spec(tumble(ms(5)), &[], vec![sum("bidder")]),
            "cannot aggregate",
        ),
        (
            spec(
                tumble(ms(5)),
                &[],
                vec![count_star(), count("price").alias("count")],
            ),
            "appears twice",
        ),
        (
            WindowAggregateSpec {
                time_column: "bidder".into(),
                ..spec(tumble(ms(5)), &[], vec![])
            },
            "must be a timestamp",
        ),
    ];
    for (spec, needle) in cases {
        let err = spec.output_schema(&schema()).unwrap_err();
        assert!(matches!(err, Error::Plan(_)), "{err}");
        assert!(err.to_string().contains(needle), "{needle}: {err}");
        assert!(spec.create(&schema()).is_err());
    }
}

#[test]
fn bad_records_are_data_errors() {
    let spec = spec(
        WindowKind::Tumbling { size: ms(10) },
        &[],
        vec![sum("price")],
    );
    let mut op = spec.create(&schema()).unwrap();
    let mut out = Output::default();
    let far = batch(&[(i64::MAX, None, None, None)]);
    let err = op.on_batch(0, far, &mut out).unwrap_err();
    assert!(
        matches!(err, Error::Data(_)) && err.to_string().contains("out of range"),
        "{err}"
    );
    let other =
        RecordBatch::try_from_iter([("ts", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
            .unwrap();
    let err = op.on_batch(0, other, &mut out).unwrap_err();
    assert!(matches!(err, Error::Data(_)), "{err}");

    // SUM over UInt64 casts to Int64; a value that does not fit is refused, not nulled.
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Int64, false),
        Field::new("v", DataType::UInt64, false),
    ]));
    let mut op = WindowAggregateSpec {
        kind: WindowKind::Session { gap: ms(1) },
        time_column: "ts".into(),
        key_columns: vec![],
        aggregates: vec![sum("v")],
    }
    .create(&schema)
    .unwrap();
    let huge = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(UInt64Array::from(vec![u64::MAX])),
        ],
    )
    .unwrap();
    let err = op.on_batch(0, huge, &mut out).unwrap_err();
    assert!(matches!(err, Error::Data(_)), "{err}");
}

#[test]
fn window_kinds_serialize_as_stored_sql_plans_name_them() {
    let ms = Duration::from_millis;
    let cases = [
        (
            WindowKind::Tumbling { size: ms(10_000) },
            r#"{"kind":"tumble","size_ms":10000}"#,
        ),
        (
            WindowKind::Hopping {
                size: ms(10_000),
                slide: ms(2_000),
            },
            r#"{"kind":"hop","size_ms":10000,"slide_ms":2000}"#,
        ),
        (
            WindowKind::Session { gap: ms(500) },
            r#"{"kind":"session","gap_ms":500}"#,
        ),
        (
            WindowKind::Cumulative {
                step: ms(60_000),
                max_size: ms(3_600_000),
            },
            r#"{"kind":"cumulate","step_ms":60000,"max_size_ms":3600000}"#,
        ),
    ];
    for (kind, json) in cases {
        assert_eq!(serde_json::to_string(&kind).unwrap(), json);
        assert_eq!(serde_json::from_str::<WindowKind>(json).unwrap(), kind);
    }
    // Definitions stored before the window type was shared list the slide first.
    let stored = r#"{"kind":"hop","slide_ms":2000,"size_ms":10000}"#;
    assert_eq!(
        serde_json::from_str::<WindowKind>(stored).unwrap(),
        WindowKind::Hopping {
            size: ms(10_000),
            slide: ms(2_000),
        }
    );
}
