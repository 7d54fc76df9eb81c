use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use datafusion_expr::{Expr, cast, col, lit};
use rand::SeedableRng;
use rand::rngs::StdRng;
use runnel_runtime::Error;

use super::*;
use crate::expr::testing::{Row, and, or, random_rows, schema, to_batch};

fn run(spec: &FilterSpec, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
    let mut op = spec.create(&batch.schema())?;
    let mut out = Output::default();
    op.on_batch(0, batch, &mut out)?;
    Ok(out.take().0)
}

type Oracle = fn(&Row) -> Option<bool>;

fn cases() -> Vec<(Expr, Oracle)> {
    vec![
        (col("a").gt(col("b")), |r| Some(r.a? > i64::from(r.b?))),
        (
            col("a")
                .gt(lit(0i64))
                .and(col("b").lt(lit(0i32)))
                .or(col("c").is_null()),
            |r| {
                or(
                    and(r.a.map(|a| a > 0), r.b.map(|b| b < 0)),
                    Some(r.c.is_none()),
                )
            },
        ),
        (
            (col("a") + col("b")).lt_eq(cast(col("s"), DataType::Int64)),
            |r| Some(r.a? + i64::from(r.b?) <= r.s.as_ref()?.parse::<i64>().unwrap()),
        ),
        (Expr::Not(Box::new(col("c").gt_eq(lit(0.0)))), |r| {
            Some(r.c? < 0.0)
        }),
        (col("a").is_not_null().or(col("b").eq(lit(1i32))), |r| {
            or(Some(r.a.is_some()), r.b.map(|b| b == 1))
        }),
        (lit(true), |_| Some(true)),
    ]
}

#[test]
fn random_filters_match_row_by_row() {
    let mut rng = StdRng::seed_from_u64(11);
    for case in 0..300 {
        let rows = random_rows(&mut rng, 40);
        for (n, (predicate, oracle)) in cases().into_iter().enumerate() {
            let out = run(&FilterSpec { predicate }, to_batch(&rows)).unwrap();
            let kept: Vec<i64> = out
                .iter()
                .flat_map(|b| {
                    b.column(4)
                        .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                        .values()
                        .to_vec()
                })
                .collect();
            let expected: Vec<i64> = rows
                .iter()
                .filter(|r| oracle(r) == Some(true))
                .map(|r| r.t)
                .collect();
            assert_eq!(kept, expected, "case {case} predicate {n}");
            for b in &out {
                assert_eq!(b.schema(), schema());
                let a = b.column(0).as_primitive::<Int64Type>();
                assert_eq!(a.len(), b.num_rows());
            }
        }
    }
}

#[test]
fn bad_predicates_and_bad_records() {
    assert!(matches!(
        FilterSpec {
            predicate: col("a") + lit(1i64)
        }
        .create(&schema())
        .err()
        .unwrap(),
        Error::Plan(_)
    ));
    assert!(matches!(
        FilterSpec {
            predicate: col("zz").is_null()
        }
        .output_schema(&schema())
        .unwrap_err(),
        Error::Plan(_)
    ));
    let rows = vec![Row {
        a: Some(3),
        b: Some(0),
        c: None,
        s: None,
        t: 1,
    }];
    let divide = FilterSpec {
        predicate: (col("a") / col("b")).gt(lit(0i64)),
    };
    assert!(matches!(
        run(&divide, to_batch(&rows)).unwrap_err(),
        Error::Data(_)
    ));
}

#[test]
fn null_predicate_keeps_nothing() {
    let rows = vec![Row {
        a: None,
        b: None,
        c: None,
        s: None,
        t: 1,
    }];
    let spec = FilterSpec {
        predicate: Expr::Literal(datafusion_common::ScalarValue::Boolean(None), None),
    };
    assert!(run(&spec, to_batch(&rows)).unwrap().is_empty());
}
