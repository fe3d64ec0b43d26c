//! Cutting a byte stream into events at a delimiter, with a bound on how
//! long one event may grow.

use bytes::{Buf, BytesMut};
use serde::Deserialize;
use wishbone_runtime::Event;

/// What to do with a line longer than `max_line_length`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Overlong {
    /// Keep its first `max_line_length` bytes as the event; skip the rest.
    #[default]
    Truncate,
    /// Skip the whole line.
    Drop,
}

/// Cuts events off the front of a connection's read buffer. One framer per
/// connection, so a client that leaves mid-line cannot spoil another's event.
#[derive(Debug)]
pub struct LineFramer {
    delimiter: Vec<u8>,
    max_line_length: usize,
    overlong: Overlong,
    /// Inside an over-long line whose rest is being skipped.
    skipping: bool,
    /// Bytes at the front of the buffer already searched for a delimiter.
    searched: usize,
    /// Lines cut to `max_line_length`.
    pub truncated: u64,
    /// Lines skipped whole.
    pub dropped: u64,
}

impl LineFramer {
    /// A framer for a non-empty delimiter.
    pub fn new(delimiter: &[u8], max_line_length: usize, overlong: Overlong) -> Self {
        assert!(
            !delimiter.is_empty(),
            "the delimiter is checked when the config is read"
        );
        Self {
            delimiter: delimiter.to_vec(),
            max_line_length: max_line_length.max(1),
            overlong,
            skipping: false,
            searched: 0,
            truncated: 0,
            dropped: 0,
        }
    }

    /// Moves every complete event at the front of `buffer` into `events`;
    /// what follows the last delimiter stays for the next read. The events
    /// share one frozen piece of the buffer.
    pub fn split(&mut self, buffer: &mut BytesMut, events: &mut Vec<Event>) {
        let width = self.delimiter.len();
        if self.skipping && !self.skip_rest_of_line(buffer) {
            return;
        }
        let mut ends = Vec::new();
        let mut from = self.searched;
        while let Some(found) = self.find(&buffer[from..]) {
            ends.push(from + found);
            from += found + width;
        }
        if let Some(&last) = ends.last() {
            let chunk = buffer.split_to(last + width).freeze();
            let mut start = 0;
            for end in ends {
                let line = end - start;
                if line <= self.max_line_length {
                    events.push(Event::new(chunk.slice(start..end)));
                } else if self.overlong == Overlong::Truncate {
                    self.truncated += 1;
                    events.push(Event::new(chunk.slice(start..start + self.max_line_length)));
                } else {
                    self.dropped += 1;
                }
                start = end + width;
            }
        }
        self.searched = buffer.len().saturating_sub(width - 1);
        if buffer.len() > self.max_line_length {
            self.begin_skipping(buffer, events);
        }
    }

    /// The stream ended: what remains is the last event, unless it belongs to
    /// a line already cut or skipped.
    pub fn finish(&mut self, buffer: &mut BytesMut, events: &mut Vec<Event>) {
        self.split(buffer, events);
        if !self.skipping && !buffer.is_empty() {
            events.push(Event::new(buffer.split().freeze()));
        }
        buffer.clear();
        self.skipping = false;
        self.searched = 0;
    }

    /// A partial line outgrew the limit: keep or count it, skip its rest.
    fn begin_skipping(&mut self, buffer: &mut BytesMut, events: &mut Vec<Event>) {
        match self.overlong {
            Overlong::Truncate => {
                self.truncated += 1;
                events.push(Event::new(buffer.split_to(self.max_line_length).freeze()));
            }
            Overlong::Drop => self.dropped += 1,
        }
        self.skipping = true;
        self.skip_rest_of_line(buffer);
    }

    /// Discards up to and including the next delimiter; false when the
    /// buffer ran out first (a delimiter's first bytes are kept in case it
    /// straddles two reads).
    fn skip_rest_of_line(&mut self, buffer: &mut BytesMut) -> bool {
        match self.find(buffer) {
            Some(found) => {
                buffer.advance(found + self.delimiter.len());
                self.skipping = false;
                self.searched = 0;
                true
            }
            None => {
                let keep = buffer.len().min(self.delimiter.len() - 1);
                buffer.advance(buffer.len() - keep);
                self.searched = 0;
                false
            }
        }
    }

    fn find(&self, haystack: &[u8]) -> Option<usize> {
        match self.delimiter.as_slice() {
            [byte] => memchr::memchr(*byte, haystack),
            delimiter => memchr::memmem::find(haystack, delimiter),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(framer: &mut LineFramer, reads: &[&[u8]]) -> Vec<String> {
        let mut buffer = BytesMut::new();
        let mut events = Vec::new();
        for read in reads {
            buffer.extend_from_slice(read);
            framer.split(&mut buffer, &mut events);
        }
        framer.finish(&mut buffer, &mut events);
        events
            .iter()
            .map(|e| String::from_utf8_lossy(e.data()).into_owned())
            .collect()
    }

    #[test]
    fn lines_split_across_reads_come_out_whole() {
        let mut framer = LineFramer::new(b"\n", 100, Overlong::Truncate);
        assert_eq!(
            feed(&mut framer, &[b"hel", b"lo\nwor", b"ld\n\nlast"]),
            ["hello", "world", "", "last"]
        );
    }

    #[test]
    fn a_multi_byte_delimiter_may_straddle_reads() {
        let mut framer = LineFramer::new(b"\r\n", 100, Overlong::Truncate);
        assert_eq!(feed(&mut framer, &[b"one\r", b"\ntwo\r\n"]), ["one", "two"]);
    }

    #[test]
    fn over_long_lines_are_truncated_and_counted() {
        let mut framer = LineFramer::new(b"\n", 4, Overlong::Truncate);
        let out = feed(
            &mut framer,
            &[b"abcdefgh\nok\n", b"0123456789", b"0123456789\nend\n"],
        );
        assert_eq!(out, ["abcd", "ok", "0123", "end"]);
        assert_eq!(framer.truncated, 2);
    }

    #[test]
    fn over_long_lines_can_be_dropped_instead() {
        let mut framer = LineFramer::new(b"\n", 4, Overlong::Drop);
        assert_eq!(
            feed(&mut framer, &[b"abcdefgh\nok\n", b"0123456789", b"xx\nend"]),
            ["ok", "end"]
        );
        assert_eq!(framer.dropped, 2);
    }

    #[test]
    fn the_buffer_never_outgrows_the_limit_plus_one_read() {
        let mut framer = LineFramer::new(b"\n", 1000, Overlong::Drop);
        let mut buffer = BytesMut::new();
        let mut events = Vec::new();
        for _ in 0..1000 {
            buffer.extend_from_slice(&[b'x'; 4096]);
            framer.split(&mut buffer, &mut events);
            assert!(buffer.len() <= 1000 + 4096);
        }
        buffer.extend_from_slice(b"\nafter\n");
        framer.split(&mut buffer, &mut events);
        assert_eq!(events, vec![Event::new("after")]);
        assert_eq!(framer.dropped, 1);
    }

    #[test]
    fn events_share_the_read_buffer() {
        let mut framer = LineFramer::new(b"\n", 100, Overlong::Truncate);
        let mut buffer = BytesMut::from(&b"a\nb\n"[..]);
        let mut events = Vec::new();
        framer.split(&mut buffer, &mut events);
        let first = events[0].data().as_ptr() as usize;
        assert_eq!(events[1].data().as_ptr() as usize - first, 2);
    }
}
