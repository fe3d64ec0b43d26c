//! The records of the on-disk log, and how they are encoded and read back.
//!
//! Every record is a header and a body, integers little-endian:
//!
//! ```text
//! u32 length    bytes of the body
//! u32 crc32     CRC-32 (IEEE) of the body
//! body          u8 kind, then what the kind holds
//!
//! kind 1, a block of kept events:
//!   u64 id, u32 count, u8 form
//!   form 0 (separate events): count × u32 payload length, then the payloads
//!   form 1 (lines): u32 delimiter length, the delimiter, count × u32 end
//!                   of each payload, then the lines as on the wire
//! kind 2, blocks settled (delivered, or dropped by `when_full`):
//!   u32 count, count × u64 id
//! ```
//!
//! A record that does not fit in what is left of its file, or whose
//! checksum does not match, is damaged. Recovery looks for the next whole
//! record after it ([`resync`]): first where the damaged record's own
//! length says it ends, then at each later byte. Records after the damage
//! are read as usual, so a flipped byte costs its own record only. Where no
//! whole record follows (a torn tail), the file is cut there.

use std::ops::Range;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use wishbone_runtime::{Event, Lines, Parcel};

/// Bytes of a record's header.
pub const HEADER: usize = 8;

const BLOCK: u8 = 1;
const SETTLED: u8 = 2;
const EVENTS: u8 = 0;
const LINES: u8 = 1;

/// One record read back.
#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    /// A block of events, as the wal knows it by `id`.
    Block { id: u64, parcel: Parcel },
    /// Blocks that need not be sent again.
    Settled(Vec<u64>),
}

/// Where a block's events lie in the buffer its record was encoded into,
/// so the kept block can point there instead of holding a copy of its own.
#[derive(Debug)]
pub enum Layout {
    Events(Vec<Range<usize>>),
    Lines {
        data: Range<usize>,
        ends: Vec<usize>,
        delimiter: Bytes,
    },
}

impl Layout {
    /// The block, its events in `buffer` (the frozen `out` of
    /// [`encode_block`]).
    pub fn parcel(self, buffer: &Bytes) -> Parcel {
        match self {
            Layout::Events(ranges) => Parcel::Events(
                ranges
                    .into_iter()
                    .map(|range| Event::new(buffer.slice(range)))
                    .collect(),
            ),
            Layout::Lines {
                data,
                ends,
                delimiter,
            } => Parcel::Lines(Lines::new(buffer.slice(data), ends, delimiter)),
        }
    }
}

/// Appends the record of block `id` to `out`; returns where its events lie.
pub fn encode_block(out: &mut BytesMut, id: u64, parcel: &Parcel) -> Layout {
    let start = out.len();
    out.put_u64_le(0); // the header, written once the body is
    out.put_u8(BLOCK);
    out.put_u64_le(id);
    out.put_u32_le(parcel.len() as u32);
    let layout = match parcel {
        Parcel::Events(batch) => {
            out.put_u8(EVENTS);
            for event in batch {
                out.put_u32_le(event.len() as u32);
            }
            let mut ranges = Vec::with_capacity(batch.len());
            for event in batch {
                ranges.push(out.len()..out.len() + event.len());
                out.put_slice(event.data());
            }
            Layout::Events(ranges)
        }
        Parcel::Lines(lines) => {
            out.put_u8(LINES);
            out.put_u32_le(lines.delimiter().len() as u32);
            out.put_slice(lines.delimiter());
            let mut ends = Vec::with_capacity(lines.len());
            let mut end = 0;
            for line in lines.iter() {
                end += line.len();
                out.put_u32_le(end as u32);
                ends.push(end);
                end += lines.delimiter().len();
            }
            let data = out.len()..out.len() + lines.data().len();
            out.put_slice(lines.data());
            Layout::Lines {
                data,
                ends,
                delimiter: lines.delimiter().clone(),
            }
        }
    };
    seal(out, start);
    layout
}

/// Appends a record settling `ids` to `out`.
pub fn encode_settled(out: &mut BytesMut, ids: &[u64]) {
    let start = out.len();
    out.put_u64_le(0);
    out.put_u8(SETTLED);
    out.put_u32_le(ids.len() as u32);
    for id in ids {
        out.put_u64_le(*id);
    }
    seal(out, start);
}

/// Writes the header of the record that starts at `start`.
fn seal(out: &mut BytesMut, start: usize) {
    let body = &out[start + HEADER..];
    let length = body.len() as u32;
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Reads the record at the start of `data`: the record and its length, or
/// `None` when what is there is not a whole, intact record (a torn write,
/// a corrupt byte, zeros past the end of what was written).
pub fn decode(data: &Bytes) -> Option<(Record, usize)> {
    let header = data.get(..HEADER)?;
    let length = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    let end = HEADER.checked_add(length)?;
    let body = data.get(HEADER..end)?;
    if length == 0 || crc32fast::hash(body) != crc {
        return None;
    }
    let record = body_of(data.slice(HEADER..end))?;
    Some((record, end))
}

/// Where the next whole record begins after the damaged one at the start
/// of `data`, if any. A candidate counts only if its fields fit, its kind
/// is one of the two, and its checksum matches, which garbage does by
/// chance once in 2^32 tries; the cheap checks come first, so scanning a
/// damaged stretch costs about a comparison per byte.
pub fn resync(data: &Bytes) -> Option<usize> {
    let claimed = data
        .get(..4)
        .map(|length| HEADER + u32::from_le_bytes(length.try_into().unwrap()) as usize);
    claimed
        .into_iter()
        .chain(1..data.len())
        .filter(|at| *at > 0 && *at < data.len())
        .find(|at| plausible(&data[*at..]) && decode(&data.slice(*at..)).is_some())
}

/// Whether a record could start at the front of `data`: its length fits
/// and its body starts with a kind.
fn plausible(data: &[u8]) -> bool {
    let Some(header) = data.get(..HEADER + 1) else {
        return false;
    };
    let length = u32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
    length > 0 && HEADER + length <= data.len() && matches!(header[HEADER], BLOCK | SETTLED)
}

/// What a damaged record at the front of `data` seems to have held, read
/// without its checksum's warrant: a block's id and event count.
pub fn damaged_block(data: &[u8]) -> Option<(u64, usize)> {
    let body = data.get(HEADER..HEADER + 13)?;
    (body[0] == BLOCK).then(|| {
        let id = u64::from_le_bytes(body[1..9].try_into().unwrap());
        let count = u32::from_le_bytes(body[9..13].try_into().unwrap()) as usize;
        (id, count)
    })
}

/// The record a checked body holds; `None` when its fields do not add up
/// (which a matching checksum makes a bug of the writer, not of the disk).
fn body_of(mut body: Bytes) -> Option<Record> {
    match take_u8(&mut body)? {
        BLOCK => {
            let id = take_u64(&mut body)?;
            let count = take_u32(&mut body)? as usize;
            let parcel = match take_u8(&mut body)? {
                EVENTS => events(body, count)?,
                LINES => lines(body, count)?,
                _ => return None,
            };
            Some(Record::Block { id, parcel })
        }
        SETTLED => {
            let count = take_u32(&mut body)? as usize;
            if body.remaining() != count.checked_mul(8)? {
                return None;
            }
            Some(Record::Settled(
                (0..count).map(|_| body.get_u64_le()).collect(),
            ))
        }
        _ => None,
    }
}

fn events(mut body: Bytes, count: usize) -> Option<Parcel> {
    if body.remaining() < count.checked_mul(4)? {
        return None;
    }
    let lengths: Vec<usize> = (0..count).map(|_| body.get_u32_le() as usize).collect();
    if lengths.iter().sum::<usize>() != body.len() {
        return None;
    }
    let batch = lengths
        .into_iter()
        .map(|length| Event::new(body.split_to(length)))
        .collect();
    Some(Parcel::Events(batch))
}

fn lines(mut body: Bytes, count: usize) -> Option<Parcel> {
    let delimiter_length = take_u32(&mut body)? as usize;
    if delimiter_length == 0 || body.remaining() < delimiter_length {
        return None;
    }
    let delimiter = body.split_to(delimiter_length);
    if body.remaining() < count.checked_mul(4)? {
        return None;
    }
    let ends: Vec<usize> = (0..count).map(|_| body.get_u32_le() as usize).collect();
    // Each payload ends before its delimiter, and the last delimiter ends
    // the data: what `Lines::new` relies on.
    let mut start = 0;
    for end in &ends {
        let after = end.checked_add(delimiter_length)?;
        if *end < start || body.get(*end..after)? != &delimiter[..] {
            return None;
        }
        start = after;
    }
    if start != body.len() {
        return None;
    }
    Some(Parcel::Lines(Lines::new(body, ends, delimiter)))
}

fn take_u8(body: &mut Bytes) -> Option<u8> {
    (body.remaining() >= 1).then(|| body.get_u8())
}

fn take_u32(body: &mut Bytes) -> Option<u32> {
    (body.remaining() >= 4).then(|| body.get_u32_le())
}

fn take_u64(body: &mut Bytes) -> Option<u64> {
    (body.remaining() >= 8).then(|| body.get_u64_le())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&str], delimiter: &'static [u8]) -> Parcel {
        let events: Vec<Event> = texts
            .iter()
            .map(|text| Event::new(text.to_string()))
            .collect();
        Parcel::Lines(Lines::encode(&events, &Bytes::from_static(delimiter)))
    }

    #[test]
    fn blocks_and_settlements_read_back_as_written() {
        let mut out = BytesMut::new();
        let written = [
            Record::Block {
                id: 7,
                parcel: lines(&["a", "", "ccc"], b"\r\n"),
            },
            Record::Block {
                id: 8,
                parcel: Parcel::Events(vec![Event::new("x\ny"), Event::new("")]),
            },
            Record::Settled(vec![7, 3, 1 << 40]),
        ];
        for record in &written {
            match record {
                Record::Block { id, parcel } => {
                    encode_block(&mut out, *id, parcel);
                }
                Record::Settled(ids) => encode_settled(&mut out, ids),
            }
        }
        let mut data = out.freeze();
        for expected in &written {
            let (record, length) = decode(&data).expect("a whole record");
            assert_eq!(&record, expected);
            data.advance(length);
        }
        assert!(data.is_empty());
    }

    #[test]
    fn a_torn_or_damaged_record_is_not_read() {
        let mut out = BytesMut::new();
        let layout = encode_block(&mut out, 1, &lines(&["hello", "world"], b"\n"));
        let length = out.len();
        let whole = out.freeze();
        assert_eq!(layout.parcel(&whole), lines(&["hello", "world"], b"\n"));
        for cut in 0..length {
            assert!(decode(&whole.slice(..cut)).is_none(), "cut at {cut}");
        }
        for at in 0..length {
            let mut damaged = whole.to_vec();
            damaged[at] ^= 0x20;
            assert!(decode(&Bytes::from(damaged)).is_none(), "byte {at} flipped");
        }
        assert!(decode(&Bytes::from(vec![0; 64])).is_none(), "zeros");
    }
}
