//! Every condition in the examples of `docs/routing.md` compiles, holds for
//! an event made to match them all, and fails for one made to match none.

use wishbone_route::Condition;

const MATCHING: &str = r#"{"level":"error","severity":2,"appname":"billing","trace_id":"t1","http":{"status":503},"user agent":"curl","hostname":"web-1","message":"a timeout","service":"billing","structured_data":{"meta@1":{"order":"42"}}}"#;
const OTHER: &str = r#"{"level":"debug","severity":6,"appname":"web","trace_id":null,"http":{"status":200},"user agent":"firefox","hostname":"lab-1","message":"fine","service":"web","structured_data":{}}"#;

fn documented_conditions() -> Vec<String> {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/routing.md"
    ))
    .unwrap();
    let table = page
        .split("| want | condition |")
        .nth(1)
        .expect("the examples table");
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cell = line
                .trim_end_matches('|')
                .rsplit(" | ")
                .next()
                .unwrap()
                .trim();
            cell.trim_matches('`').replace("\\|", "|")
        })
        .collect()
}

#[test]
fn the_documented_conditions_do_what_their_rows_say() {
    let conditions = documented_conditions();
    assert!(conditions.len() >= 10, "{conditions:?}");
    for text in conditions {
        let condition = Condition::compile(&text).unwrap_or_else(|error| panic!("{text}: {error}"));
        assert_eq!(condition.matches(MATCHING.as_bytes()), Ok(true), "{text}");
        assert_eq!(condition.matches(OTHER.as_bytes()), Ok(false), "{text}");
    }
}
