//! `EXPLAIN CREATE SINK ...`: a plan as one line per operator.

use std::fmt;

use super::{AggregateFn, PipelinePlan, Stage};
use crate::statement::SourceConnector;

impl fmt::Display for PipelinePlan {
    /// ```text
    /// source bids (log topic bids), event time date_time, watermark delay 5000 ms
    /// filter (price > 10)
    /// project auction, date_time
    /// window HOP(slide 2000 ms, size 10000 ms) by [auction]: count(*) AS __agg0
    /// top_k 3 by __agg0 DESC
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = &self.source;
        let connector = match &source.connector {
            SourceConnector::Log { topic, .. } => format!("log topic {topic}"),
            SourceConnector::Nexmark { table, .. } => format!("nexmark {table}"),
        };
        writeln!(
            f,
            "source {} ({connector}), event time {}, watermark delay {} ms",
            source.name, source.watermark.column, source.watermark.delay_ms
        )?;
        for stage in &self.stages {
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
                    writeln!(
                        f,
                        "window {window} by [{}]: {}",
                        keys.join(", "),
                        aggregates.join(", ")
                    )?;
                }
                Stage::TopK { k, order_by } => {
                    let order: Vec<String> = order_by
                        .iter()
                        .map(|o| {
                            format!("{} {}", o.column, if o.descending { "DESC" } else { "ASC" })
                        })
                        .collect();
                    writeln!(f, "top_k {k} by {}", order.join(", "))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Statement, parse, plan_sink};

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
        let statements = parse(text).unwrap();
        let (Statement::CreateSource(bids), Statement::Explain(sink)) =
            (&statements[0], &statements[1])
        else {
            panic!("{statements:?}");
        };
        let plan = plan_sink(sink, std::slice::from_ref(bids)).unwrap();
        let explained = plan.to_string();
        let lines: Vec<&str> = explained.lines().collect();
        assert_eq!(
            lines,
            [
                "source bids (log topic bids), event time date_time, watermark delay 5000 ms",
                "filter (price > 10)",
                "project auction, date_time",
                "window HOP(slide 2000 ms, size 10000 ms) by [auction]: count(*) AS __agg0",
                "top_k 3 by __agg0 DESC",
                "project auction, window_start, window_end, __agg0 AS n, rn",
            ]
        );
    }
}
