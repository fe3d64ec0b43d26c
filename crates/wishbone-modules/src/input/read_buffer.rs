//! A client's read buffer that starts small and grows once the client
//! sends in earnest.
//!
//! An idle or slow client then holds a few KiB, not a full read size.
//! That matters beyond the bytes: a large buffer of which only the first
//! page is ever written is touched at a different place each time the
//! heap hands it out again, so thousands of short sessions make the
//! process's resident memory climb wave after wave (measured: 31 MB to
//! 113 MB over six waves of 3,000 RELP sessions with 64 KiB buffers).

use bytes::BytesMut;

/// What a client's first reads get.
const FIRST: usize = 4 * 1024;

/// A buffer read into with `read_buf`: [`ReadBuffer::make_room`] before
/// each read, [`ReadBuffer::read`] after it.
#[derive(Debug)]
pub struct ReadBuffer {
    pub bytes: BytesMut,
    /// The size to make room for: [`FIRST`], then `full` once a read
    /// filled what room there was.
    size: usize,
    full: usize,
    /// The room the last [`ReadBuffer::make_room`] left.
    room: usize,
}

impl ReadBuffer {
    /// Grows to read `full` bytes at a time once a client fills its first.
    pub fn new(full: usize) -> Self {
        Self {
            bytes: BytesMut::with_capacity(FIRST.min(full)),
            size: FIRST.min(full),
            full,
            room: 0,
        }
    }

    /// Room for the next read: at least a quarter of the current size.
    pub fn make_room(&mut self) {
        if self.spare() < self.size / 4 {
            self.bytes.reserve(self.size);
        }
        self.room = self.spare();
    }

    /// After a read of `count` bytes into the room made: a read that
    /// filled it means the client has more to say.
    pub fn read(&mut self, count: usize) {
        if count >= self.room {
            self.size = self.full;
        }
    }

    /// Room left to read into.
    fn spare(&self) -> usize {
        self.bytes.capacity() - self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_stays_small_until_a_read_fills_it_then_reads_in_full() {
        let mut buffer = ReadBuffer::new(64 * 1024);
        buffer.make_room();
        assert_eq!(buffer.bytes.capacity(), FIRST);
        buffer.bytes.extend_from_slice(&[b'x'; 100]);
        buffer.read(100);
        buffer.bytes.clear();
        buffer.make_room();
        assert_eq!(
            buffer.bytes.capacity(),
            FIRST,
            "a short read keeps it small"
        );
        let room = buffer.spare();
        buffer.bytes.extend_from_slice(&vec![b'x'; room]);
        buffer.read(room);
        buffer.make_room();
        assert!(buffer.spare() >= 64 * 1024, "a full read grows it");
    }
}
