//! What the modules that rewrite events one by one share (decode, encode,
//! modify): each event is kept, replaced, or refused with a reason, in the
//! loop of [`wishbone_runtime::rewrite`]. Lines that all pass unchanged
//! stay lines.

use wishbone_runtime::rewrite::Rewritten;
use wishbone_runtime::turn::map_shared;
use wishbone_runtime::{Batch, Event, ModuleError, Parcel};

/// What becomes of one event.
pub(crate) enum Converted {
    /// It goes on as it is.
    Same,
    /// It goes on with this payload.
    New(Vec<u8>),
}

/// The module's queues, for [`convert_all`].
pub(crate) use wishbone_runtime::rewrite::Rewriting as Queues;

/// Converts every event from the inbox until it closes
/// ([`wishbone_runtime::rewrite`]).
pub(crate) async fn convert_all(
    queues: Queues,
    workers: usize,
    convert: impl Fn(&[u8]) -> Result<Converted, String> + Sync,
) -> Result<(), ModuleError> {
    queues
        .run(move |parcel| {
            let (passed, refused) = convert_parcel(parcel, workers, &convert);
            Rewritten {
                passed,
                refused,
                rest: Parcel::default(),
            }
        })
        .await
}

/// The events that pass, and the reports of those refused with the reason;
/// a large parcel's events are converted on `workers` threads
/// ([`wishbone_runtime::turn::map_shared`]).
pub(crate) fn convert_parcel(
    parcel: Parcel,
    workers: usize,
    convert: &(impl Fn(&[u8]) -> Result<Converted, String> + Sync),
) -> (Parcel, Vec<(Event, String)>) {
    let results = map_shared(&parcel, workers, convert);
    if results
        .iter()
        .all(|result| matches!(result, Ok(Converted::Same)))
    {
        return (parcel, Vec::new());
    }
    let mut passed = Batch::with_capacity(results.len());
    let mut refused = Vec::new();
    for (event, result) in parcel.into_events().into_iter().zip(results) {
        match result {
            Ok(Converted::Same) => passed.push(event),
            Ok(Converted::New(data)) => passed.push(event.with_data(data)),
            Err(reason) => refused.push((event, reason)),
        }
    }
    (Parcel::Events(passed), refused)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use wishbone_runtime::Lines;

    use super::*;

    fn even_only(data: &[u8]) -> Result<Converted, String> {
        let n: u32 = std::str::from_utf8(data).unwrap().parse().unwrap();
        match n % 2 {
            0 => Ok(Converted::Same),
            _ => Err(format!("{n} is odd")),
        }
    }

    fn lines(numbers: &[u32]) -> Parcel {
        let events: Vec<Event> = numbers.iter().map(|n| Event::new(n.to_string())).collect();
        Parcel::Lines(Lines::encode(&events, &Bytes::from_static(b"\n")))
    }

    #[test]
    fn lines_that_all_pass_stay_lines() {
        let (passed, refused) = convert_parcel(lines(&[2, 4]), 1, &even_only);
        assert!(matches!(passed, Parcel::Lines(_)));
        assert!(refused.is_empty());
    }

    #[test]
    fn refused_events_become_reports_with_the_reason() {
        let (passed, refused) = convert_parcel(lines(&[2, 3, 4]), 1, &even_only);
        assert_eq!(passed.len(), 2);
        assert_eq!(refused.len(), 1);
        let (event, reason) = &refused[0];
        let report = wishbone_runtime::rewrite::report(event, reason);
        let report: serde_json::Value = serde_json::from_slice(report.data()).unwrap();
        assert_eq!(
            report,
            serde_json::json!({"error": "3 is odd", "event": "3"})
        );
        let upper = |data: &[u8]| Ok(Converted::New(data.to_ascii_uppercase()));
        let (passed, _) = convert_parcel(Parcel::Events(vec![Event::new("a")]), 1, &upper);
        assert_eq!(passed.into_events()[0].data().as_ref(), b"A");
    }

    #[test]
    fn a_large_parcel_converted_on_several_threads_is_what_one_makes() {
        let numbers: Vec<u32> = (0..3000).collect();
        let (one, refused_one) = convert_parcel(lines(&numbers), 1, &even_only);
        let (three, refused_three) = convert_parcel(lines(&numbers), 3, &even_only);
        let texts = |parcel: Parcel| -> Vec<Vec<u8>> {
            parcel
                .into_events()
                .iter()
                .map(|event| event.data().to_vec())
                .collect()
        };
        assert_eq!(refused_one.len(), 1500);
        assert_eq!(refused_three.len(), 1500);
        assert!(
            refused_one
                .iter()
                .zip(&refused_three)
                .all(|(a, b)| a.0.data() == b.0.data() && a.1 == b.1)
        );
        assert_eq!(texts(one), texts(three));
    }
}
