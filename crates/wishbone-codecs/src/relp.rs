//! RELP, the Reliable Event Logging Protocol, as far as the RELP input and
//! output need it: frames, their parsing and their encoding.
//!
//! Written here because no maintained Rust crate speaks RELP (the reference
//! implementation is librelp, in C); the framing is small. From librelp's
//! `doc/relp.md`:
//!
//! ```text
//! FRAME   = TXNR SP COMMAND SP DATALEN [SP DATA] LF
//! TXNR    = 1 to 9 digits; the client numbers frames from 1, wrapping
//!           after 999,999,999 (to 1); the server answers with the same
//! COMMAND = 1 to 32 letters (open, syslog, close, rsp, serverclose)
//! DATALEN = 1 to 9 digits; DATA is exactly that many bytes
//! ```
//!
//! A `rsp` frame's data starts with a three-digit code: `200 OK` means the
//! server took the frame it answers, `500 …` that it did not.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The highest transaction number; the next is 1.
pub const MAX_TXNR: u32 = 999_999_999;

/// The offers a session opens with (and a server answers with).
pub const OFFERS: &str = "relp_version=0\nrelp_software=wishbone\ncommands=syslog";

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub txnr: u32,
    pub command: Bytes,
    pub data: Bytes,
}

/// Why bytes are not a RELP frame.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("malformed frame header: {0}")]
    Header(&'static str),
    #[error("frame of {0} bytes is over the limit of {1}")]
    TooLarge(usize, usize),
    #[error("frame data not followed by a newline")]
    Trailer,
}

/// The transaction number after `txnr`.
pub fn next_txnr(txnr: u32) -> u32 {
    if txnr >= MAX_TXNR { 1 } else { txnr + 1 }
}

/// Reads a number of 1 to 9 digits at `at`, ended by one of `ends`:
/// `Ok(None)` when the buffer stops first.
fn number(buffer: &[u8], at: &mut usize, what: &'static str) -> Result<Option<u32>, FrameError> {
    let start = *at;
    let mut value: u32 = 0;
    loop {
        let Some(&byte) = buffer.get(*at) else {
            return if *at - start > 9 {
                Err(FrameError::Header(what))
            } else {
                Ok(None)
            };
        };
        if !byte.is_ascii_digit() {
            if *at == start || *at - start > 9 {
                return Err(FrameError::Header(what));
            }
            return Ok(Some(value));
        }
        value = value * 10 + u32::from(byte - b'0');
        *at += 1;
        if *at - start > 9 {
            return Err(FrameError::Header(what));
        }
    }
}

/// Takes the frame at the front of `buffer`: `Ok(None)` while it is not
/// whole yet. Frames with more than `max_data` bytes of data are refused
/// as soon as their header says so, before their data is read.
pub fn decode(buffer: &mut BytesMut, max_data: usize) -> Result<Option<Frame>, FrameError> {
    let mut at = 0;
    let Some(txnr) = number(buffer, &mut at, "transaction number")? else {
        return Ok(None);
    };
    match buffer.get(at) {
        None => return Ok(None),
        Some(b' ') => at += 1,
        Some(_) => return Err(FrameError::Header("no space after the transaction number")),
    }
    let command_start = at;
    loop {
        match buffer.get(at) {
            None if at - command_start <= 32 => return Ok(None),
            Some(b' ') if at > command_start => break,
            Some(byte) if byte.is_ascii_alphabetic() && at - command_start < 32 => at += 1,
            _ => return Err(FrameError::Header("command")),
        }
    }
    let command_end = at;
    at += 1;
    let Some(length) = number(buffer, &mut at, "data length")? else {
        return Ok(None);
    };
    let length = length as usize;
    if length > max_data {
        return Err(FrameError::TooLarge(length, max_data));
    }
    let data_start = match (length, buffer.get(at)) {
        (_, None) => return Ok(None),
        (0, Some(b'\n')) => at,
        (_, Some(b' ')) => at + 1,
        _ => return Err(FrameError::Header("no space after the data length")),
    };
    let end = data_start + length;
    match buffer.get(end) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(FrameError::Trailer),
    }
    let mut frame = buffer.split_to(end + 1).freeze();
    let command = frame.slice(command_start..command_end);
    frame.advance(data_start);
    frame.truncate(length);
    Ok(Some(Frame {
        txnr,
        command,
        data: frame,
    }))
}

/// Appends a frame to `out`.
pub fn encode(out: &mut BytesMut, txnr: u32, command: &str, data: &[u8]) {
    put_decimal(out, txnr as usize);
    out.put_u8(b' ');
    out.put_slice(command.as_bytes());
    out.put_u8(b' ');
    put_decimal(out, data.len());
    if !data.is_empty() {
        out.put_u8(b' ');
        out.put_slice(data);
    }
    out.put_u8(b'\n');
}

/// The code a `rsp` frame's data starts with (200, 500, …), if any.
pub fn response_code(data: &[u8]) -> Option<u16> {
    let digits = data.get(..3)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn put_decimal(out: &mut BytesMut, mut value: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.put_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(mut buffer: BytesMut) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = decode(&mut buffer, 1000).unwrap() {
            frames.push(frame);
        }
        assert!(buffer.is_empty(), "left: {buffer:?}");
        frames
    }

    #[test]
    fn frames_read_back_as_encoded_even_a_byte_at_a_time() {
        let mut out = BytesMut::new();
        encode(&mut out, 1, "open", OFFERS.as_bytes());
        encode(&mut out, 2, "syslog", b"hello\nworld");
        encode(&mut out, 999_999_999, "close", b"");
        let whole = out.clone().freeze();
        let decoded = frames(out);
        assert_eq!(decoded.len(), 3);
        assert_eq!(
            (
                decoded[1].txnr,
                &decoded[1].command[..],
                &decoded[1].data[..]
            ),
            (2, &b"syslog"[..], &b"hello\nworld"[..])
        );
        assert_eq!((decoded[2].txnr, decoded[2].data.len()), (MAX_TXNR, 0));
        let mut buffer = BytesMut::new();
        let mut trickled = Vec::new();
        for byte in whole.iter() {
            buffer.put_u8(*byte);
            while let Some(frame) = decode(&mut buffer, 1000).unwrap() {
                trickled.push(frame);
            }
        }
        assert_eq!(trickled, decoded);
    }

    #[test]
    fn what_rsyslog_sends_is_read() {
        let offers = "relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog";
        let sent = format!(
            "1 open {} {offers}\n2 syslog 3 abc\n3 close 0\n",
            offers.len()
        );
        let decoded = frames(BytesMut::from(sent.as_str()));
        assert_eq!(&decoded[0].data[..], offers.as_bytes());
        assert_eq!(&decoded[2].command[..], b"close");
        assert_eq!(response_code(b"200 OK"), Some(200));
        assert_eq!(response_code(b"5"), None);
    }

    #[test]
    fn malformed_frames_are_refused_with_a_reason() {
        for (bytes, error) in [
            ("x open 0\n", FrameError::Header("transaction number")),
            (
                "1234567890 open 0\n",
                FrameError::Header("transaction number"),
            ),
            ("1 op3n 0\n", FrameError::Header("command")),
            ("1  0\n", FrameError::Header("command")),
            ("1 syslog 3 abcd\n", FrameError::Trailer),
            (
                "1 syslog 3\nabc\n",
                FrameError::Header("no space after the data length"),
            ),
            ("1 syslog 2000 ", FrameError::TooLarge(2000, 1000)),
            ("1 syslog -1 a\n", FrameError::Header("data length")),
        ] {
            assert_eq!(
                decode(&mut BytesMut::from(bytes), 1000),
                Err(error),
                "{bytes:?}"
            );
        }
        let long_command = format!("1 {} 0\n", "a".repeat(33));
        assert!(decode(&mut BytesMut::from(long_command.as_str()), 1000).is_err());
        assert_eq!(
            decode(&mut BytesMut::from("12 sysl"), 1000),
            Ok(None),
            "not whole yet"
        );
    }

    #[test]
    fn transaction_numbers_wrap_to_one() {
        assert_eq!(next_txnr(1), 2);
        assert_eq!(next_txnr(MAX_TXNR), 1);
    }
}
