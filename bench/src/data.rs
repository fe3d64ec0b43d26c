//! The benchmark's input: numbered lines of exactly 100 bytes, and an
//! order-independent fingerprint to check what arrived.

use std::io::Write;
use std::path::Path;

use xxhash_rust::xxh3::xxh3_64;

pub const LINE_LENGTH: usize = 100;

/// Writes `lines` lines to `path` unless a file of the right size is there.
pub fn generate(path: &Path, lines: usize) -> anyhow::Result<()> {
    if std::fs::metadata(path).is_ok_and(|meta| meta.len() == (lines * LINE_LENGTH) as u64) {
        return Ok(());
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for number in 0..lines {
        writeln!(
            out,
            "{number:012} {:.<86}",
            "the quick brown fox jumps over the lazy dog"
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Lines and the wrapping sum of their hashes: equal for the same lines in
/// any order, so several receivers' fingerprints add up to the input's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub lines: u64,
    pub sum: u64,
}

impl Fingerprint {
    /// Adds the complete lines of `chunk`; returns how many bytes of it were
    /// a final partial line, left for the next chunk.
    pub fn add_lines(&mut self, chunk: &[u8]) -> usize {
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', chunk) {
            self.sum = self.sum.wrapping_add(xxh3_64(&chunk[start..end]));
            self.lines += 1;
            start = end + 1;
        }
        chunk.len() - start
    }

    pub fn combine(self, other: Fingerprint) -> Fingerprint {
        Fingerprint {
            lines: self.lines + other.lines,
            sum: self.sum.wrapping_add(other.sum),
        }
    }

    /// The fingerprint of a whole file.
    pub fn of_file(path: &Path) -> anyhow::Result<Fingerprint> {
        let data = std::fs::read(path)?;
        let mut fingerprint = Fingerprint::default();
        fingerprint.add_lines(&data);
        Ok(fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_of_lines_does_not_matter_but_their_content_does() {
        let (mut one, mut two, mut three) = (
            Fingerprint::default(),
            Fingerprint::default(),
            Fingerprint::default(),
        );
        one.add_lines(b"a\nb\n");
        two.add_lines(b"b\na\n");
        three.add_lines(b"a\nc\n");
        assert_eq!(one, two);
        assert_ne!(one, three);
        let mut split = Fingerprint::default();
        assert_eq!(split.add_lines(b"a\nb"), 1);
    }
}
