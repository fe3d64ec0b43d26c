//! Cutting a byte stream into events at a delimiter, with a bound on how
//! long one event may grow.

use bytes::{Buf, Bytes, BytesMut};
use serde::Deserialize;
use wishbone_event::{Batch, Event, Lines, Parcel};

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
    delimiter: Bytes,
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
            delimiter: Bytes::copy_from_slice(delimiter),
            max_line_length: max_line_length.max(1),
            overlong,
            skipping: false,
            searched: 0,
            truncated: 0,
            dropped: 0,
        }
    }

    /// Takes every complete event off the front of `buffer`; what follows
    /// the last delimiter stays for the next read. The events stay in one
    /// frozen piece of the buffer, as [`Lines`], unless a line was too long.
    pub fn split(&mut self, buffer: &mut BytesMut) -> Parcel {
        self.split_tracking(buffer, None)
    }

    /// [`LineFramer::split`], with where each event starts: `front` is
    /// the offset of the buffer's first byte in the stream, and one offset
    /// per event comes back, in order.
    pub fn split_with_starts(&mut self, buffer: &mut BytesMut, front: u64) -> (Parcel, Vec<u64>) {
        let mut starts = Starts {
            front,
            offsets: Vec::new(),
        };
        let parcel = self.split_tracking(buffer, Some(&mut starts));
        (parcel, starts.offsets)
    }

    fn split_tracking(&mut self, buffer: &mut BytesMut, mut starts: Option<&mut Starts>) -> Parcel {
        let width = self.delimiter.len();
        let mut parcel = Parcel::default();
        if self.skipping {
            let before = buffer.len();
            let done = self.skip_rest_of_line(buffer);
            if let Some(starts) = starts.as_deref_mut() {
                starts.front += (before - buffer.len()) as u64;
            }
            if !done {
                return parcel;
            }
        }
        let from = self.searched;
        let mut ends = Vec::with_capacity((buffer.len() - from) / 64);
        match self.delimiter.as_ref() {
            [byte] => crate::scan::positions(&buffer[from..], *byte, from, &mut ends),
            delimiter => ends.extend(
                memchr::memmem::find_iter(&buffer[from..], delimiter).map(|found| from + found),
            ),
        }
        if let Some(&last) = ends.last() {
            let chunk = buffer.split_to(last + width).freeze();
            if let Some(starts) = starts.as_deref_mut() {
                starts.lines(&ends, width, self.kept());
                starts.front += chunk.len() as u64;
            }
            parcel = self.cut(chunk, ends);
        }
        self.searched = buffer.len().saturating_sub(width - 1);
        if buffer.len() > self.max_line_length {
            if let Some(starts) = starts
                && self.overlong == Overlong::Truncate
            {
                starts.offsets.push(starts.front);
            }
            self.begin_skipping(buffer, &mut parcel);
        }
        parcel
    }

    /// Which lines (from their start to their delimiter) become events:
    /// all but those over the limit, when they are dropped.
    fn kept(&self) -> impl Fn(usize, usize) -> bool + use<> {
        let (limit, dropping) = (self.max_line_length, self.overlong == Overlong::Drop);
        move |start, end| !dropping || end - start <= limit
    }

    /// The events of a chunk that ends with a delimiter: as they are when
    /// every line fits, else one by one with the long ones cut or dropped.
    fn cut(&mut self, chunk: Bytes, ends: Vec<usize>) -> Parcel {
        let width = self.delimiter.len();
        let mut start = 0;
        let fits = ends.iter().all(|&end| {
            let line = end - start;
            start = end + width;
            line <= self.max_line_length
        });
        let lines = Lines::new(chunk, ends, self.delimiter.clone());
        if fits {
            return Parcel::Lines(lines);
        }
        let mut events = Batch::with_capacity(lines.len());
        for event in lines.events(0..lines.len()) {
            if event.len() <= self.max_line_length {
                events.push(event);
            } else if self.overlong == Overlong::Truncate {
                self.truncated += 1;
                events.push(Event::new(event.data().slice(..self.max_line_length)));
            } else {
                self.dropped += 1;
            }
        }
        Parcel::Events(events)
    }

    /// The stream ended: what remains is the last event, unless it belongs to
    /// a line already cut or skipped.
    pub fn finish(&mut self, buffer: &mut BytesMut) -> Parcel {
        let mut parcel = self.split(buffer);
        if !self.skipping && !buffer.is_empty() {
            parcel.push(Event::new(buffer.split().freeze()));
        }
        buffer.clear();
        self.skipping = false;
        self.searched = 0;
        parcel
    }

    /// A new longest line, from the next split on (a reload's).
    pub fn set_max_line_length(&mut self, max_line_length: usize) {
        self.max_line_length = max_line_length.max(1);
    }

    /// A partial line outgrew the limit: keep or count it, skip its rest.
    fn begin_skipping(&mut self, buffer: &mut BytesMut, parcel: &mut Parcel) {
        match self.overlong {
            Overlong::Truncate => {
                self.truncated += 1;
                parcel.push(Event::new(buffer.split_to(self.max_line_length).freeze()));
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
        match self.delimiter.as_ref() {
            [byte] => memchr::memchr(*byte, haystack),
            delimiter => memchr::memmem::find(haystack, delimiter),
        }
    }
}

/// Where the events of one split start in the stream.
struct Starts {
    /// The offset of the buffer's first byte.
    front: u64,
    offsets: Vec<u64>,
}

impl Starts {
    /// The lines of a chunk that begins at `front` and whose delimiters
    /// are at `ends`; `kept` says which of them become events.
    fn lines(&mut self, ends: &[usize], width: usize, kept: impl Fn(usize, usize) -> bool) {
        let mut start = 0;
        for &end in ends {
            if kept(start, end) {
                self.offsets.push(self.front + start as u64);
            }
            start = end + width;
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
            events.extend(framer.split(&mut buffer).into_events());
        }
        events.extend(framer.finish(&mut buffer).into_events());
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
        for _ in 0..1000 {
            buffer.extend_from_slice(&[b'x'; 4096]);
            assert!(framer.split(&mut buffer).is_empty());
            assert!(buffer.len() <= 1000 + 4096);
        }
        buffer.extend_from_slice(b"\nafter\n");
        let events = framer.split(&mut buffer).into_events();
        assert_eq!(events, vec![Event::new("after")]);
        assert_eq!(framer.dropped, 1);
    }

    /// What the framer must produce: split at every delimiter, a final
    /// unterminated piece kept, long lines cut or dropped.
    fn reference(data: &[u8], delimiter: &[u8], max: usize, overlong: Overlong) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let (line, next) = match memchr::memmem::find(rest, delimiter) {
                Some(at) => (&rest[..at], &rest[at + delimiter.len()..]),
                None => (rest, &rest[rest.len()..]),
            };
            match (line.len() <= max, overlong) {
                (true, _) => lines.push(line.to_vec()),
                (false, Overlong::Truncate) => lines.push(line[..max].to_vec()),
                (false, Overlong::Drop) => {}
            }
            rest = next;
        }
        lines
    }

    #[test]
    fn random_reads_give_what_a_plain_split_gives() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = move |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        for round in 0..300 {
            let delimiter: &[u8] = [&b"\n"[..], b"\r\n", b"||"][round % 3];
            let overlong = [Overlong::Truncate, Overlong::Drop][round / 3 % 2];
            let max = 1 + random(40);
            let data: Vec<u8> = (0..random(2000))
                .map(|_| match random(12) {
                    0 => b'\n',
                    1 => b'\r',
                    2 => b'|',
                    _ => b'a' + random(26) as u8,
                })
                .collect();
            let mut framer = LineFramer::new(delimiter, max, overlong);
            let mut buffer = BytesMut::new();
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut fed = 0;
            while fed < data.len() {
                let read = (1 + random(300)).min(data.len() - fed);
                buffer.extend_from_slice(&data[fed..fed + read]);
                fed += read;
                let parcel = framer.split(&mut buffer);
                if let Parcel::Lines(lines) = &parcel {
                    let wire: Vec<u8> = lines
                        .iter()
                        .flat_map(|line| [line, delimiter])
                        .flatten()
                        .copied()
                        .collect();
                    assert_eq!(&lines.data()[..], wire, "lines are exactly their wire form");
                }
                got.extend(parcel.into_events().iter().map(|e| e.data().to_vec()));
            }
            got.extend(
                framer
                    .finish(&mut buffer)
                    .into_events()
                    .iter()
                    .map(|e| e.data().to_vec()),
            );
            assert_eq!(
                got,
                reference(&data, delimiter, max, overlong),
                "round {round}"
            );
        }
    }

    #[test]
    fn complete_lines_stay_in_the_read_buffer_as_they_are() {
        let mut framer = LineFramer::new(b"\n", 100, Overlong::Truncate);
        let mut buffer = BytesMut::from(&b"a\nbb\nc"[..]);
        let read_at = buffer.as_ptr() as usize;
        let Parcel::Lines(lines) = framer.split(&mut buffer) else {
            panic!("lines that fit stay lines");
        };
        assert_eq!(&lines.data()[..], b"a\nbb\n");
        assert_eq!(lines.data().as_ptr() as usize, read_at);
        assert_eq!(&buffer[..], b"c");
    }

    #[test]
    fn each_event_knows_where_it_started_across_reads_and_long_lines() {
        for overlong in [Overlong::Truncate, Overlong::Drop] {
            let mut framer = LineFramer::new(b"\n", 5, overlong);
            let mut buffer = BytesMut::from(&b"ab\ncdefghij\nk"[..]);
            let (parcel, starts) = framer.split_with_starts(&mut buffer, 100);
            let texts: Vec<Vec<u8>> = parcel
                .into_events()
                .iter()
                .map(|e| e.data().to_vec())
                .collect();
            match overlong {
                Overlong::Truncate => {
                    assert_eq!(texts, [b"ab".to_vec(), b"cdefg".to_vec()]);
                    assert_eq!(starts, [100, 103]);
                }
                Overlong::Drop => {
                    assert_eq!(texts, [b"ab".to_vec()]);
                    assert_eq!(starts, [100]);
                }
            }
            // "k" waits at 113; a long partial line begins there.
            buffer.extend_from_slice(b"lmnopq");
            let (parcel, starts) = framer.split_with_starts(&mut buffer, 113);
            match overlong {
                Overlong::Truncate => {
                    assert_eq!(parcel.len(), 1);
                    assert_eq!(starts, [113]);
                }
                Overlong::Drop => assert!(parcel.is_empty() && starts.is_empty()),
            }
            buffer.extend_from_slice(b"rs\nxy\n");
            // What is left of the buffer (nothing) starts after "klmnopq".
            let front = 120;
            let (parcel, starts) = framer.split_with_starts(&mut buffer, front);
            assert_eq!(parcel.into_events()[0].data().as_ref(), b"xy");
            assert_eq!(
                starts,
                [front + 3],
                "after the skipped rest of the long line"
            );
        }
    }
}
