//! The loop every module that rewrites events one by one shares (decode,
//! encode, modify): each event is kept, replaced, or refused with a reason.
//!
//! A refused event goes to `failed` as `{"error": REASON, "event": TEXT}`,
//! carrying the original's token: it counts as delivered when the output
//! behind `failed` delivers it, and when no route connects `failed` it is
//! dropped (counted in the queue's dropped_total) and settled, so a
//! write-ahead buffer upstream does not send again what can never pass.
//! Lines that all pass unchanged stay lines.

use wishbone_runtime::queue::{Receiver, Sender};
use wishbone_runtime::{Batch, Counted, Event, LockRelay, ModuleContext, ModuleError, Parcel};

/// What becomes of one event.
pub(crate) enum Converted {
    /// It goes on as it is.
    Same,
    /// It goes on with this payload.
    New(Vec<u8>),
}

/// The module's queues and name.
pub(crate) struct Queues {
    inbox: Receiver,
    outbox: Sender,
    failed: Sender,
    name: String,
}

impl Queues {
    /// `inbox`, `outbox` and `failed` of the module.
    pub(crate) fn of(context: &mut ModuleContext) -> Self {
        Self {
            inbox: context.take_incoming("inbox"),
            outbox: context.outgoing("outbox"),
            failed: context.outgoing("failed"),
            name: context.name().to_string(),
        }
    }
}

/// Converts every event from the inbox until it closes; the number refused
/// is logged at the end.
pub(crate) async fn convert_all(
    queues: Queues,
    mut convert: impl FnMut(&[u8]) -> Result<Converted, String>,
) -> Result<(), ModuleError> {
    let Queues {
        mut inbox,
        outbox,
        failed,
        name,
    } = queues;
    let refused_count = Counted::new(&name, "failed");
    // While the outbox's destination is down, so is the inbox.
    let mut relay = LockRelay::new(vec![inbox.locker()], [&outbox]);
    loop {
        let parcel = tokio::select! {
            parcel = inbox.recv_parcel() => parcel,
            () = relay.follow() => continue,
        };
        let Some(parcel) = parcel else { break };
        let (passed, refused) = convert_parcel(parcel, &mut convert);
        if let Some((_, reason)) = refused.first().filter(|_| refused_count.total() == 0) {
            tracing::warn!(module = %name, %reason, "an event was refused; it goes to failed (module.{name}.failed counts them)");
        }
        refused_count.add(refused.len() as u64);
        let refused: Batch = refused.into_iter().map(|(event, _)| event).collect();
        if !failed.is_connected() {
            refused.iter().for_each(Event::acknowledge);
        }
        for (queue, sender, parcel) in [
            ("outbox", &outbox, passed),
            ("failed", &failed, Parcel::Events(refused)),
        ] {
            if let Err(closed) = sender.send(parcel).await {
                return Err(ModuleError::DownstreamGone {
                    queue: queue.into(),
                    undelivered: closed.0.len(),
                });
            }
        }
    }
    tracing::info!(module = %name, failed = refused_count.total(), "conversion totals");
    Ok(())
}

/// The events that pass, and the reports of those refused with the reason.
pub(crate) fn convert_parcel(
    parcel: Parcel,
    convert: &mut impl FnMut(&[u8]) -> Result<Converted, String>,
) -> (Parcel, Vec<(Event, String)>) {
    let results: Vec<Result<Converted, String>> = match &parcel {
        Parcel::Lines(lines) => lines.iter().map(&mut *convert).collect(),
        Parcel::Events(events) => events.iter().map(|event| convert(event.data())).collect(),
    };
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
            Err(reason) => {
                let text = String::from_utf8_lossy(event.data()).into_owned();
                let report = serde_json::json!({"error": reason, "event": text}).to_string();
                refused.push((event.with_data(report), reason));
            }
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
        let (passed, refused) = convert_parcel(lines(&[2, 4]), &mut even_only);
        assert!(matches!(passed, Parcel::Lines(_)));
        assert!(refused.is_empty());
    }

    #[test]
    fn refused_events_become_reports_with_the_reason() {
        let (passed, refused) = convert_parcel(lines(&[2, 3, 4]), &mut even_only);
        assert_eq!(passed.len(), 2);
        assert_eq!(refused.len(), 1);
        let report: serde_json::Value = serde_json::from_slice(refused[0].0.data()).unwrap();
        assert_eq!(
            report,
            serde_json::json!({"error": "3 is odd", "event": "3"})
        );
        let mut upper = |data: &[u8]| Ok(Converted::New(data.to_ascii_uppercase()));
        let (passed, _) = convert_parcel(Parcel::Events(vec![Event::new("a")]), &mut upper);
        assert_eq!(passed.into_events()[0].data().as_ref(), b"A");
    }
}
