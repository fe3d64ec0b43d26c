//! Which file is which: a file is known by its device and inode, and by a
//! fingerprint of its first bytes, so that a renamed file is the same file
//! and a reused inode holding other content is a new one.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

/// Bytes of a file's start that its fingerprint covers, at most.
pub const FINGERPRINT_BYTES: usize = 1024;

/// Device and inode: what stays the same when a file is renamed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileKey {
    pub device: u64,
    pub inode: u64,
}

impl FileKey {
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }
}

/// A hash of a file's first `length` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub length: usize,
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of the first `FINGERPRINT_BYTES` (1024) bytes (fewer if
    /// the file is shorter).
    pub fn read(file: &File) -> std::io::Result<Fingerprint> {
        Self::read_length(file, FINGERPRINT_BYTES)
    }

    /// The fingerprint of the first `length` bytes, or of fewer if the file
    /// is shorter (then it does not match a fingerprint of `length`).
    pub fn read_length(file: &File, length: usize) -> std::io::Result<Fingerprint> {
        let mut start = vec![0u8; length];
        let mut filled = 0;
        while filled < length {
            match file.read_at(&mut start[filled..], filled as u64)? {
                0 => break,
                read => filled += read,
            }
        }
        start.truncate(filled);
        Ok(Fingerprint::of(&start))
    }

    pub fn of(start: &[u8]) -> Fingerprint {
        Fingerprint {
            length: start.len(),
            hash: xxh3_64(start),
        }
    }

    /// Whether `file` starts with the bytes this fingerprint was taken of.
    pub fn matches(&self, file: &File) -> std::io::Result<bool> {
        Ok(Self::read_length(file, self.length)? == *self)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_fingerprint_matches_the_file_it_was_taken_of_as_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut file = File::create(&path).unwrap();
        file.write_all(b"first line\n").unwrap();
        let reader = File::open(&path).unwrap();
        let early = Fingerprint::read(&reader).unwrap();
        file.write_all(&vec![b'x'; 3000]).unwrap();
        assert!(early.matches(&reader).unwrap(), "growth keeps the identity");
        let full = Fingerprint::read(&reader).unwrap();
        assert_eq!(full.length, FINGERPRINT_BYTES);
        std::fs::write(&path, b"other content\n").unwrap();
        let reader = File::open(&path).unwrap();
        assert!(
            !early.matches(&reader).unwrap(),
            "other content is another file"
        );
        assert!(
            !full.matches(&reader).unwrap(),
            "a shorter file is another file"
        );
    }
}
