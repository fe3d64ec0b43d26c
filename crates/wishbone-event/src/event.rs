use bytes::Bytes;

use crate::Ack;

/// One unit of data flowing through a wishbone server.
///
/// The payload is reference counted: the events cut from one socket read all
/// point into that read's buffer, and cloning an event (a fanout copies each
/// event to every destination) copies no data.
#[derive(Clone, Debug)]
pub struct Event {
    data: Bytes,
    /// Set by a write-ahead buffer: resolved by the output that handles the event.
    ack: Option<Ack>,
}

/// Events are equal when their payloads are; tokens are bookkeeping.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data
    }
}

impl Eq for Event {}

/// Events move between modules many at a time.
pub type Batch = Vec<Event>;

impl Event {
    /// Wraps a payload; `&'static str`, `Vec<u8>`, `String` and [`Bytes`] all convert.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Self {
            data: data.into(),
            ack: None,
        }
    }

    /// The same event carrying a write-ahead buffer's token.
    pub fn with_ack(mut self, ack: Ack) -> Self {
        self.ack = Some(ack);
        self
    }

    /// The token, for an output that must resolve it.
    pub fn ack(&self) -> Option<&Ack> {
        self.ack.as_ref()
    }

    /// Takes the token away, for a buffer that settles it itself.
    pub fn take_ack(&mut self) -> Option<Ack> {
        self.ack.take()
    }

    /// Tells the event's buffer, if any, that the peer has it.
    pub fn acknowledge(&self) {
        if let Some(ack) = &self.ack {
            ack.acknowledge();
        }
    }

    /// Tells the event's buffer, if any, that it could not be delivered;
    /// returns true when a buffer will send it again (so it may be let go).
    pub fn fail(&self) -> bool {
        match &self.ack {
            Some(ack) => {
                ack.fail();
                true
            }
            None => false,
        }
    }

    /// A new event with another payload and the same token, for modules
    /// that transform events.
    pub fn with_data(&self, data: impl Into<Bytes>) -> Self {
        Self {
            data: data.into(),
            ack: self.ack.clone(),
        }
    }

    /// The payload, without any delimiter.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The payload's length in bytes, what byte-based limits count.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True for an empty line, which is still an event.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl From<&'static str> for Event {
    fn from(text: &'static str) -> Self {
        Event::new(text)
    }
}
