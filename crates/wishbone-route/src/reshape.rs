//! What a jq program makes of a parcel, tokens included: plain logic,
//! tested without queues.
//!
//! Each value the program yields for an event is an event, in order. None:
//! the event is dropped and its token acknowledged (a program that drops
//! an event has handled it). Several: they share the original's token
//! ([`wishbone_runtime::ack::Ack::copies`]), so the original counts as
//! delivered once every one of them is, and as failed when one fails. An
//! error refuses the event, as it came, with the reason. Lines whose every
//! event yields exactly one value stay lines, under the block's token.

use bytes::Bytes;
use wishbone_runtime::rewrite::Rewritten;
use wishbone_runtime::turn::{each_in_turn, map_in_turn};
use wishbone_runtime::{Batch, Event, Lines, LinesBuilder, Parcel};

use crate::program::Program;

/// The parcel's events after the program, and how many it dropped.
pub struct Reshaped {
    /// What goes on, and what is refused.
    pub rewritten: Rewritten,
    /// Events for which the program yielded nothing.
    pub dropped: usize,
}

/// For each event of a parcel, the range of `values` it yielded, or why
/// it was refused.
type Results = Vec<Result<std::ops::Range<usize>, String>>;

/// Runs `program` on the events of `parcel`: every one, unless the
/// program runs in jaq (its time per event is then up to its budget) and
/// the module's turn ends first; the events not reached are the
/// rewritten's `rest`. A program in jaq runs on `workers` threads.
pub fn reshape(program: &Program, mut parcel: Parcel, workers: usize) -> Reshaped {
    let paced = !program.is_quick();
    let mut values = Vec::new();
    let mut results: Results = Vec::with_capacity(parcel.len());
    if paced {
        // In jaq: on the pool when there is one, values gathered per event.
        let each = map_in_turn(&parcel, paced, workers, |data| {
            let mut out = Vec::new();
            program.run(data, &mut out).map(|()| out)
        });
        for outcome in each {
            let start = values.len();
            results.push(outcome.map(|out| {
                values.extend(out);
                start..values.len()
            }));
        }
    } else {
        // The quick path: every value straight into one vector.
        each_in_turn(&parcel, false, |data| {
            let start = values.len();
            results.push(program.run(data, &mut values).map(|()| start..values.len()));
        });
    }
    let rest = parcel.split_off(results.len());
    let parcel = match parcel {
        Parcel::Lines(lines) => match as_lines(lines, &results, &values) {
            Ok(reshaped) => {
                let mut rewritten = Rewritten::unchanged(Parcel::Lines(reshaped));
                rewritten.rest = rest;
                return Reshaped {
                    rewritten,
                    dropped: 0,
                };
            }
            Err(lines) => Parcel::Lines(lines),
        },
        events => events,
    };
    let mut reshaped = as_events(parcel.into_events(), results, values);
    reshaped.rewritten.rest = rest;
    reshaped
}

/// The lines the values make, when each line yielded one value and no
/// value holds the delimiter; else the lines back.
fn as_lines(mut lines: Lines, results: &Results, values: &[Vec<u8>]) -> Result<Lines, Lines> {
    let delimiter = lines.delimiter().clone();
    let one_each = results.iter().all(|result| {
        result
            .as_ref()
            .is_ok_and(|range| range.len() == 1 && !holds(&values[range.start], &delimiter))
    });
    if !one_each {
        return Err(lines);
    }
    let bytes = values
        .iter()
        .map(|value| value.len() + delimiter.len())
        .sum();
    let mut builder = LinesBuilder::new(delimiter, bytes, values.len());
    for value in values {
        builder.push(value);
    }
    let reshaped = builder.finish();
    Ok(match lines.take_ack() {
        Some(ack) => reshaped.with_ack(ack),
        None => reshaped,
    })
}

fn holds(value: &[u8], delimiter: &Bytes) -> bool {
    !delimiter.is_empty() && memchr::memmem::find(value, delimiter).is_some()
}

/// Each event as its values, dropped, or refused.
fn as_events(events: Batch, results: Results, values: Vec<Vec<u8>>) -> Reshaped {
    let mut values: Vec<Option<Vec<u8>>> = values.into_iter().map(Some).collect();
    let mut take = |index: usize| values[index].take().unwrap_or_default();
    let mut passed = Batch::with_capacity(events.len());
    let mut refused = Vec::new();
    let mut dropped = 0;
    for (event, result) in events.into_iter().zip(results) {
        match result {
            Err(reason) => refused.push((event, reason)),
            Ok(range) if range.is_empty() => {
                dropped += 1;
                event.acknowledge();
            }
            Ok(range) if range.len() == 1 => passed.push(event.with_data(take(range.start))),
            Ok(range) => match event.ack() {
                None => passed.extend(range.map(|index| Event::new(take(index)))),
                Some(ack) => {
                    let shares = ack.copies(range.len());
                    for (index, share) in range.zip(shares) {
                        passed.push(Event::new(take(index)).with_ack(share));
                    }
                }
            },
        }
    }
    Reshaped {
        rewritten: Rewritten {
            passed: Parcel::Events(passed),
            refused,
            rest: Parcel::default(),
        },
        dropped,
    }
}

#[cfg(test)]
mod tests {
    use wishbone_runtime::ack::{Ack, Outcome, Replies, issuer};

    use super::*;

    /// A token, and where its outcome goes.
    fn token() -> (Ack, Replies, wishbone_runtime::ack::AckIssuer) {
        let (issuer, replies) = issuer();
        (issuer.issue(1), replies, issuer)
    }

    fn program(text: &str) -> Program {
        Program::compile(text).unwrap()
    }

    fn lines(texts: &[&str]) -> Lines {
        let events: Vec<Event> = texts
            .iter()
            .map(|text| Event::new(text.to_string()))
            .collect();
        Lines::encode(&events, &Bytes::from_static(b"\n"))
    }

    fn texts(parcel: Parcel) -> Vec<String> {
        parcel
            .into_events()
            .iter()
            .map(|event| String::from_utf8(event.data().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn lines_that_each_yield_one_object_stay_lines_under_their_token() {
        let (ack, mut outcomes, _issuer) = token();
        let parcel = Parcel::Lines(lines(&[r#"{"a":1}"#, r#"{"a":2}"#]).with_ack(ack));
        let reshaped = reshape(&program("{b: .a}"), parcel, 1);
        let Parcel::Lines(passed) = &reshaped.rewritten.passed else {
            panic!("not lines")
        };
        assert_eq!(
            passed.iter().collect::<Vec<_>>(),
            [&br#"{"b":1}"#[..], br#"{"b":2}"#]
        );
        passed.ack().unwrap().acknowledge();
        assert_eq!(outcomes.try_recv().unwrap().1, Outcome::Acknowledged);
    }

    #[test]
    fn an_event_without_values_is_dropped_and_acknowledged() {
        let (ack, mut outcomes, _issuer) = token();
        let parcel = Parcel::Events(vec![
            Event::new(r#"{"n":1}"#).with_ack(ack),
            Event::new(r#"{"n":2}"#),
        ]);
        let reshaped = reshape(&program("select(.n > 1)"), parcel, 1);
        assert_eq!(reshaped.dropped, 1);
        assert_eq!(texts(reshaped.rewritten.passed), [r#"{"n":2}"#]);
        assert_eq!(outcomes.try_recv().unwrap().1, Outcome::Acknowledged);
    }

    #[test]
    fn several_values_share_the_token_which_fails_when_one_fails() {
        let (ack, mut outcomes, _issuer) = token();
        let parcel = Parcel::Events(vec![Event::new(r#"{"items":[1,2,3]}"#).with_ack(ack)]);
        let reshaped = reshape(&program(".items[] | {id: .}"), parcel, 1);
        let events = reshaped.rewritten.passed.into_events();
        assert_eq!(events.len(), 3);
        events[0].acknowledge();
        events[1].acknowledge();
        assert!(
            outcomes.try_recv().is_err(),
            "settled before every copy was"
        );
        events[2].fail();
        assert_eq!(outcomes.try_recv().unwrap().1, Outcome::Failed);
    }

    #[test]
    fn a_failure_refuses_the_event_as_it_came() {
        let parcel = Parcel::Lines(lines(&[r#"{"a":"x"}"#, r#"{"a":1}"#]));
        let reshaped = reshape(&program(".a + 1"), parcel, 1);
        assert_eq!(texts(reshaped.rewritten.passed), ["2"]);
        let refused = &reshaped.rewritten.refused;
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0.data().as_ref(), br#"{"a":"x"}"#);
    }

    #[test]
    fn a_value_holding_the_delimiter_makes_events_not_lines() {
        let parcel =
            Parcel::Lines(lines(&[r#"{"a":"x"}"#]).with_delimiter(&Bytes::from_static(b"x")));
        let reshaped = reshape(&program("."), parcel, 1);
        assert!(matches!(reshaped.rewritten.passed, Parcel::Events(_)));
    }

    #[test]
    fn a_program_in_jaq_on_several_threads_gives_what_it_gives_on_one() {
        // Interpolation keeps the program off the quick path.
        let program = program(
            r#"if .n % 7 == 0 then error("seven") elif .n % 5 == 0 then empty elif .n % 3 == 0 then ({m: "\(.n)"}, {m: "again"}) else {m: "\(.n)"} end"#,
        );
        assert!(!program.is_quick());
        let texts_of: Vec<String> = (0..500).map(|n| format!(r#"{{"n":{n}}}"#)).collect();
        let texts_of: Vec<&str> = texts_of.iter().map(String::as_str).collect();
        let mut every = Vec::new();
        for workers in [1, 3] {
            let mut parcel = Parcel::Lines(lines(&texts_of));
            let (mut passed, mut refused, mut dropped) = (Vec::new(), Vec::new(), 0);
            while !parcel.is_empty() {
                let reshaped = reshape(&program, parcel, workers);
                dropped += reshaped.dropped;
                let Rewritten {
                    passed: out,
                    refused: no,
                    rest,
                } = reshaped.rewritten;
                passed.extend(texts(out));
                refused.extend(
                    no.into_iter()
                        .map(|(event, reason)| (texts(Parcel::Events(vec![event])), reason)),
                );
                parcel = rest;
            }
            every.push((passed, refused, dropped));
        }
        assert_eq!(every[0], every[1]);
        let (passed, refused, dropped) = &every[0];
        assert_eq!(refused.len(), 72);
        // Multiples of 5 but not of 35, from 0.
        assert_eq!(*dropped, 100 - 15);
        assert!(passed.len() > 500 - 72 - 86);
    }
}
