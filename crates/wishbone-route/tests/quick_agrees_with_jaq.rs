//! The quick path answers as jaq does: random conditions of the quick shape
//! over random events, each answered both ways.

use wishbone_route::Condition;
use wishbone_runtime::random::Random;

const KEYS: [&str; 3] = ["a", "b", "a b"];

fn pick<'a>(random: &mut Random, from: &[&'a str]) -> &'a str {
    from[random.below(from.len() as u64) as usize]
}

fn constant(random: &mut Random) -> String {
    pick(
        random,
        &[
            "null",
            "true",
            "false",
            "0",
            "1",
            "-1",
            "1.5",
            "-2.5",
            "1e3",
            "\"x\"",
            "\"\"",
            "\"é\"",
            "\"a\\tb\"",
        ],
    )
    .to_string()
}

fn path(random: &mut Random) -> String {
    let depth = 1 + random.below(2);
    (0..depth)
        .map(|_| match pick(random, &KEYS) {
            "a b" => ".[\"a b\"]".to_string(),
            key => format!(".{key}"),
        })
        .collect()
}

fn condition(random: &mut Random, depth: u32) -> String {
    let choice = if depth == 0 {
        random.below(2)
    } else {
        random.below(6)
    };
    match choice {
        0 => path(random),
        1 => {
            let op = pick(random, &["==", "!=", "<", "<=", ">", ">="]);
            if random.below(2) == 0 {
                format!("{} {op} {}", path(random), constant(random))
            } else {
                format!("{} {op} {}", constant(random), path(random))
            }
        }
        2 => format!(
            "({}) and ({})",
            condition(random, depth - 1),
            condition(random, depth - 1)
        ),
        3 => format!(
            "({}) or ({})",
            condition(random, depth - 1),
            condition(random, depth - 1)
        ),
        4 => format!("({}) | not", condition(random, depth - 1)),
        _ => format!("{} == {}", path(random), constant(random)),
    }
}

fn value(random: &mut Random, depth: u32) -> String {
    let choice = if depth == 0 {
        random.below(9)
    } else {
        random.below(11)
    };
    match choice {
        0 => "null".into(),
        1 => "true".into(),
        2 => "false".into(),
        3 => pick(
            random,
            &[
                "0",
                "1",
                "-1",
                "1000",
                "1.0",
                "1.5",
                "-2.5",
                "1e3",
                "18446744073709551615",
            ],
        )
        .into(),
        4..=6 => pick(
            random,
            &["\"x\"", "\"\"", "\"\\u00e9\"", "\"a\\tb\"", "\"y\""],
        )
        .into(),
        7 => "[1,\"x\"]".into(),
        8 => "[]".into(),
        _ => object(random, depth - 1),
    }
}

fn object(random: &mut Random, depth: u32) -> String {
    let fields = random.below(4);
    let body: Vec<String> = (0..fields)
        .map(|_| format!("\"{}\":{}", pick(random, &KEYS), value(random, depth)))
        .collect();
    format!("{{{}}}", body.join(","))
}

#[test]
fn quick_conditions_answer_as_jaq_does() {
    let mut random = Random(0x5eed);
    let mut compared = 0;
    for _ in 0..400 {
        let text = condition(&mut random, 3);
        let condition = Condition::compile(&text).unwrap();
        assert!(condition.is_quick(), "{text}");
        for _ in 0..50 {
            let event = match random.below(20) {
                0 => value(&mut random, 1),
                _ => object(&mut random, 2),
            };
            let quick = condition.matches(event.as_bytes());
            let jaq = condition.run(event.as_bytes());
            assert_eq!(
                quick.is_ok(),
                jaq.is_ok(),
                "{text} on {event}: {quick:?} {jaq:?}"
            );
            if let (Ok(quick), Ok(jaq)) = (quick, jaq) {
                assert_eq!(quick, jaq, "{text} on {event}");
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 20_000);
}
