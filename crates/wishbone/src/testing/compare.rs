//! Whether what a queue carried is what a case expects, and the
//! difference when it is not.

use bytes::Bytes;
use wishbone_bootstrap::Expectation;
use wishbone_route::Condition;

/// Two events are the same: equal JSON values where both are JSON, else
/// equal text.
fn same(expected: &str, got: &[u8]) -> bool {
    let as_json = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).ok();
    match (as_json(expected.as_bytes()), as_json(got)) {
        (Some(expected), Some(got)) => expected == got,
        _ => expected.as_bytes() == got,
    }
}

fn shown(events: &[Bytes]) -> String {
    let lines: Vec<String> = events
        .iter()
        .map(|event| format!("      {}", String::from_utf8_lossy(event)))
        .collect();
    match lines.is_empty() {
        true => "      (none)".into(),
        false => lines.join("\n"),
    }
}

/// None when `got` meets the expectation; else what differs, to print.
pub fn difference(expectation: &Expectation, got: &[Bytes]) -> Option<String> {
    let queue = &expectation.queue;
    if let Some(expected) = &expectation.events {
        let equal = expected.len() == got.len()
            && expected
                .iter()
                .zip(got)
                .all(|(expected, got)| same(expected, got));
        if equal {
            return None;
        }
        let expected: Vec<Bytes> = expected
            .iter()
            .map(|text| Bytes::from(text.clone()))
            .collect();
        return Some(format!(
            "{queue}: expected {} events:\n{}\n    got {}:\n{}",
            expected.len(),
            shown(&expected),
            got.len(),
            shown(got)
        ));
    }
    if let Some(count) = expectation.count {
        return (got.len() != count).then(|| {
            format!(
                "{queue}: expected {count} events, got {}:\n{}",
                got.len(),
                shown(got)
            )
        });
    }
    let text = expectation.condition.as_deref().unwrap_or("true");
    let condition = match Condition::compile(text) {
        Ok(condition) => condition,
        Err(error) => {
            return Some(format!(
                "{queue}: the condition `{text}` does not compile: {error}"
            ));
        }
    };
    let failing: Vec<Bytes> = got
        .iter()
        .filter(|event| !condition.matches(event).unwrap_or(false))
        .cloned()
        .collect();
    (!failing.is_empty()).then(|| {
        format!(
            "{queue}: {} of {} events do not hold `{text}`:\n{}",
            failing.len(),
            got.len(),
            shown(&failing)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(
        events: Option<&[&str]>,
        count: Option<usize>,
        condition: Option<&str>,
    ) -> Expectation {
        Expectation {
            queue: "f.outbox".into(),
            events: events.map(|events| events.iter().map(|e| e.to_string()).collect()),
            count,
            condition: condition.map(str::to_string),
        }
    }

    #[test]
    fn json_is_compared_as_values_and_text_as_text() {
        let got = [
            Bytes::from_static(b"{\"b\":2, \"a\":1}"),
            Bytes::from_static(b"plain"),
        ];
        assert!(
            difference(
                &expect(Some(&["{\"a\":1,\"b\":2}", "plain"]), None, None),
                &got
            )
            .is_none()
        );
        let differs = difference(&expect(Some(&["{\"a\":1}", "plain"]), None, None), &got).unwrap();
        assert!(
            differs.contains("expected 2 events") && differs.contains("{\"b\":2, \"a\":1}"),
            "{differs}"
        );
        assert!(difference(&expect(None, Some(2), None), &got).is_none());
        assert!(difference(&expect(None, Some(1), None), &got).is_some());
        let held = difference(&expect(None, None, Some(".a == 1")), &got).unwrap();
        assert!(
            held.contains("1 of 2 events do not hold") && held.contains("plain"),
            "{held}"
        );
    }
}
