//! Octet counting (RFC 6587 3.4.1), both ways: each frame is its length in
//! decimal, a space, and that many bytes, as rsyslog's
//! `TCP_Framing="octet-counted"` and `logger --octet-count` send it.
//! [`OctetFramer`] cuts a byte stream into events, [`encode`] frames
//! events. Written here because it is twenty lines of parsing that must
//! share the line framer's bounds and counters, which no crate offers.

use std::fmt::Write;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use wishbone_event::{Batch, Event, Parcel};

use crate::lines::Overlong;

/// Digits a length may have: more than any `max_line_length` needs.
const MOST_DIGITS: usize = 10;

/// Cuts octet-counted frames off the front of a connection's read buffer.
#[derive(Debug)]
pub struct OctetFramer {
    max_line_length: usize,
    overlong: Overlong,
    /// Bytes of an over-long frame still to skip.
    skipping: usize,
    /// Frames cut to `max_line_length`.
    pub truncated: u64,
    /// Frames skipped whole.
    pub dropped: u64,
}

/// A length that is no length: the connection cannot be followed further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

impl OctetFramer {
    /// A framer whose frames are cut at `max_line_length` bytes.
    pub fn new(max_line_length: usize, overlong: Overlong) -> Self {
        Self {
            max_line_length: max_line_length.max(1),
            overlong,
            skipping: 0,
            truncated: 0,
            dropped: 0,
        }
    }

    /// A new longest frame, from the next split on (a reload's).
    pub fn set_max_line_length(&mut self, max_line_length: usize) {
        self.max_line_length = max_line_length.max(1);
    }

    /// Takes every complete frame off the front of `buffer`; a partial one
    /// stays for the next read. The buffer never has to hold more than a
    /// length and `max_line_length` bytes. After a malformed length, the
    /// frames before it come with the error.
    pub fn split(&mut self, buffer: &mut BytesMut) -> (Parcel, Result<(), Malformed>) {
        let mut events = Batch::new();
        let result = self.take_frames(buffer, &mut events);
        (Parcel::Events(events), result)
    }

    fn take_frames(&mut self, buffer: &mut BytesMut, events: &mut Batch) -> Result<(), Malformed> {
        loop {
            if self.skipping > 0 {
                let skipped = self.skipping.min(buffer.len());
                buffer.advance(skipped);
                self.skipping -= skipped;
                if self.skipping > 0 {
                    break;
                }
            }
            let Some((header, length)) = header(buffer)? else {
                break;
            };
            if length <= self.max_line_length {
                if buffer.len() < header + length {
                    break;
                }
                buffer.advance(header);
                events.push(Event::new(buffer.split_to(length).freeze()));
                continue;
            }
            match self.overlong {
                Overlong::Truncate => {
                    if buffer.len() < header + self.max_line_length {
                        break;
                    }
                    buffer.advance(header);
                    events.push(Event::new(buffer.split_to(self.max_line_length).freeze()));
                    self.truncated += 1;
                    self.skipping = length - self.max_line_length;
                }
                Overlong::Drop => {
                    buffer.advance(header);
                    self.dropped += 1;
                    self.skipping = length;
                }
            }
        }
        Ok(())
    }
}

/// The length of the frame at the front of `buffer` and the bytes of its
/// header (digits and space); `None` while the header is incomplete.
fn header(buffer: &[u8]) -> Result<Option<(usize, usize)>, Malformed> {
    let digits = buffer
        .iter()
        .take(MOST_DIGITS + 1)
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    match buffer.get(digits) {
        None if digits <= MOST_DIGITS => return Ok(None),
        Some(b' ') if (1..=MOST_DIGITS).contains(&digits) && buffer[0] != b'0' => {}
        _ => {
            let shown = String::from_utf8_lossy(&buffer[..buffer.len().min(16)]).into_owned();
            return Err(Malformed(format!(
                "expected a frame length (1 to {MOST_DIGITS} digits, no leading zero) and a space, found {shown:?}"
            )));
        }
    }
    let length = std::str::from_utf8(&buffer[..digits])
        .ok()
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| Malformed("a frame length out of range".into()))?;
    Ok(Some((digits + 1, length)))
}

/// Events as octet-counted frames.
#[derive(Debug, Default)]
pub struct Framed {
    /// The frames.
    pub data: Bytes,
    /// Each event framed, with where its frame ends in `data`.
    pub events: Vec<(Event, usize)>,
    /// Empty events: a frame's length starts at 1 (RFC 6587 `MSG-LEN`), so
    /// no frame carries them, and a receiver would take `0 ` for a broken
    /// stream.
    pub empty: Batch,
}

/// `events` as octet-counted frames.
pub fn encode(events: Batch) -> Framed {
    let bytes: usize = events.iter().map(|event| event.len() + 12).sum();
    let mut data = BytesMut::with_capacity(bytes);
    let mut framed = Framed {
        events: Vec::with_capacity(events.len()),
        ..Framed::default()
    };
    for event in events {
        if event.is_empty() {
            framed.empty.push(event);
            continue;
        }
        // No string per event: the length is formatted in place.
        let _ = write!(data, "{} ", event.len());
        data.put_slice(event.data());
        framed.events.push((event, data.len()));
    }
    framed.data = data.freeze();
    framed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(framer: &mut OctetFramer, reads: &[&[u8]]) -> Result<Vec<String>, Malformed> {
        let mut buffer = BytesMut::new();
        let mut events = Vec::new();
        for read in reads {
            buffer.extend_from_slice(read);
            let (parcel, result) = framer.split(&mut buffer);
            events.extend(parcel.into_events());
            result?;
        }
        Ok(events
            .iter()
            .map(|event| String::from_utf8_lossy(event.data()).into_owned())
            .collect())
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let stream = b"5 hello11 hello\nworld3 \n\n ";
        for cut in 0..stream.len() {
            let mut framer = OctetFramer::new(100, Overlong::Truncate);
            let (first, second) = stream.split_at(cut);
            assert_eq!(
                feed(&mut framer, &[first, second]),
                Ok(vec!["hello".into(), "hello\nworld".into(), "\n\n ".into()]),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn long_frames_are_cut_or_dropped_and_counted() {
        let mut framer = OctetFramer::new(4, Overlong::Truncate);
        assert_eq!(
            feed(&mut framer, &[b"10 0123", b"456789", b"2 ok"]),
            Ok(vec!["0123".into(), "ok".into()])
        );
        assert_eq!(framer.truncated, 1);
        let mut framer = OctetFramer::new(4, Overlong::Drop);
        assert_eq!(
            feed(&mut framer, &[b"10 01234", b"56789", b"2 ok"]),
            Ok(vec!["ok".into()])
        );
        assert_eq!(framer.dropped, 1);
    }

    #[test]
    fn malformed_lengths_are_refused_with_a_reason() {
        for bad in [
            &b"<13>hello\n"[..],
            b"0 ",
            b"-5 hello",
            b"05 hello",
            b"x",
            b" 5 hello",
            b"99999999999 x",
            b"12345678901",
        ] {
            let mut framer = OctetFramer::new(100, Overlong::Truncate);
            let error = feed(&mut framer, &[bad]).expect_err(&String::from_utf8_lossy(bad));
            assert!(error.0.contains("frame length"), "{bad:?}: {error:?}");
        }
        let mut framer = OctetFramer::new(100, Overlong::Truncate);
        let (before, error) = framer.split(&mut BytesMut::from(&b"2 ok3 yes<13>no"[..]));
        assert_eq!(before.len(), 2, "frames before a bad length are kept");
        assert!(error.is_err());
        let mut framer = OctetFramer::new(100, Overlong::Truncate);
        assert_eq!(
            feed(&mut framer, &[b"1234567890"]),
            Ok(vec![]),
            "a header may still be coming"
        );
    }

    #[test]
    fn the_buffer_stays_bounded_by_the_longest_frame() {
        let mut framer = OctetFramer::new(8, Overlong::Truncate);
        let mut buffer = BytesMut::from(&b"4000000000 "[..]);
        for _ in 0..1000 {
            buffer.extend_from_slice(&[b'a'; 1000]);
            framer.split(&mut buffer).1.unwrap();
            assert!(buffer.len() <= 1000);
        }
        assert_eq!(framer.truncated, 1);
    }

    #[test]
    fn what_is_encoded_decodes_to_the_same_events() {
        let texts = ["hello", "a\nb", "12 not a length", &"x".repeat(300)];
        let mut events: Batch = texts
            .iter()
            .map(|text| Event::new(text.to_string()))
            .collect();
        events.insert(1, Event::new(""));
        let framed = encode(events);
        let ends: Vec<usize> = framed.events.iter().map(|(_, end)| *end).collect();
        assert_eq!(ends[..2], [7, 12], "each event with where its frame ends");
        assert_eq!(*ends.last().unwrap(), framed.data.len());
        assert_eq!(framed.empty.len(), 1, "an empty event has no frame");
        let mut framer = OctetFramer::new(1000, Overlong::Truncate);
        assert_eq!(
            feed(&mut framer, &[&framed.data]),
            Ok(texts.map(String::from).to_vec())
        );
    }
}
