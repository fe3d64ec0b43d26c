use bytes::Bytes;

/// One unit of data flowing through a wishbone server.
///
/// The payload is reference counted: the events cut from one socket read all
/// point into that read's buffer, and cloning an event (a fanout copies each
/// event to every destination) copies no data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    data: Bytes,
}

/// Events move between modules many at a time.
pub type Batch = Vec<Event>;

impl Event {
    /// Wraps a payload; `&'static str`, `Vec<u8>`, `String` and [`Bytes`] all convert.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Self { data: data.into() }
    }

    /// The payload, without any delimiter.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Gives the payload back, for modules that build a new event from it.
    pub fn into_data(self) -> Bytes {
        self.data
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
