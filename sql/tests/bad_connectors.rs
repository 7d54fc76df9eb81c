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
