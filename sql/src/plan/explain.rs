//! `EXPLAIN CREATE SINK ...`: a plan as one line per operator.

use std::fmt;

use super::{AggregateFn, PipelinePlan, Stage};
use crate::statement::SourceDef;

impl fmt::Display for PipelinePlan {
    /// ```text
    /// source bids (log partitions='1', topic='bids'), event time date_time, watermark delay 5000 ms
    /// filter (price > 10)
    /// project auction, date_time
    /// window HOP(slide 2000 ms, size 10000 ms) by [auction]: count(*) AS __agg0
    /// top_k 3 by __agg0 DESC
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pipeline(f, &self.source, &self.stages, "")
    }
}

/// One line per operator, prefixed with `indent`; a join's second input follows its
/// line, indented.
fn write_pipeline(
    f: &mut fmt::Formatter<'_>,
    source: &SourceDef,
    stages: &[Stage],
    indent: &str,
) -> fmt::Result {
    let connector = &source.connector;
    writeln!(
        f,
        "{indent}source {} ({connector}), event time {}, watermark delay {} ms",
        source.name, source.watermark.column, source.watermark.delay_ms
    )?;
    for stage in stages {
        write!(f, "{indent}")?;
        match stage {
            Stage::Filter { predicate } => writeln!(f, "filter {predicate}")?,
            Stage::Project { columns } => {
                let columns: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        if c.expr == c.name {
                            c.name.clone()
                        } else {
                            format!("{} AS {}", c.expr, c.name)
                        }
                    })
                    .collect();
                writeln!(f, "project {}", columns.join(", "))?;
            }
            Stage::Window {
                window,
                keys,
                aggregates,
                time,
            } => {
                let aggregates: Vec<String> = aggregates
                    .iter()
                    .map(|a| {
                        let name = match a.function {
                            AggregateFn::Count => "count",
                            AggregateFn::Sum => "sum",
                            AggregateFn::Min => "min",
                            AggregateFn::Max => "max",
                            AggregateFn::Avg => "avg",
                        };
                        let column = a.column.as_deref().unwrap_or("*");
                        format!("{name}({column}) AS {}", a.alias)
                    })
                    .collect();
                let time = time
                    .as_ref()
                    .map(|t| format!(" on {t}"))
                    .unwrap_or_default();
                writeln!(
                    f,
                    "window {window}{time} by [{}]: {}",
                    keys.join(", "),
                    aggregates.join(", ")
                )?;
            }
            Stage::Join {
                right,
                left_keys,
                right_keys,
                residual,
                ..
            } => {
                let on: Vec<String> = left_keys
                    .iter()
                    .zip(right_keys)
                    .map(|(l, r)| format!("{l} = {r}"))
                    .collect();
                let residual = residual
                    .as_ref()
                    .map(|r| format!(" and {r}"))
                    .unwrap_or_default();
                writeln!(f, "window_join on {}{residual}, with:", on.join(", "))?;
                write_pipeline(f, &right.source, &right.stages, &format!("{indent}  "))?;
            }
            Stage::TopK { k, order_by } => {
                let order: Vec<String> = order_by
                    .iter()
                    .map(|o| format!("{} {}", o.column, if o.descending { "DESC" } else { "ASC" }))
                    .collect();
                writeln!(f, "top_k {k} by {}", order.join(", "))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Statement, parse, plan_sink};

    /// The lines `EXPLAIN` prints for `text`: a source, then `EXPLAIN CREATE SINK ...`.
    fn explain(text: &str) -> Vec<String> {
        let statements = parse(text).unwrap();
        let (Statement::CreateSource(bids), Statement::Explain(sink)) =
            (&statements[0], &statements[1])
        else {
            panic!("{statements:?}");
        };
        let plan = plan_sink(sink, std::slice::from_ref(bids)).unwrap();
        plan.to_string().lines().map(str::to_string).collect()
    }

    #[test]
    fn explain_lists_one_operator_per_line() {
        let text = "CREATE SOURCE bids (auction BIGINT, price BIGINT, date_time TIMESTAMP(3), \
            WATERMARK FOR date_time AS date_time - INTERVAL '5' SECOND) \
            WITH (connector = 'log');
            EXPLAIN CREATE SINK hot AS SELECT * FROM (
              SELECT auction, window_start, window_end, n, ROW_NUMBER() OVER (
                PARTITION BY window_start, window_end ORDER BY n DESC) AS rn
              FROM (SELECT auction, window_start, window_end, COUNT(*) AS n
                    FROM HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
                    WHERE price > 10
                    GROUP BY auction, window_start, window_end)) WHERE rn <= 3";
        assert_eq!(
            explain(text),
            [
                "source bids (log partitions='1', topic='bids'), event time date_time, watermark delay 5000 ms",
                "filter (price > 10)",
                "project auction, date_time",
                "window HOP(slide 2000 ms, size 10000 ms) by [auction]: count(*) AS __agg0",
                "top_k 3 by __agg0 DESC",
                "project auction, window_start, window_end, __agg0 AS n, rn",
            ]
        );
    }

    /// A join prints its second input indented under it (both count per auction: the
    /// build shares that prefix); the regroup of the maximum per window is a
    /// one-millisecond window on the upstream window's end.
    #[test]
    fn explain_shows_both_inputs_of_a_join() {
        let text = "CREATE SOURCE bids (auction BIGINT, date_time TIMESTAMP(3), \
            WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND) \
            WITH (connector = 'log');
            EXPLAIN CREATE SINK q5 AS SELECT c.auction, c.num FROM
              (SELECT auction, window_start, window_end, COUNT(*) AS num
               FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
               GROUP BY auction, window_start, window_end) c
            JOIN
              (SELECT window_start, window_end, MAX(num) AS maxn FROM
                (SELECT auction, window_start, window_end, COUNT(*) AS num
                 FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
                 GROUP BY auction, window_start, window_end)
               GROUP BY window_start, window_end) m
            ON c.window_start = m.window_start AND c.window_end = m.window_end
               AND c.num >= m.maxn";
        assert_eq!(
            explain(text),
            [
                "source bids (log partitions='1', topic='bids'), event time date_time, watermark delay 1000 ms",
                "window TUMBLE(size 10000 ms) by [auction]: count(*) AS __agg0",
                "project auction AS __l0, window_start AS __l1, window_end AS __l2, __agg0 AS __l3, window_start, window_end",
                "window_join on __l1 = __r0, __l2 = __r1 and (__l3 >= __r2), with:",
                "  source bids (log partitions='1', topic='bids'), event time date_time, watermark delay 1000 ms",
                "  window TUMBLE(size 10000 ms) by [auction]: count(*) AS __agg0",
                "  project __agg0, window_start AS __ws, window_end AS __we, (window_end - INTERVAL '0.001000000 SECS') AS __fire",
                "  window TUMBLE(size 1 ms) on __fire by [__ws, __we]: max(__agg0) AS __agg0",
                "  project __ws AS window_start, __we AS window_end, __agg0",
                "  project window_start AS __r0, window_end AS __r1, __agg0 AS __r2",
                "project __l0 AS auction, __l3 AS num",
            ]
        );
    }
}
