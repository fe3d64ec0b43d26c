//! Compressed bodies, both ways: the HTTP input takes a body sent with
//! `Content-Encoding: gzip` or `zstd`, and the HTTP output can send its
//! batches so (`compression`). flate2 and zstd do the work; the one rule
//! kept here is that a decoded body is bounded like a plain one, so that a
//! small compressed body cannot grow past `max_body_bytes`.

use std::io::Read;

use bytes::Bytes;
use serde::Deserialize;

/// How a body is compressed.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// As it is.
    #[default]
    None,
    /// `Content-Encoding: gzip`.
    Gzip,
    /// `Content-Encoding: zstd`.
    Zstd,
}

impl Compression {
    /// The `Content-Encoding` header's value, none for a plain body.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
        }
    }

    /// The body, compressed.
    pub fn encode(self, body: Bytes) -> Bytes {
        match self {
            Compression::None => body,
            Compression::Gzip => {
                use std::io::Write;
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                // Writing to memory cannot fail.
                let _ = encoder.write_all(&body);
                encoder.finish().map(Bytes::from).unwrap_or(body)
            }
            Compression::Zstd => zstd::bulk::compress(&body, 1)
                .map(Bytes::from)
                .unwrap_or(body),
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum Undecoded {
    /// An encoding this side does not know (answered 415).
    Unsupported(String),
    /// Decoded, it is larger than the bound (413).
    TooLarge,
    /// Not what its encoding says (400).
    Broken(String),
}

/// The body as sent, given its `Content-Encoding` (none, `identity`,
/// `gzip`, `x-gzip`, `zstd`), at most `most` bytes once decoded.
pub fn decode(encoding: Option<&str>, body: Bytes, most: usize) -> Result<Bytes, Undecoded> {
    let encoding = encoding.map(|name| name.trim().to_ascii_lowercase());
    let reader: Box<dyn Read + '_> = match encoding.as_deref() {
        None | Some("" | "identity") => return Ok(body),
        Some("gzip" | "x-gzip") => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        Some("zstd") => Box::new(
            zstd::stream::read::Decoder::new(&body[..])
                .map_err(|error| Undecoded::Broken(error.to_string()))?,
        ),
        Some(other) => return Err(Undecoded::Unsupported(other.to_string())),
    };
    let mut decoded = Vec::new();
    reader
        .take(most as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|error| Undecoded::Broken(error.to_string()))?;
    if decoded.len() > most {
        return Err(Undecoded::TooLarge);
    }
    Ok(Bytes::from(decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_encoded_decodes_back_and_is_bounded() {
        let body = Bytes::from("a\nb\n".repeat(1000));
        for compression in [Compression::Gzip, Compression::Zstd] {
            let sent = compression.encode(body.clone());
            assert!(sent.len() < body.len() / 10, "{compression:?} compresses");
            assert_eq!(
                decode(compression.header(), sent.clone(), 4000),
                Ok(body.clone())
            );
            assert_eq!(
                decode(compression.header(), sent, 3999),
                Err(Undecoded::TooLarge)
            );
        }
        assert_eq!(
            decode(None, body.clone(), 1),
            Ok(body.clone()),
            "plain is bounded elsewhere"
        );
        assert_eq!(
            decode(Some("br"), body.clone(), 10_000),
            Err(Undecoded::Unsupported("br".into()))
        );
        assert!(matches!(
            decode(Some("gzip"), body, 10_000),
            Err(Undecoded::Broken(_))
        ));
    }
}
