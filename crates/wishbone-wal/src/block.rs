//! What the write-ahead buffer's parts say of a block: where its record
//! lies in the log, what the log holds of it, and the bytes it counts
//! against `max_bytes`.

use wishbone_runtime::{Event, Parcel};

/// Where a block's record lies: which segment, at which offset, how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub sequence: u64,
    pub offset: u64,
    pub len: u64,
}

/// A block the log holds, without its events (read them back with
/// [`Journal::read`](crate::Journal::read)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub id: u64,
    pub location: Location,
    pub events: usize,
    /// Payload bytes, what `max_bytes` counts.
    pub bytes: usize,
}

/// Payload bytes of a parcel, what `max_bytes` counts.
pub fn payload_bytes(parcel: &Parcel) -> usize {
    match parcel {
        Parcel::Events(batch) => batch.iter().map(Event::len).sum(),
        Parcel::Lines(lines) => lines.data().len() - lines.len() * lines.delimiter().len(),
    }
}
