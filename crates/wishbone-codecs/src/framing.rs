//! How a tcp input cuts a connection's bytes into events: at a delimiter,
//! by octet counting, or whichever the client's first byte shows.

use bytes::BytesMut;
use serde::Deserialize;
use wishbone_event::Parcel;

use crate::lines::{LineFramer, Overlong};
use crate::octet_counted::{Malformed, OctetFramer};

/// The `framing` argument.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// Events end at the delimiter.
    #[default]
    Newline,
    /// Each event is preceded by its length and a space (RFC 6587).
    OctetCounted,
    /// Per connection: octet counting when the first byte is a digit
    /// (a syslog message starts with `<`), else the delimiter.
    Auto,
}

/// One connection's framer.
#[derive(Debug)]
pub struct StreamFramer {
    framing: Framing,
    lines: LineFramer,
    octets: OctetFramer,
}

impl StreamFramer {
    /// A framer for one connection.
    pub fn new(
        framing: Framing,
        delimiter: &[u8],
        max_line_length: usize,
        overlong: Overlong,
    ) -> Self {
        Self {
            framing,
            lines: LineFramer::new(delimiter, max_line_length, overlong),
            octets: OctetFramer::new(max_line_length, overlong),
        }
    }

    /// Takes every complete event off the front of `buffer`.
    /// After a malformed length, the events before it come with the error.
    pub fn split(&mut self, buffer: &mut BytesMut) -> (Parcel, Result<(), Malformed>) {
        if self.framing == Framing::Auto {
            match buffer.first() {
                None => return (Parcel::default(), Ok(())),
                Some(b'1'..=b'9') => self.framing = Framing::OctetCounted,
                Some(_) => self.framing = Framing::Newline,
            }
        }
        match self.framing {
            Framing::OctetCounted => self.octets.split(buffer),
            _ => (self.lines.split(buffer), Ok(())),
        }
    }

    /// The stream ended: the last events. With octet counting a frame cut
    /// short stays in `buffer`, incomplete.
    pub fn finish(&mut self, buffer: &mut BytesMut) -> (Parcel, Result<(), Malformed>) {
        match self.framing {
            Framing::Newline => (self.lines.finish(buffer), Ok(())),
            _ => self.split(buffer),
        }
    }

    /// A new longest event, from the next split on: what a reload that
    /// changes `max_line_length` does to a connection that stays open.
    pub fn set_max_line_length(&mut self, max_line_length: usize) {
        self.lines.set_max_line_length(max_line_length);
        self.octets.set_max_line_length(max_line_length);
    }

    /// Events cut to `max_line_length`, and events dropped for being longer.
    pub fn overlong(&self) -> (u64, u64) {
        (
            self.lines.truncated + self.octets.truncated,
            self.lines.dropped + self.octets.dropped,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(framing: Framing, stream: &[u8]) -> Result<Vec<String>, Malformed> {
        let mut framer = StreamFramer::new(framing, b"\n", 100, Overlong::Truncate);
        let mut buffer = BytesMut::from(stream);
        let (parcel, result) = framer.finish(&mut buffer);
        result?;
        Ok(parcel
            .into_events()
            .iter()
            .map(|event| String::from_utf8_lossy(event.data()).into_owned())
            .collect())
    }

    #[test]
    fn auto_decides_by_the_first_byte() {
        assert_eq!(
            events(Framing::Auto, b"<13>one\n<13>two\n"),
            Ok(vec!["<13>one".into(), "<13>two".into()])
        );
        assert_eq!(
            events(Framing::Auto, b"7 <13>one7 <13>two"),
            Ok(vec!["<13>one".into(), "<13>two".into()])
        );
        assert_eq!(
            events(Framing::Newline, b"7 <13>one\n"),
            Ok(vec!["7 <13>one".into()])
        );
        assert!(events(Framing::OctetCounted, b"<13>one\n").is_err());
    }
}
