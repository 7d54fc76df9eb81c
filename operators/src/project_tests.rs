use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type};
use datafusion_expr::{Expr, cast, col, lit};
use rand::SeedableRng;
use rand::rngs::StdRng;
use runnel_runtime::Error;

use super::*;
use crate::expr::testing::{Row, and, or, random_rows, schema, to_batch};

fn run(spec: &ProjectSpec, batch: RecordBatch) -> Result<Vec<RecordBatch>> {
    let mut op = spec.create(&batch.schema())?;
    let mut out = Output::default();
    op.on_batch(0, batch, &mut out)?;
    Ok(out.take().0)
}

fn spec() -> ProjectSpec {
    let exprs: Vec<(Expr, &str)> = vec![
        (col("t"), "t"),
        (col("a") + col("b") * lit(2i32), "sum"),
        (col("a").gt(col("b")), "gt"),
        (col("c") * lit(2.0) - col("a"), "float"),
        (cast(col("s"), DataType::Int64), "parsed"),
        (cast(col("a"), DataType::Utf8), "text"),
        (
            col("a")
                .gt(lit(0i64))
                .and(col("b").lt(lit(0i32)))
                .or(col("c").is_null()),
            "logic",
        ),
        (Expr::Not(Box::new(col("a").eq(col("b")))), "ne"),
    ];
    ProjectSpec {
        exprs: exprs.into_iter().map(|(e, n)| (e, n.to_string())).collect(),
    }
}

fn gt(r: &Row) -> Option<bool> {
    Some(r.a? > i64::from(r.b?))
}

#[test]
fn random_projections_match_row_by_row() {
    let mut rng = StdRng::seed_from_u64(7);
    for case in 0..300 {
        let rows = random_rows(&mut rng, 40);
        let out = run(&spec(), to_batch(&rows)).unwrap();
        let total: usize = out.iter().map(|b| b.num_rows()).sum();
        assert_eq!(total, rows.len(), "case {case}");
        let Some(batch) = out.first() else { continue };
        let sum = batch.column(1).as_primitive::<Int64Type>();
        let gts = batch.column(2).as_boolean();
        let float = batch.column(3).as_primitive::<Float64Type>();
        let parsed = batch.column(4).as_primitive::<Int64Type>();
        let text = batch.column(5).as_string::<i32>();
        let logic = batch.column(6).as_boolean();
        let ne = batch.column(7).as_boolean();
        for (i, r) in rows.iter().enumerate() {
            let at = |a: &dyn Array| a.is_valid(i);
            assert_eq!(
                at(sum).then(|| sum.value(i)),
                (|| Some(r.a? + 2 * i64::from(r.b?)))()
            );
            assert_eq!(at(gts).then(|| gts.value(i)), gt(r), "case {case} row {i}");
            let f = (|| Some(r.c? * 2.0 - r.a? as f64))();
            assert_eq!(at(float).then(|| float.value(i)), f);
            let p = r.s.as_ref().map(|s| s.parse::<i64>().unwrap());
            assert_eq!(at(parsed).then(|| parsed.value(i)), p);
            assert_eq!(
                at(text).then(|| text.value(i).to_string()),
                r.a.map(|a| a.to_string())
            );
            let l = or(
                and(r.a.map(|a| a > 0), r.b.map(|b| b < 0)),
                Some(r.c.is_none()),
            );
            assert_eq!(at(logic).then(|| logic.value(i)), l);
            let e = (|| Some(r.a? == i64::from(r.b?)))().map(|x| !x);
            assert_eq!(at(ne).then(|| ne.value(i)), e);
        }
    }
}

#[test]
fn event_time_column_is_kept_as_is() {
    let with_metadata = Field::new(
        "t",
        DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
        false,
    )
    .with_metadata(HashMap::from([(
        "event_time".to_string(),
        "true".to_string(),
    )]));
    let mut fields: Vec<Field> = schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[4] = with_metadata.clone();
    let input = Arc::new(Schema::new(fields));
    let spec = ProjectSpec {
        exprs: vec![(col("t"), "t".into()), (col("a"), "x".into())],
    };
    let out = spec.output_schema(&input).unwrap();
    assert_eq!(out.field(0), &with_metadata);
    assert_eq!(out.field(1).name(), "x");
    assert!(out.field(1).is_nullable());
}

#[test]
fn bad_records_are_data_errors_and_bad_plans_plan_errors() {
    let rows = vec![Row {
        a: Some(1),
        b: Some(0),
        c: None,
        s: Some("x1".into()),
        t: 0,
    }];
    let divide = ProjectSpec {
        exprs: vec![(col("a") / col("b"), "q".into())],
    };
    let err = run(&divide, to_batch(&rows)).unwrap_err();
    assert!(matches!(err, Error::Data(_)), "{err}");
    assert!(err.to_string().contains("ivide by zero"), "{err}");
    let parse = ProjectSpec {
        exprs: vec![(cast(col("s"), DataType::Int64), "n".into())],
    };
    assert!(matches!(
        run(&parse, to_batch(&rows)).unwrap_err(),
        Error::Data(_)
    ));

    let unknown = ProjectSpec {
        exprs: vec![(col("nope"), "n".into())],
    };
    assert!(matches!(
        unknown.create(&schema()).err().unwrap(),
        Error::Plan(_)
    ));
    let duplicate = ProjectSpec {
        exprs: vec![(col("a"), "n".into()), (col("b"), "n".into())],
    };
    assert!(matches!(
        duplicate.output_schema(&schema()).unwrap_err(),
        Error::Plan(_)
    ));
}

#[test]
fn empty_projection_keeps_the_row_count() {
    let mut rng = StdRng::seed_from_u64(1);
    let rows = random_rows(&mut rng, 10);
    let out = run(&ProjectSpec { exprs: vec![] }, to_batch(&rows)).unwrap();
    assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), rows.len());
}
