//! Refusals point at the offending token: line and column are checked for each.

use crate::{SqlError, Statement, parse, plan_sink};

const SOURCE: &str = "CREATE SOURCE bids (auction BIGINT, bidder BIGINT, price BIGINT, \
    channel VARCHAR, date_time TIMESTAMP(3), \
    WATERMARK FOR date_time AS date_time - INTERVAL '5' SECOND) \
    WITH (connector = 'log', topic = 'bids', partitions = '4');";

fn parse_error(text: &str) -> SqlError {
    match parse(text) {
        Ok(statements) => panic!("`{text}` parsed: {statements:?}"),
        Err(e) => e,
    }
}

/// Plans `query` (starting at line 2, column 1 of the text) against the `bids` source.
fn plan_error(query: &str) -> SqlError {
    let text = format!("{SOURCE}\nCREATE SINK out AS\n{query}");
    let statements = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let (Statement::CreateSource(bids), Statement::CreateSink(sink)) =
        (&statements[0], &statements[1])
    else {
        panic!("unexpected statements {statements:?}");
    };
    match plan_sink(sink, std::slice::from_ref(bids)) {
        Ok(plan) => panic!("`{query}` planned: {plan:?}"),
        Err(e) => e,
    }
}

fn check(error: SqlError, line: u64, column: u64, needle: &str) {
    assert!(
        error.message.contains(needle),
        "`{error}` does not mention `{needle}`"
    );
    assert_eq!((error.line, error.column), (line, column), "{error}");
}

#[test]
fn display_names_line_and_column() {
    let error = SqlError {
        message: "boom".into(),
        line: 3,
        column: 7,
    };
    assert_eq!(error.to_string(), "line 3, column 7: boom");
}

#[test]
fn statement_syntax_errors() {
    check(parse_error("SHOW TABLES"), 1, 6, "SOURCES, SINKS or JOBS");
    check(parse_error("SELECT 1"), 1, 1, "CREATE SOURCE, CREATE SINK");
    check(parse_error("DROP SOURCE bids"), 1, 6, "only sinks");
    check(
        parse_error("SHOW SOURCES;\n  SHOW SINKS extra"),
        2,
        14,
        "after the end",
    );
    check(
        parse_error("CREATE SINK s WITH (connector = 'log') SELECT 1"),
        1,
        40,
        "expected AS",
    );
    check(
        parse_error("CREATE SINK s AS\nSELECT a, (b FROM bids"),
        2,
        14,
        "expected",
    );
    check(
        parse_error("CREATE SINK s AS\nSELECT a FROM bids WHERE"),
        2,
        25,
        "expected",
    );
    check(
        parse_error("CREATE SINK s WITH (connector = 'kinesis') AS SELECT 1"),
        1,
        33,
        "unknown sink connector 'kinesis'",
    );
}

#[test]
fn source_definition_errors() {
    check(
        parse_error("CREATE SOURCE s (a BIGINT, ts TIMESTAMP(3))\nWITH (connector = 'log')"),
        2,
        1,
        "needs an event-time column",
    );
    check(
        parse_error(
            "CREATE SOURCE s (a BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)\n\
             WITH (connector = 'log', topik = 'x')",
        ),
        2,
        26,
        "unknown option `topik`",
    );
    check(
        parse_error(
            "CREATE SOURCE s (a MONEY, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'log')",
        ),
        1,
        20,
        "MONEY is not supported",
    );
    check(
        parse_error(
            "CREATE SOURCE s (a BIGINT, ts TIMESTAMP, WATERMARK FOR a AS a - INTERVAL '1' MONTH) \
             WITH (connector = 'log')",
        ),
        1,
        74,
        "months",
    );
    check(
        parse_error(
            "CREATE SOURCE s (a VARCHAR, ts TIMESTAMP, WATERMARK FOR a AS a) WITH (connector = 'log')",
        ),
        1,
        43,
        "TIMESTAMP or BIGINT",
    );
    check(
        parse_error("CREATE SOURCE s (a BIGINT, a BIGINT) WITH (connector = 'log')"),
        1,
        28,
        "declared twice",
    );
    check(
        parse_error("CREATE SOURCE b WITH (connector = 'nexmark', type = 'orders')"),
        1,
        53,
        "unknown Nexmark event type",
    );
    check(
        parse_error("CREATE SOURCE b WITH (connector = 'log', partitions = 'many')"),
        1,
        55,
        "positive integer",
    );
}

#[test]
fn unknown_names() {
    check(
        plan_error("SELECT * FROM nosuch"),
        3,
        15,
        "unknown source `nosuch`",
    );
    check(
        plan_error("SELECT auction,\n       nope FROM bids"),
        4,
        8,
        "nope",
    );
    check(
        plan_error(
            "SELECT COUNT(*) FROM TUMBLE(orders, date_time, INTERVAL '1' SECOND)\nGROUP BY window_start, window_end",
        ),
        3,
        29,
        "unknown source `orders`",
    );
}

#[test]
fn wrong_types() {
    check(
        plan_error(
            "SELECT window_start, window_end,\n  SUM(channel) AS s\n\
             FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)\nGROUP BY window_start, window_end",
        ),
        4,
        3,
        "sum(Utf8)",
    );
}

#[test]
fn unbounded_and_unsupported_shapes() {
    check(
        plan_error("SELECT auction, COUNT(*)\nFROM bids\nGROUP BY auction"),
        5,
        1,
        "without a window is unbounded",
    );
    check(
        plan_error("SELECT *\nFROM bids a JOIN bids b ON a.auction = b.auction"),
        4,
        13,
        "joins of unbounded streams are not supported",
    );
    check(
        plan_error("SELECT * FROM bids\nORDER BY price DESC"),
        4,
        1,
        "ORDER BY over a stream",
    );
    check(
        plan_error("SELECT * FROM bids LIMIT 10"),
        3,
        20,
        "LIMIT over a stream",
    );
    check(
        plan_error(
            "SELECT window_start, window_end, COUNT(DISTINCT bidder)\n\
             FROM SESSION(bids, date_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end",
        ),
        3,
        40,
        "DISTINCT aggregates over SESSION windows are not supported",
    );
    check(
        plan_error(
            "SELECT window_start, window_end,\n  COUNT(DISTINCT bidder), COUNT(DISTINCT auction)\n\
             FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) GROUP BY window_start, window_end",
        ),
        4,
        9,
        "DISTINCT aggregates over different arguments",
    );
    check(
        plan_error("SELECT * FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)"),
        3,
        15,
        "without an aggregate",
    );
    check(
        plan_error(
            "SELECT COUNT(*) FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)\nGROUP BY auction",
        ),
        4,
        10,
        "both window_start and window_end",
    );
}

#[test]
fn window_function_arguments() {
    check(
        plan_error(
            "SELECT COUNT(*) FROM TUMBLE(bids, price, INTERVAL '10' SECOND)\n\
             GROUP BY window_start, window_end",
        ),
        3,
        35,
        "event time of `bids`",
    );
    check(
        plan_error(
            "SELECT COUNT(*) FROM HOP(bids, date_time, INTERVAL '10' SECOND, INTERVAL '2' SECOND)\n\
             GROUP BY window_start, window_end",
        ),
        3,
        74,
        "slide (10000 ms) is larger than its size",
    );
    check(
        plan_error(
            "SELECT COUNT(*) FROM CUMULATE(bids, date_time, INTERVAL '4' SECOND, INTERVAL '10' SECOND)\n\
             GROUP BY window_start, window_end",
        ),
        3,
        78,
        "CUMULATE max size (10000 ms) is not a multiple of its step (4000 ms)",
    );
    check(
        plan_error(
            "SELECT COUNT(*)\nFROM CUMULATE(bids, date_time, INTERVAL '1' SECOND)\n\
             GROUP BY window_start, window_end",
        ),
        4,
        6,
        "CUMULATE takes 4 arguments: CUMULATE(source, time_column, step, max_size)",
    );
    check(
        plan_error(
            "SELECT COUNT(*) FROM TUMBLE(bids, date_time, 10)\nGROUP BY window_start, window_end",
        ),
        3,
        46,
        "interval literal",
    );
    check(
        plan_error(
            "SELECT COUNT(*) FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND)\n\
             WHERE window_start > TIMESTAMP '2024-01-01 00:00:00'\n\
             GROUP BY window_start, window_end",
        ),
        4,
        7,
        "computed by the window aggregate",
    );
}

#[test]
fn top_n_needs_a_bound() {
    let ranked = "SELECT auction, window_start, window_end, n,\n\
        ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY n DESC) AS rn\n\
        FROM (SELECT auction, window_start, window_end, COUNT(*) AS n\n\
        FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)\n\
        GROUP BY auction, window_start, window_end)";
    check(plan_error(ranked), 4, 1, "WHERE rn <= N");
    check(
        plan_error(&format!("SELECT * FROM ({ranked}) WHERE n > 3")),
        7,
        46,
        "WHERE rn <= N",
    );
    check(
        plan_error("SELECT auction, ROW_NUMBER() OVER (ORDER BY price) AS rn FROM bids"),
        3,
        30,
        "window functions over single rows",
    );
}

/// A windowed count per auction, for the join and regroup refusals.
const COUNTS: &str = "(SELECT auction, window_start, window_end, COUNT(*) AS n \
    FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND) \
    GROUP BY auction, window_start, window_end)";

#[test]
fn joins_and_regroups_need_windows() {
    check(
        plan_error(&format!(
            "SELECT a.auction FROM {COUNTS} a\nJOIN {COUNTS} b ON a.window_start = b.window_start"
        )),
        4,
        1,
        "a join must match the windows of its inputs",
    );
    check(
        plan_error(&format!(
            "SELECT a.auction FROM {COUNTS} a\nLEFT JOIN {COUNTS} b\n\
             ON a.window_start = b.window_start AND a.window_end = b.window_end"
        )),
        4,
        6,
        "only inner joins",
    );
    check(
        plan_error(&format!(
            "SELECT auction, MAX(n) FROM {COUNTS}\nGROUP BY auction"
        )),
        4,
        10,
        "must GROUP BY both window_start and window_end",
    );
}
