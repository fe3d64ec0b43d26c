//! How a stream output puts events on the wire: each followed by the
//! delimiter ([`crate::lines`]), or each preceded by its length and a space
//! ([`crate::octet_counted`]).

use bytes::Bytes;
use wishbone_event::{Batch, Lines, Parcel};

/// The framing of a stream's events.
#[derive(Clone, Debug)]
pub enum Wire {
    /// Each event followed by these bytes.
    Delimited(Bytes),
    /// Each event preceded by its length in decimal and a space.
    OctetCounted,
}

/// A parcel's bytes for the wire, with what they hold.
pub enum Encoded {
    /// Delimited lines, and the events they encode when some carry a
    /// token ([`Parcel::into_wire`]).
    Lines(Lines, Option<Batch>),
    /// Octet-counted frames ([`crate::octet_counted::Framed`]).
    Frames(crate::octet_counted::Framed),
}

impl Wire {
    /// `parcel` framed for the wire. Lines already in their wire form with
    /// this delimiter are taken as they are.
    pub fn encode(&self, parcel: Parcel) -> Encoded {
        match self {
            Wire::Delimited(delimiter) => {
                let (lines, events) = parcel.into_wire(delimiter);
                Encoded::Lines(lines, events)
            }
            Wire::OctetCounted => {
                Encoded::Frames(crate::octet_counted::encode(parcel.into_events()))
            }
        }
    }
}

impl Encoded {
    /// The bytes to write.
    pub fn data(&self) -> &Bytes {
        match self {
            Encoded::Lines(lines, _) => lines.data(),
            Encoded::Frames(framed) => &framed.data,
        }
    }

    /// The events, for a write that failed.
    pub fn into_parcel(self) -> Parcel {
        match self {
            Encoded::Lines(lines, events) => events.map_or(Parcel::Lines(lines), Parcel::Events),
            Encoded::Frames(framed) => Parcel::Events(
                framed
                    .events
                    .into_iter()
                    .map(|(event, _)| event)
                    .chain(framed.empty)
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wishbone_event::Event;

    #[test]
    fn octet_counting_prefixes_each_event_with_its_length() {
        let parcel = Parcel::Events(vec![
            Event::new("hello"),
            Event::new(""),
            Event::new("a\nb"),
        ]);
        let encoded = Wire::OctetCounted.encode(parcel);
        assert_eq!(encoded.data().as_ref(), b"5 hello3 a\nb");
        let Encoded::Frames(framed) = encoded else {
            panic!("frames")
        };
        let ends: Vec<usize> = framed.events.iter().map(|(_, end)| *end).collect();
        assert_eq!(ends, [7, 12]);
        assert_eq!(framed.empty.len(), 1);
    }
}
