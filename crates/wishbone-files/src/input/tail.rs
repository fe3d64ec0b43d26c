//! One file being read: where reading is, the partial line at its end, and
//! what of it was delivered.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use wishbone_runtime::{Batch, Event, Parcel};

use super::checkpoint::{Committed, Entry};
use super::identity::{FINGERPRINT_BYTES, FileKey, Fingerprint};
use wishbone_codecs::lines::{LineFramer, Overlong};
use wishbone_codecs::multiline::{Grouped, Grouper, Rules};

/// How lines are cut, for every file of one input.
#[derive(Clone, Debug)]
pub struct LineRules {
    pub max_line_length: usize,
    pub overlong: Overlong,
    /// Each line as a JSON object with the file's path and its offset.
    pub with_origin: bool,
    /// How lines are joined into multi-line events, if they are.
    pub multiline: Option<Rules>,
}

/// A line and where it came from (`with_origin`).
#[derive(Serialize)]
struct Origin<'a> {
    message: &'a str,
    file: &'a str,
    offset: u64,
}

impl LineRules {
    fn framer(&self) -> LineFramer {
        LineFramer::new(b"\n", self.max_line_length, self.overlong)
    }
}

/// A file open for reading.
#[derive(Debug)]
pub struct Tailed {
    pub key: FileKey,
    /// Where the last scan saw it.
    pub path: PathBuf,
    /// Whether the last scan saw it at all.
    pub present: bool,
    file: File,
    fingerprint: Fingerprint,
    /// Bytes read from the file so far.
    read: u64,
    /// Read and not yet a whole line.
    buffer: BytesMut,
    framer: LineFramer,
    cutting: LineRules,
    /// With `multiline`: the group being gathered.
    grouper: Option<Grouper>,
    /// Groups finished outside a read (a truncation), sent by the next.
    finished_groups: Vec<Grouped>,
    pub committed: Committed,
    /// Scans in a row that found it gone and no longer growing.
    idle_scans: u32,
}

/// What one read of a file gave.
#[derive(Debug)]
pub struct Chunk {
    /// The complete lines read.
    pub parcel: Parcel,
    /// The offset after them.
    pub end: u64,
    /// Whether the read filled its buffer: more may be waiting.
    pub more: bool,
}

impl Tailed {
    /// A file to read from `offset` on (which must be at a line's start).
    pub fn new(
        key: FileKey,
        path: PathBuf,
        file: File,
        offset: u64,
        cutting: LineRules,
    ) -> std::io::Result<Self> {
        let fingerprint = Fingerprint::read(&file)?;
        Ok(Self {
            key,
            path,
            present: true,
            file,
            fingerprint,
            read: offset,
            buffer: BytesMut::new(),
            framer: cutting.framer(),
            grouper: cutting.multiline.clone().map(Grouper::new),
            finished_groups: Vec::new(),
            cutting,
            committed: Committed::at(offset),
            idle_scans: 0,
        })
    }

    /// Reads up to `size` bytes more; the complete lines among what was
    /// read so far come back.
    pub fn read(&mut self, size: usize) -> std::io::Result<Chunk> {
        // No more than the file holds: a thousand files each keeping a
        // whole read buffer for a few lines would be a lot of memory.
        let available = self.size()?.saturating_sub(self.read);
        let asked = size;
        let size = size.min(usize::try_from(available).unwrap_or(usize::MAX));
        let before = self.buffer.len();
        self.buffer.resize(before + size, 0);
        let read = match self.file.read_at(&mut self.buffer[before..], self.read) {
            Ok(read) => read,
            Err(error) => {
                self.buffer.truncate(before);
                return Err(error);
            }
        };
        self.buffer.truncate(before + read);
        self.read += read as u64;
        if read > 0 {
            self.idle_scans = 0;
            if self.fingerprint.length < FINGERPRINT_BYTES {
                self.fingerprint = Fingerprint::read(&self.file)?;
            }
        }
        let parcel = match (self.cutting.with_origin, self.grouper.is_some()) {
            (false, false) => self.framer.split(&mut self.buffer),
            (with_origin, grouped) => {
                let front = self.read - self.buffer.len() as u64;
                let (mut parcel, mut starts) =
                    self.framer.split_with_starts(&mut self.buffer, front);
                if grouped {
                    (parcel, starts) = self.group(parcel, &starts, Instant::now());
                }
                match with_origin {
                    true => self.with_origin(parcel, &starts),
                    false => parcel,
                }
            }
        };
        if self.buffer.is_empty() {
            // What is left would pin the read's whole allocation.
            self.buffer = BytesMut::new();
        }
        Ok(Chunk {
            parcel,
            end: self.sent_to(),
            more: read == asked,
        })
    }

    /// Where what was sent ends: before the partial line, and before the
    /// first line of a group still open, so that a checkpoint never passes
    /// the start of a multi-line event not yet sent.
    fn sent_to(&self) -> u64 {
        let read_to = self.read - self.buffer.len() as u64;
        self.grouper
            .as_ref()
            .and_then(Grouper::open_start)
            .map_or(read_to, |start| start.min(read_to))
    }

    /// The lines of `parcel` (which start at `starts`) joined into groups:
    /// the groups finished, and where each starts.
    fn group(&mut self, parcel: Parcel, starts: &[u64], now: Instant) -> (Parcel, Vec<u64>) {
        let mut grouped = std::mem::take(&mut self.finished_groups);
        if let Some(grouper) = &mut self.grouper {
            grouper.flush_expired(now, &mut grouped);
            for (event, &start) in parcel.into_events().iter().zip(starts) {
                grouper.push(event.data(), start, now, &mut grouped);
            }
        }
        let starts = grouped.iter().map(|group| group.start).collect();
        let events = grouped
            .into_iter()
            .map(|group| Event::new(group.data))
            .collect();
        (Parcel::Events(events), starts)
    }

    /// With `multiline`: the group open for its timeout by `now`, if any,
    /// sent as it is.
    pub fn expired_group(&mut self, now: Instant) -> Option<Chunk> {
        let deadline = self.grouper.as_ref()?.deadline()?;
        if deadline > now && self.present {
            return None;
        }
        let mut chunk = self.flush_group()?;
        if self.cutting.with_origin {
            // One group: its start is where sending had stopped.
            let start = chunk.end;
            chunk.end = self.sent_to();
            chunk.parcel = self.with_origin(chunk.parcel, &[start]);
        } else {
            chunk.end = self.sent_to();
        }
        Some(chunk)
    }

    /// The open group, sent now; the chunk's `end` is where the group
    /// started (the caller sets where sending is).
    fn flush_group(&mut self) -> Option<Chunk> {
        let grouper = self.grouper.as_mut()?;
        let start = grouper.open_start()?;
        let mut grouped = Vec::new();
        grouper.flush(&mut grouped);
        let events: Batch = grouped
            .into_iter()
            .map(|group| Event::new(group.data))
            .collect();
        Some(Chunk {
            parcel: Parcel::Events(events),
            end: start,
            more: false,
        })
    }

    /// Groups cut for `max_bytes` so far.
    pub fn groups_cut(&self) -> u64 {
        self.grouper.as_ref().map_or(0, Grouper::cut)
    }

    /// A scan found the file at `size` bytes: smaller than what was read
    /// means it was truncated in place (copytruncate), and it is read
    /// again from its start. True when that happened.
    pub fn check_size(&mut self, size: u64) -> bool {
        if size >= self.read {
            return false;
        }
        self.read = 0;
        self.buffer.clear();
        if let Some(grouper) = &mut self.grouper {
            grouper.flush(&mut self.finished_groups);
        }
        self.framer = self.cutting.framer();
        self.committed.restart();
        self.fingerprint = Fingerprint::of(b"");
        true
    }

    /// The file is gone from where it was (renamed out of the patterns,
    /// deleted, or replaced by a new file) and a scan found nothing more
    /// to read: its last line, unfinished, will never be finished.
    /// Counts the scan; after the second, the partial line comes back.
    pub fn give_up_partial_line(&mut self, size: u64) -> Option<Chunk> {
        if self.present || self.buffer.is_empty() || self.read < size {
            self.idle_scans = 0;
            return None;
        }
        self.idle_scans += 1;
        if self.idle_scans < 2 {
            return None;
        }
        let front = self.read - self.buffer.len() as u64;
        let mut parcel = self.framer.finish(&mut self.buffer);
        let mut starts = vec![front];
        if self.grouper.is_some() {
            // The file is done: its last group is finished too.
            (parcel, starts) = self.group(parcel, &starts, Instant::now());
            if let Some(Chunk {
                parcel: last,
                end: start,
                ..
            }) = self.flush_group()
            {
                let mut events = parcel.into_events();
                events.extend(last.into_events());
                parcel = Parcel::Events(events);
                starts.push(start);
            }
        }
        if self.cutting.with_origin {
            parcel = self.with_origin(parcel, &starts);
        }
        Some(Chunk {
            parcel,
            end: self.read,
            more: false,
        })
    }

    /// The events of `parcel` as JSON objects: the line as `message`
    /// (invalid UTF-8 replaced), the file's path as `file`, and where the
    /// line starts in it as `offset`; `starts` holds one offset per event.
    fn with_origin(&self, parcel: Parcel, starts: &[u64]) -> Parcel {
        let file = self.path.to_string_lossy();
        let events: Batch = parcel
            .into_events()
            .into_iter()
            .zip(starts)
            .map(|(event, &offset)| {
                let message = String::from_utf8_lossy(event.data());
                let origin = Origin {
                    message: &message,
                    file: &file,
                    offset,
                };
                let json = serde_json::to_vec(&origin).unwrap_or_default();
                Event::new(Bytes::from(json))
            })
            .collect();
        Parcel::Events(events)
    }

    /// Whether the file can be closed: gone, read to its end, nothing of
    /// it in flight.
    pub fn finished(&self, size: u64) -> bool {
        !self.present
            && self.read >= size
            && self.buffer.is_empty()
            && self
                .grouper
                .as_ref()
                .is_none_or(|grouper| grouper.open_start().is_none())
            && self.finished_groups.is_empty()
            && self.committed.in_flight() == 0
    }

    /// Where reading is: the offset after what was read.
    pub fn offset(&self) -> u64 {
        self.read
    }

    /// Bytes written to the file and not yet read.
    pub fn behind(&self, size: u64) -> u64 {
        size.saturating_sub(self.read)
    }

    /// Lines cut and lines dropped for their length so far.
    pub fn overlong(&self) -> (u64, u64) {
        (self.framer.truncated, self.framer.dropped)
    }

    /// The size of the open file (it may have been renamed or deleted).
    pub fn size(&self) -> std::io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// The checkpoint of this file.
    pub fn entry(&self) -> Entry {
        Entry {
            key: self.key,
            fingerprint: self.fingerprint,
            path: self.path.clone(),
            offset: self.committed.offset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const CUTTING: LineRules = LineRules {
        max_line_length: 100,
        overlong: Overlong::Truncate,
        with_origin: false,
        multiline: None,
    };

    fn lines(chunk: &Chunk) -> Vec<String> {
        chunk
            .parcel
            .clone()
            .into_events()
            .iter()
            .map(|event| String::from_utf8_lossy(event.data()).into_owned())
            .collect()
    }

    fn open(path: &std::path::Path, offset: u64) -> Tailed {
        let file = File::open(path).unwrap();
        let key = FileKey::of(&file.metadata().unwrap());
        Tailed::new(key, path.to_path_buf(), file, offset, CUTTING).unwrap()
    }

    #[test]
    fn complete_lines_come_out_and_a_partial_one_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut writer = File::create(&path).unwrap();
        writer.write_all(b"one\ntwo\nthr").unwrap();
        let mut tailed = open(&path, 0);
        let chunk = tailed.read(4096).unwrap();
        assert_eq!(
            (lines(&chunk), chunk.end, chunk.more),
            (vec!["one".into(), "two".into()], 8, false)
        );
        writer.write_all(b"ee\n").unwrap();
        let chunk = tailed.read(4096).unwrap();
        assert_eq!((lines(&chunk), chunk.end), (vec!["three".to_string()], 14));
        let mut resumed = open(&path, 4);
        assert_eq!(lines(&resumed.read(4096).unwrap()), ["two", "three"]);
    }

    #[test]
    fn a_truncated_file_is_read_again_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"old line one\nold line two\n").unwrap();
        let mut tailed = open(&path, 0);
        tailed.read(4096).unwrap();
        std::fs::write(&path, b"new\n").unwrap();
        assert!(tailed.check_size(4));
        assert_eq!(lines(&tailed.read(4096).unwrap()), ["new"]);
        assert!(!tailed.check_size(4));
    }

    #[test]
    fn a_partial_line_of_a_file_gone_comes_out_after_two_idle_scans() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"whole\npartial").unwrap();
        let mut tailed = open(&path, 0);
        tailed.read(4096).unwrap();
        assert!(tailed.give_up_partial_line(13).is_none(), "still present");
        tailed.present = false;
        assert!(tailed.give_up_partial_line(13).is_none(), "one idle scan");
        let chunk = tailed.give_up_partial_line(13).unwrap();
        assert_eq!(
            (lines(&chunk), chunk.end),
            (vec!["partial".to_string()], 13)
        );
        assert!(tailed.finished(13));
    }

    #[test]
    fn a_group_being_gathered_holds_the_checkpoint_at_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut writer = File::create(&path).unwrap();
        writer.write_all(b"plain\nboom\n\tat one\n").unwrap();
        let file = File::open(&path).unwrap();
        let key = FileKey::of(&file.metadata().unwrap());
        let rules = wishbone_codecs::multiline::Rules::preset(
            "java",
            std::time::Duration::from_millis(200),
            1 << 20,
        );
        let cutting = LineRules {
            multiline: rules,
            max_line_length: 1000,
            ..CUTTING
        };
        let mut tailed = Tailed::new(key, path.clone(), file, 0, cutting).unwrap();
        let chunk = tailed.read(4096).unwrap();
        // "plain" is finished by "boom", whose group is open: the
        // checkpoint may pass "plain", not "boom".
        assert_eq!((lines(&chunk), chunk.end), (vec!["plain".to_string()], 6));
        writer.write_all(b"\tat two\nnext\n").unwrap();
        let chunk = tailed.read(4096).unwrap();
        assert_eq!(
            (lines(&chunk), chunk.end),
            (vec!["boom\n\tat one\n\tat two".to_string()], 27)
        );
        assert!(tailed.expired_group(Instant::now()).is_none(), "not yet");
        let later = Instant::now() + std::time::Duration::from_millis(300);
        let chunk = tailed.expired_group(later).unwrap();
        assert_eq!((lines(&chunk), chunk.end), (vec!["next".to_string()], 32));
        assert!(tailed.expired_group(later).is_none());
    }
}
