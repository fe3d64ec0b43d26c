//! How the tcp output puts events on the wire: each followed by the
//! delimiter, or each preceded by its length and a space (RFC 6587 octet
//! counting), and how what was written is recorded for delivery.

use std::fmt::Write;

use bytes::{BufMut, Bytes, BytesMut};
use wishbone_output::Sent;
use wishbone_runtime::{Batch, Event, Lines, Parcel};

/// The framing of a tcp output's events.
#[derive(Clone, Debug)]
pub(super) enum Wire {
    /// Each event followed by these bytes.
    Delimited(Bytes),
    /// Each event preceded by its length in decimal and a space.
    OctetCounted,
}

/// A parcel's bytes for the wire, with what they hold.
pub(super) enum Encoded {
    /// Delimited lines, and the events they encode when some carry a
    /// token ([`Parcel::into_wire`]).
    Lines(Lines, Option<Batch>),
    /// Octet-counted frames, and each event with where its frame ends in
    /// `data`.
    Frames {
        data: Bytes,
        events: Vec<(Event, usize)>,
    },
}

impl Wire {
    pub(super) fn encode(&self, parcel: Parcel) -> Encoded {
        match self {
            Wire::Delimited(delimiter) => {
                let (lines, events) = parcel.into_wire(delimiter);
                Encoded::Lines(lines, events)
            }
            Wire::OctetCounted => {
                let events = parcel.into_events();
                let bytes: usize = events.iter().map(|event| event.len() + 12).sum();
                let mut data = BytesMut::with_capacity(bytes);
                let mut framed = Vec::with_capacity(events.len());
                for event in events {
                    // No string per event: the length is formatted in place.
                    let _ = write!(data, "{} ", event.len());
                    data.put_slice(event.data());
                    framed.push((event, data.len()));
                }
                Encoded::Frames {
                    data: data.freeze(),
                    events: framed,
                }
            }
        }
    }
}

impl Encoded {
    /// The bytes to write.
    pub(super) fn data(&self) -> &Bytes {
        match self {
            Encoded::Lines(lines, _) => lines.data(),
            Encoded::Frames { data, .. } => data,
        }
    }

    /// Records the block as written from stream position `start` on, right
    /// after everything recorded before it.
    pub(super) fn record(self, sent: &mut Sent<'_>, start: u64) {
        match self {
            Encoded::Lines(lines, events) => sent.lines(lines, events),
            Encoded::Frames { events, .. } => {
                for (event, end) in events {
                    sent.event_ending_at(event, start + end as u64);
                }
            }
        }
    }

    /// The events, for a write that failed.
    pub(super) fn into_parcel(self) -> Parcel {
        match self {
            Encoded::Lines(lines, events) => events.map_or(Parcel::Lines(lines), Parcel::Events),
            Encoded::Frames { events, .. } => {
                Parcel::Events(events.into_iter().map(|(event, _)| event).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octet_counting_prefixes_each_event_with_its_length() {
        let parcel = Parcel::Events(vec![
            Event::new("hello"),
            Event::new(""),
            Event::new("a\nb"),
        ]);
        let encoded = Wire::OctetCounted.encode(parcel);
        assert_eq!(encoded.data().as_ref(), b"5 hello0 3 a\nb");
        let Encoded::Frames { events, .. } = encoded else {
            panic!("frames")
        };
        let ends: Vec<usize> = events.iter().map(|(_, end)| *end).collect();
        assert_eq!(ends, [7, 9, 14]);
    }
}
