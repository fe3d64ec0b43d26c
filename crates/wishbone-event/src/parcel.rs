use bytes::Bytes;

use crate::{Batch, Event, Lines};

/// What one queue operation moves: a batch of separate events, or events
/// still in their wire form. Modules that handle events one by one take
/// batches ([`crate::queue::Receiver::recv`] converts); modules that only
/// move events along (round robin, funnel, TCP output) take parcels and
/// leave lines as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parcel {
    /// Separate events.
    Events(Batch),
    /// Delimited events in one buffer.
    Lines(Lines),
}

impl Default for Parcel {
    fn default() -> Self {
        Parcel::Events(Batch::new())
    }
}

impl Parcel {
    /// How many events.
    pub fn len(&self) -> usize {
        match self {
            Parcel::Events(batch) => batch.len(),
            Parcel::Lines(lines) => lines.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events one by one.
    pub fn into_events(self) -> Batch {
        match self {
            Parcel::Events(batch) => batch,
            Parcel::Lines(lines) => lines.into_events(),
        }
    }

    /// Appends one event; lines become separate events first.
    pub fn push(&mut self, event: Event) {
        self.events_mut().push(event);
    }

    /// Appends events; lines become separate events first.
    pub fn extend(&mut self, events: impl IntoIterator<Item = Event>) {
        self.events_mut().extend(events);
    }

    fn events_mut(&mut self) -> &mut Batch {
        if let Parcel::Lines(_) = self {
            let lines = std::mem::take(self);
            *self = Parcel::Events(lines.into_events());
        }
        match self {
            Parcel::Events(batch) => batch,
            Parcel::Lines(_) => unreachable!("converted above"),
        }
    }

    /// The events as they go on the wire, each followed by `delimiter`:
    /// lines that already use it as they are, anything else encoded into
    /// one buffer. Separate events come back too, for an output that must
    /// resolve their tokens.
    pub fn into_wire(self, delimiter: &Bytes) -> (Lines, Option<Batch>) {
        match self {
            Parcel::Lines(lines) if lines.delimiter() == delimiter => (lines, None),
            Parcel::Lines(lines) => (lines.with_delimiter(delimiter), None),
            Parcel::Events(batch) => (Lines::encode(&batch, delimiter), Some(batch)),
        }
    }

    /// Resolves every token the parcel carries as delivered, for a module
    /// that is done with it at once.
    pub fn acknowledge(&self) {
        match self {
            Parcel::Events(batch) => batch.iter().for_each(Event::acknowledge),
            Parcel::Lines(lines) => {
                if let Some(ack) = lines.ack() {
                    ack.acknowledge();
                }
            }
        }
    }

    /// Takes every token the parcel carries, for a buffer that settles
    /// them itself (a write-ahead buffer, once the events are kept).
    pub fn take_acks(&mut self) -> Vec<crate::Ack> {
        match self {
            Parcel::Events(batch) => batch.iter_mut().filter_map(Event::take_ack).collect(),
            Parcel::Lines(lines) => lines.take_ack().into_iter().collect(),
        }
    }

    /// `count` copies for destinations that each deliver their own (a
    /// fanout's): every token is split, so the original is acknowledged
    /// only once every copy is, and failed when one copy fails.
    pub fn copies(self, count: usize) -> Vec<Parcel> {
        match self {
            Parcel::Lines(mut lines) => match lines.take_ack() {
                None => vec![Parcel::Lines(lines); count],
                Some(ack) => ack
                    .copies(count)
                    .into_iter()
                    .map(|share| Parcel::Lines(lines.clone().with_ack(share)))
                    .collect(),
            },
            Parcel::Events(batch) => {
                let mut copies: Vec<Batch> = vec![Batch::with_capacity(batch.len()); count];
                for event in batch {
                    match event.ack() {
                        None => copies.iter_mut().for_each(|copy| copy.push(event.clone())),
                        Some(ack) => {
                            let shares = ack.copies(count);
                            let plain = event.with_data(event.data().clone());
                            for (copy, share) in copies.iter_mut().zip(shares) {
                                copy.push(plain.clone().with_ack(share));
                            }
                        }
                    }
                }
                copies.into_iter().map(Parcel::Events).collect()
            }
        }
    }

    /// The events at `positions`, in order (for a buffer that sends again
    /// only the events that failed); tokens are not carried over.
    pub fn select(&self, positions: &crate::Positions) -> Parcel {
        match self {
            Parcel::Lines(lines) => Parcel::Lines(lines.select(positions)),
            Parcel::Events(batch) => Parcel::Events(
                positions
                    .iter()
                    .filter_map(|at| batch.get(at))
                    .map(|event| Event::new(event.data().clone()))
                    .collect(),
            ),
        }
    }

    /// Keeps the first `at` events and returns the rest.
    pub fn split_off(&mut self, at: usize) -> Parcel {
        match self {
            Parcel::Events(batch) if at < batch.len() => Parcel::Events(batch.split_off(at)),
            Parcel::Events(_) => Parcel::default(),
            Parcel::Lines(lines) => Parcel::Lines(lines.split_off(at)),
        }
    }
}

impl From<Batch> for Parcel {
    fn from(batch: Batch) -> Self {
        Parcel::Events(batch)
    }
}

impl From<Lines> for Parcel {
    fn from(lines: Lines) -> Self {
        Parcel::Lines(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines() -> Parcel {
        let events = [Event::new("a"), Event::new("b"), Event::new("c")];
        Parcel::Lines(Lines::encode(&events, &Bytes::from_static(b"\n")))
    }

    #[test]
    fn pushing_onto_lines_keeps_every_event_in_order() {
        let mut parcel = lines();
        parcel.push(Event::new("d"));
        assert_eq!(
            parcel,
            Parcel::Events(vec!["a".into(), "b".into(), "c".into(), "d".into()])
        );
    }

    #[test]
    fn into_wire_keeps_matching_lines_and_encodes_the_rest() {
        let newline = Bytes::from_static(b"\n");
        let Parcel::Lines(sent) = lines() else {
            unreachable!()
        };
        let buffer = sent.data().as_ptr();
        let (same, events) = Parcel::Lines(sent.clone()).into_wire(&newline);
        assert_eq!((same.data().as_ptr(), events), (buffer, None));
        let (crlf, _) = Parcel::Lines(sent).into_wire(&Bytes::from_static(b"\r\n"));
        assert_eq!(&crlf.data()[..], b"a\r\nb\r\nc\r\n");
        let batch = vec![Event::new("x"), Event::new("y")];
        let (encoded, events) = Parcel::Events(batch.clone()).into_wire(&newline);
        assert_eq!((&encoded.data()[..], events), (&b"x\ny\n"[..], Some(batch)));
    }

    #[test]
    fn split_off_works_on_both_forms() {
        let mut parcel = lines();
        let rest = parcel.split_off(2);
        assert_eq!((parcel.len(), rest.len()), (2, 1));
        let mut batch = Parcel::Events(vec!["x".into()]);
        assert!(batch.split_off(1).is_empty());
        assert_eq!(batch.into_events(), vec![Event::new("x")]);
    }

    #[test]
    fn copies_are_settled_together() {
        use crate::ack::{self, Outcome};
        let (issuer, mut replies) = ack::issuer();
        let lines =
            Lines::encode(&[Event::new("a")], &Bytes::from_static(b"\n")).with_ack(issuer.issue(1));
        let copies = Parcel::Lines(lines).copies(2);
        copies[0].acknowledge();
        assert!(replies.try_recv().is_err(), "one copy is not both");
        copies[1].acknowledge();
        assert_eq!(replies.try_recv().unwrap(), (1, Outcome::Acknowledged));

        let event = Event::new("b").with_ack(issuer.issue(2));
        let copies = Parcel::Events(vec![event, Event::new("c")]).copies(3);
        assert!(copies.iter().all(|copy| copy.len() == 2));
        copies[0].acknowledge();
        drop(copies);
        assert_eq!(
            replies.try_recv().unwrap(),
            (2, Outcome::Failed),
            "a copy dropped unresolved fails it"
        );
    }
}
