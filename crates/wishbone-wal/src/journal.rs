//! The log on disk: a directory of segment files holding records
//! ([`super::record`]), appended to in order and deleted oldest first once
//! every block in them is settled.
//!
//! Segments are named by a sequence number, twenty digits and `.wal`
//! (`00000000000000000001.wal`), so sorting names sorts them. A file named
//! `lock` is held locked (`flock`) by the process using the directory. This
//! struct does the file work and nothing else: when to sync is the
//! writer's decision ([`super::writer`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use wishbone_runtime::Parcel;

use self::segments::{Segment, Segments};
use super::block::{Location, Stored, payload_bytes};
use super::record::{self, Record};

/// Why a log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the wal directory {} is in use by another process (it holds {})", .0.display(), .0.join("lock").display())]
    Locked(PathBuf),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// What a log held when it was opened.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Blocks kept and not settled, oldest first. Only their places are
    /// held: opening reads one segment at a time, whatever the log holds.
    pub blocks: Vec<Stored>,
    /// The id the next block gets: past every id the log has seen.
    pub next_id: u64,
    /// Bytes cut off where records were torn at a file's end.
    pub cut_bytes: u64,
    /// Damaged records skipped inside the files (the records after them
    /// read), and their bytes.
    pub damaged_records: usize,
    pub damaged_bytes: u64,
    /// Events in damaged blocks not settled later, as far as their
    /// records' headers tell: lost.
    pub lost_events: usize,
    /// Segment files found.
    pub segments: usize,
}

/// The open log.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    /// Held for as long as the log is open: the directory's lock.
    _lock: File,
    /// Oldest first; the newest is appended to.
    segments: Segments,
    file: File,
    /// Segments finished since the last sync, which it must cover too.
    unsynced: Vec<File>,
    /// A segment was created since the last sync: the directory's entry
    /// must reach the disk too.
    directory_changed: bool,
    segment_bytes: u64,
    /// Blocks kept and not settled.
    live: BTreeSet<u64>,
    /// Fsyncs to fail before one works again: how the writer's recovery
    /// from a failed fsync is tested, which no disk does on demand.
    #[cfg(test)]
    pub(crate) failing_syncs: usize,
    /// A disk of this many bytes for the segments: a write past it fails
    /// as a full disk fails it.
    #[cfg(test)]
    pub(crate) disk_size: Option<u64>,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn segment_name(sequence: u64) -> String {
    format!("{sequence:020}.wal")
}

fn segment_sequence(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Takes the log directory's lock, held for as long as the file is open.
fn lock(dir: &Path) -> Result<File, JournalError> {
    let lock_path = dir.join("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(error)) => Err(io_error(&lock_path)(error)),
    }
}

/// The sequence numbers of the segment files in `dir`, in order.
fn segment_sequences(dir: &Path) -> Result<Vec<u64>, JournalError> {
    let mut sequences = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        if let Some(sequence) = entry.file_name().to_str().and_then(segment_sequence) {
            sequences.push(sequence);
        }
    }
    sequences.sort_unstable();
    Ok(sequences)
}

/// What reading a log's segments back has found so far.
struct Reading {
    recovered: Recovered,
    /// Blocks read whole and not settled, by id.
    blocks: BTreeMap<u64, Stored>,
    /// Damaged blocks' ids and event counts, until settled later.
    damaged: BTreeMap<u64, usize>,
}

impl Reading {
    /// Reads one segment file: its records in order, a damaged one skipped
    /// when whole records follow it. What is sent again must not vanish in
    /// a later crash: the file as read, cut where it stops being whole, is
    /// fsynced.
    fn segment(&mut self, dir: &Path, sequence: u64) -> Result<Segment, JournalError> {
        let path = dir.join(segment_name(sequence));
        let data = Bytes::from(std::fs::read(&path).map_err(io_error(&path))?);
        let mut at = 0;
        // Where the last whole record ends: past it is a torn tail.
        let mut whole = 0;
        let mut segment = Segment::new(sequence);
        while at < data.len() {
            let Some((record, length)) = record::decode(&data.slice(at..)) else {
                // Damaged: the next whole record, if one follows.
                let Some(skip) = record::resync(&data.slice(at..)) else {
                    break;
                };
                self.skip_damaged(&data[at..at + skip]);
                at += skip;
                continue;
            };
            let location = Location {
                sequence,
                offset: at as u64,
                len: length as u64,
            };
            at += length;
            whole = at;
            self.apply(record, location, &mut segment);
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        if whole < data.len() {
            self.recovered.cut_bytes += (data.len() - whole) as u64;
            file.set_len(whole as u64).map_err(io_error(&path))?;
        }
        file.sync_all().map_err(io_error(&path))?;
        segment.len = whole as u64;
        Ok(segment)
    }

    /// Counts a damaged record, and the block it held, if it says.
    fn skip_damaged(&mut self, bytes: &[u8]) {
        self.recovered.damaged_records += 1;
        self.recovered.damaged_bytes += bytes.len() as u64;
        if let Some((id, events)) = record::damaged_block(bytes) {
            self.damaged.insert(id, events);
        }
    }

    /// One whole record, read at `location` of `segment`.
    fn apply(&mut self, record: Record, location: Location, segment: &mut Segment) {
        match record {
            Record::Block { id, parcel } => {
                segment.first_block.get_or_insert(id);
                segment.last_block = Some(id);
                // Written again whole after a failed fsync: not lost.
                self.damaged.remove(&id);
                self.recovered.next_id = self.recovered.next_id.max(id + 1);
                let (events, bytes) = (parcel.len(), payload_bytes(&parcel));
                let stored = Stored {
                    id,
                    location,
                    events,
                    bytes,
                };
                self.blocks.insert(id, stored);
            }
            Record::Settled(ids) => {
                if let Some(highest) = ids.iter().max() {
                    self.recovered.next_id = self.recovered.next_id.max(highest + 1);
                }
                // In log order: a settlement only ever follows its block,
                // and an id used again after the segments that held it
                // were deleted is a new block.
                for id in ids {
                    self.blocks.remove(&id);
                    self.damaged.remove(&id);
                }
            }
        }
    }

    /// The ids of the blocks still live, and what was recovered.
    fn finish(self) -> (BTreeSet<u64>, Recovered) {
        let Reading {
            mut recovered,
            blocks,
            mut damaged,
        } = self;
        // A damaged copy of a block read whole elsewhere is no loss either.
        damaged.retain(|id, _| !blocks.contains_key(id));
        recovered.lost_events = damaged.values().sum();
        let live = blocks.keys().copied().collect();
        recovered.blocks = blocks.into_values().collect();
        (live, recovered)
    }
}

impl Journal {
    /// Opens (or creates) the log in `dir`, locks it, and reads back what it
    /// holds: a damaged record is skipped when whole records follow it, and
    /// a torn tail is cut off.
    /// A new segment starts once one reaches `segment_bytes`.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(Journal, Recovered), JournalError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let lock = lock(dir)?;
        let sequences = segment_sequences(dir)?;
        let mut reading = Reading {
            recovered: Recovered {
                segments: sequences.len(),
                ..Recovered::default()
            },
            blocks: BTreeMap::new(),
            damaged: BTreeMap::new(),
        };
        let mut found = VecDeque::new();
        for sequence in sequences {
            found.push_back(reading.segment(dir, sequence)?);
        }
        let (live, recovered) = reading.finish();
        let mut directory_changed = false;
        let segments = match Segments::found(found) {
            Some(segments) => segments,
            None => {
                File::create(dir.join(segment_name(1))).map_err(io_error(dir))?;
                directory_changed = true;
                Segments::only(Segment::new(1))
            }
        };
        let path = dir.join(segment_name(segments.newest().sequence));
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let journal = Journal {
            dir: dir.to_path_buf(),
            _lock: lock,
            segments,
            file,
            unsynced: Vec::new(),
            directory_changed,
            segment_bytes: segment_bytes.max(1),
            live,
            #[cfg(test)]
            failing_syncs: 0,
            #[cfg(test)]
            disk_size: None,
        };
        Ok((journal, recovered))
    }

    /// Writes the records of `blocks` (which must carry no tokens) and
    /// returns them as kept, with where each lies: the same events, now
    /// pointing into their record, so a kept block costs one copy of its
    /// payload, and holds on to no other block's bytes. Not synced. On an
    /// error nothing counts as written, and the call may be repeated.
    pub fn append(&mut self, blocks: &[(u64, Parcel)]) -> io::Result<Vec<(u64, Parcel, Location)>> {
        let mut records = Vec::with_capacity(blocks.len());
        let mut layouts = Vec::with_capacity(blocks.len());
        for (id, parcel) in blocks {
            let mut out = BytesMut::new();
            layouts.push((*id, record::encode_block(&mut out, *id, parcel)));
            records.push(out.freeze());
        }
        let segment = self.segments.newest();
        let (sequence, start) = (segment.sequence, segment.len);
        self.write_all(&records)?;
        let segment = self.segments.newest_mut();
        if let (Some((first, _)), Some((last, _))) = (blocks.first(), blocks.last()) {
            segment.first_block.get_or_insert(*first);
            segment.last_block = Some(*last);
        }
        self.live.extend(blocks.iter().map(|(id, _)| *id));
        self.roll_when_full();
        let mut offset = start;
        Ok(layouts
            .into_iter()
            .zip(&records)
            .map(|((id, layout), record)| {
                let location = Location {
                    sequence,
                    offset,
                    len: record.len() as u64,
                };
                offset += location.len;
                (id, layout.parcel(record), location)
            })
            .collect())
    }

    /// Reads blocks back from where [`Journal::append`] (or opening) found
    /// them: each block's events in a buffer of their own, or why it could
    /// not be read (an I/O error, or a record that is no longer whole).
    pub fn read(&self, blocks: &[(u64, Location)]) -> Vec<(u64, io::Result<Parcel>)> {
        let mut open: Option<(u64, File)> = None;
        blocks
            .iter()
            .map(|&(id, location)| {
                let read = (|| {
                    if open
                        .as_ref()
                        .is_none_or(|(sequence, _)| *sequence != location.sequence)
                    {
                        let path = self.dir.join(segment_name(location.sequence));
                        open = Some((location.sequence, File::open(path)?));
                    }
                    let (_, file) = open.as_ref().expect("opened above");
                    let mut data = vec![0u8; location.len as usize];
                    file.read_exact_at(&mut data, location.offset)?;
                    match record::decode(&Bytes::from(data)) {
                        Some((Record::Block { id: found, parcel }, _)) if found == id => Ok(parcel),
                        _ => Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "block {id} is no longer whole in segment {}",
                                location.sequence
                            ),
                        )),
                    }
                })();
                (id, read)
            })
            .collect()
    }

    /// Records that `ids` need not be sent again. Not synced. They count
    /// as settled here at once, written or not: [`Journal::reclaim`] may
    /// delete their segments, which settles them for good; on an error the
    /// call may be repeated, for the ids [`Journal::holds`] still.
    pub fn settle(&mut self, ids: &[u64]) -> io::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            self.live.remove(id);
        }
        let mut out = BytesMut::new();
        record::encode_settled(&mut out, ids);
        self.write(&out.freeze())?;
        self.roll_when_full();
        Ok(())
    }

    /// Whether a segment may still hold block `id`: once none does, its
    /// settlement need not be written.
    pub fn holds(&self, id: u64) -> bool {
        self.segments.iter().any(|segment| segment.may_hold(id))
    }

    /// Appends `data` to the newest segment at its end.
    fn write(&mut self, data: &Bytes) -> io::Result<()> {
        self.write_all(std::slice::from_ref(data))
    }

    /// Appends `records` to the newest segment at its end, in order, with
    /// as few vectored writes as the system takes (each record is a buffer
    /// of its own, so that a kept block holds only its own record); on an
    /// error cuts whatever part was written, so the segment ends with a
    /// whole record.
    fn write_all(&mut self, records: &[Bytes]) -> io::Result<()> {
        #[cfg(test)]
        if let Some(size) = self.disk_size {
            let adding: u64 = records.iter().map(|record| record.len() as u64).sum();
            let used: u64 = self.segments.iter().map(|segment| segment.len).sum();
            if used + adding > size {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "no space left on device (a test's disk size)",
                ));
            }
        }
        let segment = self.segments.newest_mut();
        let mut slices: Vec<IoSlice> = records.iter().map(|record| IoSlice::new(record)).collect();
        let mut rest = &mut slices[..];
        let mut file = &self.file;
        let written = file.seek(SeekFrom::Start(segment.len)).and_then(|_| {
            while !rest.is_empty() {
                match file.write_vectored(rest) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(count) => IoSlice::advance_slices(&mut rest, count),
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
            }
            Ok(())
        });
        if let Err(error) = written {
            // Past `len` is garbage either way: the next write starts at
            // `len`, and recovery stops at the first broken record.
            let _ = self.file.set_len(segment.len);
            return Err(error);
        }
        segment.len += records
            .iter()
            .map(|record| record.len() as u64)
            .sum::<u64>();
        Ok(())
    }

    /// Starts a new segment once the newest reaches its size. When the
    /// file cannot be created the newest grows on, and the next write
    /// tries again: what was written stays written either way.
    fn roll_when_full(&mut self) {
        if self.segments.newest().len >= self.segment_bytes {
            let _ = self.start_segment();
        }
    }

    /// Starts a new segment now; what follows is appended to it.
    pub fn start_segment(&mut self) -> io::Result<()> {
        let sequence = self.segments.newest().sequence + 1;
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(self.dir.join(segment_name(sequence)))?;
        self.unsynced.push(std::mem::replace(&mut self.file, file));
        self.segments.push(Segment::new(sequence));
        self.directory_changed = true;
        Ok(())
    }

    /// Makes everything written so far durable: the segments' data, and
    /// the directory entries of new segments.
    pub fn sync(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if self.failing_syncs > 0 {
            self.failing_syncs -= 1;
            return Err(io::Error::other("fsync failed (injected)"));
        }
        for file in &self.unsynced {
            file.sync_data()?;
        }
        self.unsynced.clear();
        self.file.sync_data()?;
        if self.directory_changed {
            File::open(&self.dir)?.sync_all()?;
            self.directory_changed = false;
        }
        Ok(())
    }

    /// Deletes the oldest segments whose blocks are all settled, once that
    /// is on disk (the newest, appended to, stays). With `pressed` (writing
    /// fails, as on a full disk) and no block unsettled, the newest is
    /// emptied too, so that a fully delivered log gives its room back even
    /// though a settlement cannot be written: deleting a segment settles
    /// its blocks for good. Returns how many segments were deleted or
    /// emptied.
    pub fn reclaim(&mut self, pressed: bool) -> io::Result<usize> {
        let oldest_live = self.live.first().copied();
        let settled = |segment: &Segment| match (segment.last_block, oldest_live) {
            (None, _) | (_, None) => true,
            (Some(last), Some(oldest)) => last < oldest,
        };
        let count = self
            .segments
            .older()
            .take_while(|segment| settled(segment))
            .count();
        let empty_newest = pressed && oldest_live.is_none() && self.segments.newest().len > 0;
        if count == 0 && !empty_newest {
            return Ok(0);
        }
        self.sync()?;
        for _ in 0..count {
            let Some(oldest) = self.segments.older().next() else {
                break;
            };
            std::fs::remove_file(self.dir.join(segment_name(oldest.sequence)))?;
            self.segments.pop_oldest();
        }
        if empty_newest {
            self.file.set_len(0)?;
            let newest = self.segments.newest_mut();
            *newest = Segment::new(newest.sequence);
            return Ok(count + 1);
        }
        Ok(count)
    }

    /// [`Journal::read`] for tests: the blocks, or a panic naming the one
    /// that could not be read.
    #[cfg(test)]
    pub(crate) fn read_all(&self, blocks: &[(u64, Location)]) -> Vec<(u64, Parcel)> {
        self.read(blocks)
            .into_iter()
            .map(|(id, read)| {
                (
                    id,
                    read.unwrap_or_else(|error| panic!("block {id}: {error}")),
                )
            })
            .collect()
    }

    /// Bytes the segment files hold.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|segment| segment.len).sum()
    }

    /// Blocks kept and not settled.
    pub fn live_blocks(&self) -> usize {
        self.live.len()
    }
}

mod segments;

#[cfg(test)]
mod crash;

#[cfg(test)]
mod tests;
