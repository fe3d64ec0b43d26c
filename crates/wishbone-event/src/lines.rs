use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::{Ack, Batch, Event, Positions};

/// Events kept as they travel on the wire: one buffer holding every event
/// followed by the delimiter, and where each event ends.
///
/// A TCP input cuts a socket read into `Lines` without making an [`Event`]
/// per line; a TCP output whose delimiter matches writes [`Lines::data`] as
/// it is. Modules that work on single events get them from
/// [`Lines::into_events`], which copies no payload.
#[derive(Clone, Debug)]
pub struct Lines {
    data: Bytes,
    /// Where each event's payload ends in `data`; its delimiter follows.
    ends: Vec<usize>,
    delimiter: Bytes,
    /// A write-ahead buffer's token for the whole block: resolved once
    /// every line is delivered (or failed when one is not).
    ack: Option<Ack>,
}

/// Lines are equal when they hold the same events; tokens do not count.
impl PartialEq for Lines {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data && self.ends == other.ends && self.delimiter == other.delimiter
    }
}

impl Eq for Lines {}

impl Lines {
    /// No events, with the delimiter a builder would use.
    pub fn empty(delimiter: Bytes) -> Self {
        Self {
            data: Bytes::new(),
            ends: Vec::new(),
            delimiter,
            ack: None,
        }
    }

    /// Wraps a buffer of delimited events. `ends` lists where each payload
    /// ends, in order; each is followed by `delimiter`, and the last
    /// delimiter ends `data`. Checked in debug builds only: callers have just
    /// found these delimiters.
    pub fn new(data: Bytes, ends: Vec<usize>, delimiter: Bytes) -> Self {
        debug_assert!(!delimiter.is_empty());
        debug_assert_eq!(
            ends.last().map_or(0, |end| end + delimiter.len()),
            data.len()
        );
        debug_assert!(ends.iter().all(|&end| data[end..].starts_with(&delimiter)));
        Self {
            data,
            ends,
            delimiter,
            ack: None,
        }
    }

    /// Encodes events, each followed by `delimiter`, into one buffer.
    pub fn encode<'a>(events: impl IntoIterator<Item = &'a Event>, delimiter: &Bytes) -> Self {
        let events = events.into_iter();
        let mut builder = LinesBuilder::new(delimiter.clone(), 0, events.size_hint().0);
        for event in events {
            builder.push(event.data());
        }
        builder.finish()
    }

    /// How many events.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Every event followed by the delimiter: what goes on the wire.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// What follows each event.
    pub fn delimiter(&self) -> &Bytes {
        &self.delimiter
    }

    /// Where event `index` starts and where its payload ends.
    fn span(&self, index: usize) -> Range<usize> {
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1] + self.delimiter.len(),
        };
        start..self.ends[index]
    }

    /// The payload of event `index`, without its delimiter.
    pub fn line(&self, index: usize) -> &[u8] {
        &self.data[self.span(index)]
    }

    /// The payload of event `index` as a buffer of its own, sharing this
    /// one's memory.
    pub fn line_bytes(&self, index: usize) -> Bytes {
        self.data.slice(self.span(index))
    }

    /// The payloads in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|index| self.line(index))
    }

    /// How many events are whole within the first `bytes` bytes of
    /// [`Lines::data`], delimiter included.
    pub fn whole_within(&self, bytes: usize) -> usize {
        let width = self.delimiter.len();
        self.ends.partition_point(|&end| end + width <= bytes)
    }

    /// Events `range` as separate events sharing this buffer.
    pub fn events(&self, range: Range<usize>) -> impl Iterator<Item = Event> + '_ {
        range.map(|index| Event::new(self.line_bytes(index)))
    }

    /// Every event as a separate event sharing this buffer; a block's
    /// token is split into one share per event.
    pub fn into_events(self) -> Batch {
        let events = self.events(0..self.len());
        match &self.ack {
            None => events.collect(),
            Some(ack) => events
                .zip(ack.each(self.len()))
                .map(|(event, share)| event.with_ack(share))
                .collect(),
        }
    }

    /// The block's token travels with it.
    pub fn with_ack(mut self, ack: Ack) -> Self {
        self.ack = Some(ack);
        self
    }

    /// The block's token, if a write-ahead buffer gave it one.
    pub fn ack(&self) -> Option<&Ack> {
        self.ack.as_ref()
    }

    /// Takes the block's token away, for a module that resolves it.
    pub fn take_ack(&mut self) -> Option<Ack> {
        self.ack.take()
    }

    /// The same events in a buffer of their own: kept lines no longer pin
    /// the (larger) buffer they were read into.
    pub fn owned(&self) -> Lines {
        Lines {
            data: Bytes::copy_from_slice(&self.data),
            ends: self.ends.clone(),
            delimiter: self.delimiter.clone(),
            ack: self.ack.clone(),
        }
    }

    /// The events at `positions`, in order, in a buffer of their own and
    /// without a token.
    pub fn select(&self, positions: &Positions) -> Lines {
        let mut builder =
            LinesBuilder::new(self.delimiter.clone(), self.data.len(), positions.len());
        for index in positions.iter().filter(|&index| index < self.len()) {
            builder.push_from(self, index);
        }
        builder.finish()
    }

    /// Keeps the first `at` events and returns the rest.
    pub fn split_off(&mut self, at: usize) -> Lines {
        if at >= self.len() {
            return Lines::empty(self.delimiter.clone());
        }
        let cut = self.span(at).start;
        let data = self.data.split_off(cut);
        let ends: Vec<usize> = self
            .ends
            .split_off(at)
            .into_iter()
            .map(|end| end - cut)
            .collect();
        // Each half travels on its own with a share of the block's token
        // that knows which of its events it carries.
        let whole = self.len() + ends.len();
        let ack = self
            .ack
            .take()
            .map(|ack| ack.parts(vec![Positions::range(0..at), Positions::range(at..whole)]));
        let (front, back) = match ack {
            Some(mut shares) => {
                let back = shares.pop();
                (shares.pop(), back)
            }
            None => (None, None),
        };
        self.ack = front;
        Lines {
            data,
            ends,
            delimiter: self.delimiter.clone(),
            ack: back,
        }
    }

    /// The same events followed by another delimiter (and the same token).
    pub fn with_delimiter(&self, delimiter: &Bytes) -> Lines {
        let mut builder = LinesBuilder::new(delimiter.clone(), self.data.len(), self.len());
        for line in self.iter() {
            builder.push(line);
        }
        Lines {
            ack: self.ack.clone(),
            ..builder.finish()
        }
    }
}

/// Builds [`Lines`] by copying events into one growing buffer.
#[derive(Debug)]
pub struct LinesBuilder {
    data: BytesMut,
    ends: Vec<usize>,
    delimiter: Bytes,
}

impl LinesBuilder {
    /// A builder expecting about `bytes` bytes in `lines` events.
    pub fn new(delimiter: Bytes, bytes: usize, lines: usize) -> Self {
        Self {
            data: BytesMut::with_capacity(bytes),
            ends: Vec::with_capacity(lines),
            delimiter,
        }
    }

    /// Appends a payload and the delimiter.
    pub fn push(&mut self, line: &[u8]) {
        self.data.extend_from_slice(line);
        self.ends.push(self.data.len());
        self.data.extend_from_slice(&self.delimiter);
    }

    /// Appends event `index` of `lines`, whose delimiter must be this
    /// builder's: payload and delimiter are copied in one go.
    pub fn push_from(&mut self, lines: &Lines, index: usize) {
        debug_assert_eq!(lines.delimiter, self.delimiter);
        let span = lines.span(index);
        let end = span.end + self.delimiter.len();
        self.ends.push(self.data.len() + span.len());
        self.data.extend_from_slice(&lines.data[span.start..end]);
    }

    /// The events built.
    pub fn finish(self) -> Lines {
        Lines {
            data: self.data.freeze(),
            ends: self.ends,
            delimiter: self.delimiter,
            ack: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&'static str], delimiter: &'static str) -> Lines {
        let events: Vec<Event> = texts.iter().map(|text| Event::new(*text)).collect();
        Lines::encode(&events, &Bytes::from_static(delimiter.as_bytes()))
    }

    fn texts(lines: &Lines) -> Vec<String> {
        lines
            .iter()
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect()
    }

    #[test]
    fn encoding_puts_the_delimiter_after_every_event() {
        let encoded = lines(&["one", "", "three"], "\r\n");
        assert_eq!(&encoded.data()[..], b"one\r\n\r\nthree\r\n");
        assert_eq!(texts(&encoded), ["one", "", "three"]);
        assert_eq!(
            encoded.clone().into_events(),
            [Event::new("one"), Event::new(""), Event::new("three")]
        );
    }

    #[test]
    fn whole_within_counts_only_events_whose_delimiter_fits() {
        let encoded = lines(&["aaa", "bb", "c"], "\n"); // encodings end at 4, 7, 9
        assert_eq!(encoded.whole_within(3), 0);
        assert_eq!(encoded.whole_within(4), 1);
        assert_eq!(encoded.whole_within(8), 2);
        assert_eq!(encoded.whole_within(9), 3);
    }

    #[test]
    fn split_off_leaves_two_valid_halves() {
        let mut first = lines(&["a", "bb", "ccc", "dddd"], "\n");
        let second = first.split_off(1);
        assert_eq!(texts(&first), ["a"]);
        assert_eq!(&first.data()[..], b"a\n");
        assert_eq!(texts(&second), ["bb", "ccc", "dddd"]);
        assert_eq!(second.whole_within(3), 1);
        assert!(first.split_off(5).is_empty());
    }

    #[test]
    fn a_builder_copies_from_lines_and_changes_delimiters() {
        let source = lines(&["x", "yy", "zzz"], "\n");
        let mut builder = LinesBuilder::new(source.delimiter().clone(), 0, 0);
        builder.push_from(&source, 2);
        builder.push_from(&source, 0);
        let picked = builder.finish();
        assert_eq!(&picked.data()[..], b"zzz\nx\n");
        let crlf = picked.with_delimiter(&Bytes::from_static(b"\r\n"));
        assert_eq!(&crlf.data()[..], b"zzz\r\nx\r\n");
        assert_eq!(texts(&crlf), ["zzz", "x"]);
    }
}
