//! Every case of `bad_connectors.txt` is refused at parse time with the expected
//! message at the expected line and column: a connector's own checks reach the user as
//! positioned SQL errors.

#[test]
fn bad_connector_options_name_the_option_and_its_position() {
    let text = include_str!("bad_connectors.txt");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert!(lines.len() >= 40, "{} lines", lines.len());
    for pair in lines.chunks(2) {
        let (statement, expected) = (pair[0], pair[1]);
        let expected = expected.strip_prefix("=> at ").unwrap();
        let (marker, fragment) = expected.split_once(" | ").unwrap();
        let column = statement.find(marker).unwrap() + 1;
        let position = format!("1:{column}");
        let err = match runnel_sql::parse(statement) {
            Ok(parsed) => panic!("accepted: {statement}\n{parsed:?}"),
            Err(e) => e,
        };
        assert!(
            err.message.contains(fragment),
            "{statement}\nwanted `{fragment}`, got `{}`",
            err.message
        );
        assert_eq!(
            format!("{}:{}", err.line, err.column),
            position,
            "{statement}\n{}",
            err.message
        );
    }
}

#[test]
fn an_idle_timeout_reaches_the_watermark_strategy_of_any_source() {
    let text = "CREATE SOURCE s (t TIMESTAMP(3), WATERMARK FOR t AS t) WITH \
                (connector = 'kafka', bootstrap.servers = 'b:9092', topic = 'x', \
                'source.idle-timeout-ms' = '1500')";
    let statements = runnel_sql::parse(text).unwrap();
    let runnel_sql::Statement::CreateSource(source) = &statements[0] else {
        panic!("{statements:?}")
    };
    assert_eq!(source.watermark.idle_timeout_ms, Some(1500));
    assert!(
        !source
            .connector
            .options
            .contains_key("source.idle-timeout-ms")
    );
    let strategy = source.watermark_strategy();
    assert_eq!(
        strategy.idle_timeout,
        Some(std::time::Duration::from_millis(1500))
    );
}

/// The Kafka example of the README parses and plans (it needs a broker to run).
#[test]
fn the_kafka_q5_example_plans() {
    let text = include_str!("../../examples/sql/q5_kafka.sql");
    let statements = runnel_sql::parse(text).unwrap();
    let (runnel_sql::Statement::CreateSource(bids), runnel_sql::Statement::CreateSink(sink)) =
        (&statements[0], &statements[1])
    else {
        panic!("{statements:?}")
    };
    assert_eq!(
        bids.metadata(),
        vec![("kafka_offset".into(), "offset".into())]
    );
    assert_eq!(
        sink.connector.as_ref().unwrap().get("key.fields"),
        Some("auction")
    );
    let plan = runnel_sql::plan_sink(sink, std::slice::from_ref(bids)).unwrap();
    assert!(plan.to_string().contains("window_join"), "{plan}");
}
