//! NDJSON bodies, both ways: an HTTP request's body as events
//! ([`decode`]), and events as the body of a request ([`encode`]).
//!
//! Lines end with `\n` (a `\r` before it is dropped, as from a client that
//! writes CRLF); the last line needs no newline; empty lines carry no
//! event. A body that is already lines each ending in `\n`, none empty and
//! none ending in `\r` (what an NDJSON sender writes) becomes [`Lines`]
//! over the body itself, without a copy.

use bytes::Bytes;
use wishbone_event::{Batch, Lines, LinesBuilder, Parcel};

/// The events of `body`, each followed by a newline.
pub fn decode(body: Bytes) -> Lines {
    let newline = Bytes::from_static(b"\n");
    let mut ends = Vec::new();
    let mut start = 0;
    let mut plain = true;
    for end in memchr::memchr_iter(b'\n', &body) {
        if end == start || body[end - 1] == b'\r' {
            plain = false;
            break;
        }
        ends.push(end);
        start = end + 1;
    }
    if plain && start == body.len() {
        return Lines::new(body, ends, newline);
    }
    let mut builder = LinesBuilder::new(newline, body.len() + 1, ends.len() + 1);
    for line in body.split(|byte| *byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.is_empty() {
            builder.push(line);
        }
    }
    builder.finish()
}

/// `parcel` as a body: each event followed by a newline, lines already in
/// that form taken as they are; and events that came as events, for an
/// output to resolve their tokens one by one ([`Parcel::into_wire`]).
pub fn encode(parcel: Parcel) -> (Lines, Option<Batch>) {
    parcel.into_wire(&Bytes::from_static(b"\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(body: &'static [u8]) -> Vec<Vec<u8>> {
        decode(Bytes::from_static(body))
            .iter()
            .map(<[u8]>::to_vec)
            .collect()
    }

    #[test]
    fn ndjson_becomes_lines_over_the_body_itself() {
        let body = Bytes::from_static(b"{\"a\":1}\n{\"b\":2}\n");
        let lines = decode(body.clone());
        assert_eq!(lines.len(), 2);
        assert_eq!(lines.data().as_ptr(), body.as_ptr(), "no copy");
        assert_eq!(lines.line(1), b"{\"b\":2}");
    }

    #[test]
    fn a_last_line_without_newline_crlf_and_empty_lines() {
        assert_eq!(events(b"one\ntwo"), [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(
            events(b"one\r\n\r\n\ntwo\r\n"),
            [b"one".to_vec(), b"two".to_vec()]
        );
        assert_eq!(events(b"\n\nx"), [b"x".to_vec()]);
        assert!(events(b"").is_empty());
        assert!(events(b"\n\r\n").is_empty());
        let garbage: &'static [u8] = &[0xff, 0x00, b'\n', 0xfe];
        assert_eq!(events(garbage), [vec![0xff, 0x00], vec![0xfe]]);
    }

    #[test]
    fn what_is_encoded_decodes_to_the_same_events() {
        let events: Batch = ["{\"a\":1}", "plain text", "ü"]
            .iter()
            .map(|text| wishbone_event::Event::new(text.to_string()))
            .collect();
        let (lines, tokened) = encode(Parcel::Events(events));
        assert_eq!(tokened.map(|events| events.len()), Some(3));
        assert_eq!(
            lines.data().as_ref(),
            "{\"a\":1}\nplain text\nü\n".as_bytes()
        );
        let decoded = decode(lines.data().clone());
        assert_eq!(
            decoded.data().as_ptr(),
            lines.data().as_ptr(),
            "no copy back"
        );
        assert_eq!(decoded.len(), 3);
    }
}
