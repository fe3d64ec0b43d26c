//! The files one input reads: finding them, reading them in turn, tracking
//! what of each is in flight, closing them. No queues here: the module
//! sends what a round gives and hands back what it hears.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use wishbone_runtime::ack::{Ack, AckIssuer, Outcome};
use wishbone_runtime::resend::{ResendChange, Resends};
use wishbone_runtime::{Batch, Parcel};

use super::StartAt;
use super::checkpoint::Entry;
use super::identity::FileKey;
use super::tail::{Chunk, LineRules, Tailed};

/// Every file of one input.
#[derive(Debug)]
pub struct Files {
    patterns: Vec<String>,
    /// Checkpoints of the last run not matched to a file yet; forgotten
    /// after the first scan.
    stored: Vec<Entry>,
    start_at: StartAt,
    first_scan: bool,
    cutting: LineRules,
    open: BTreeMap<FileKey, Tailed>,
    /// Unfinished last lines of files gone, to send.
    given_up: Vec<(FileKey, Chunk)>,
    in_flight: HashMap<u64, InFlight>,
    in_flight_bytes: usize,
    /// Batches that failed downstream, waiting out their pause.
    resends: Resends,
    next_id: u64,
    /// Long lines of files already closed: (truncated, dropped).
    /// Lines cut and dropped for their length, and groups cut for
    /// theirs, of the files closed.
    closed_overlong: (u64, u64, u64),
    reported_overlong: (u64, u64, u64),
}

/// What one scan found: problems, and the files it opened and closed,
/// each with its path and the offset reading starts from or ended at.
#[derive(Debug, Default)]
pub struct Scanned {
    pub problems: Vec<String>,
    pub opened: Vec<(PathBuf, u64)>,
    pub closed: Vec<(PathBuf, u64)>,
}

/// A batch sent and not yet acknowledged, without its token (a copy of the
/// token would keep it from failing when the batch is lost).
#[derive(Debug)]
struct InFlight {
    key: FileKey,
    parcel: Parcel,
    bytes: usize,
}

/// What one round of reading gave.
#[derive(Debug, Default)]
pub struct Round {
    /// Batches to send, each with its token.
    pub parcels: Vec<Parcel>,
    /// Whether some file has more to read now.
    pub more: bool,
    pub problems: Vec<String>,
}

impl Files {
    pub fn new(
        patterns: Vec<String>,
        stored: Vec<Entry>,
        start_at: StartAt,
        cutting: LineRules,
        resends: Resends,
    ) -> Self {
        Self {
            patterns,
            stored,
            start_at,
            first_scan: true,
            cutting,
            open: BTreeMap::new(),
            given_up: Vec::new(),
            in_flight: HashMap::new(),
            in_flight_bytes: 0,
            resends,
            next_id: 0,
            closed_overlong: (0, 0, 0),
            reported_overlong: (0, 0, 0),
        }
    }

    /// Looks for files: new ones are opened (from their checkpoint, if
    /// their identity has one), known ones found again under a new name,
    /// truncated ones read again, finished ones closed.
    pub fn scan(&mut self) -> Scanned {
        let mut scanned = Scanned::default();
        let problems = &mut scanned.problems;
        let mut seen: BTreeMap<FileKey, (PathBuf, u64)> = BTreeMap::new();
        for pattern in &self.patterns {
            let paths = match glob::glob(pattern) {
                Ok(paths) => paths,
                Err(error) => {
                    problems.push(format!("pattern `{pattern}`: {error}"));
                    continue;
                }
            };
            for path in paths.flatten() {
                if let Ok(metadata) = std::fs::metadata(&path)
                    && metadata.is_file()
                {
                    seen.entry(FileKey::of(&metadata))
                        .or_insert((path, metadata.len()));
                }
            }
        }
        for tailed in self.open.values_mut() {
            tailed.present = false;
        }
        for (key, (path, size)) in seen {
            if let Some(tailed) = self.open.get_mut(&key) {
                tailed.present = true;
                tailed.path = path;
                tailed.check_size(size);
                continue;
            }
            match self.open_new(key, &path, size) {
                Ok(Some(tailed)) => {
                    scanned.opened.push((path, tailed.offset()));
                    self.open.insert(key, tailed);
                }
                Ok(None) => {}
                Err(error) => problems.push(format!("{}: {error}", path.display())),
            }
        }
        self.first_scan = false;
        self.stored.clear();
        let mut finished = Vec::new();
        for (key, tailed) in &mut self.open {
            let size = tailed.size().unwrap_or(0);
            if let Some(chunk) = tailed.give_up_partial_line(size) {
                self.given_up.push((*key, chunk));
            } else if tailed.finished(size) {
                finished.push(*key);
            }
        }
        for key in finished {
            if let Some(tailed) = self.open.remove(&key) {
                let (truncated, dropped) = tailed.overlong();
                self.closed_overlong.0 += truncated;
                self.closed_overlong.1 += dropped;
                self.closed_overlong.2 += tailed.groups_cut();
                scanned.closed.push((tailed.path.clone(), tailed.offset()));
            }
        }
        scanned
    }

    /// A file found for the first time: from its checkpoint when one
    /// matches its identity, else from its beginning (or its end, for a
    /// file of the first scan with `start_at: end`). `None` when it was
    /// replaced between the look and the open.
    fn open_new(
        &mut self,
        key: FileKey,
        path: &std::path::Path,
        size: u64,
    ) -> std::io::Result<Option<Tailed>> {
        let file = File::open(path)?;
        if FileKey::of(&file.metadata()?) != key {
            return Ok(None);
        }
        let mut offset = match (self.first_scan, self.start_at) {
            (true, StartAt::End) => line_start_before(&file, size)?,
            _ => 0,
        };
        if let Some(index) = self.stored.iter().position(|entry| entry.key == key) {
            let entry = self.stored.swap_remove(index);
            if entry.offset <= size && entry.fingerprint.matches(&file)? {
                offset = entry.offset;
            }
        }
        Tailed::new(key, path.to_path_buf(), file, offset, self.cutting.clone()).map(Some)
    }

    /// Reads from every open file in turn, each up to `size` bytes, while
    /// what is in flight stays under `budget` bytes; every batch comes
    /// with a token from `issuer`.
    pub fn read_round(&mut self, size: usize, budget: usize, issuer: &AckIssuer) -> Round {
        let mut round = Round::default();
        let mut sending = Sending {
            in_flight: &mut self.in_flight,
            in_flight_bytes: &mut self.in_flight_bytes,
            next_id: &mut self.next_id,
            issuer,
        };
        for (key, chunk) in std::mem::take(&mut self.given_up) {
            if let Some(tailed) = self.open.get_mut(&key) {
                round.parcels.push(sending.send(tailed, chunk));
            }
        }
        let now = Instant::now();
        for tailed in self.open.values_mut() {
            if *sending.in_flight_bytes >= budget {
                round.more = true;
                break;
            }
            if let Some(chunk) = tailed.expired_group(now) {
                round.parcels.push(sending.send(tailed, chunk));
            }
            match tailed.read(size) {
                Ok(chunk) => {
                    round.more |= chunk.more;
                    if !chunk.parcel.is_empty() {
                        round.parcels.push(sending.send(tailed, chunk));
                    }
                }
                Err(error) => round
                    .problems
                    .push(format!("{}: {error}", tailed.path.display())),
            }
        }
        round
    }

    /// Batch `id` was delivered.
    pub fn acknowledge(&mut self, id: u64, now: Instant) {
        self.resends.delivered(id, now);
        if let Some(batch) = self.in_flight.remove(&id) {
            self.in_flight_bytes -= batch.bytes;
            if let Some(tailed) = self.open.get_mut(&batch.key) {
                tailed.committed.acknowledge(id);
            }
        }
    }

    /// Batch `id` failed downstream, whole or in part: what was delivered
    /// of it is settled, and only the failed lines are sent again, after a
    /// pause ([`Files::take_due`]).
    pub fn failed(&mut self, id: u64, outcome: Outcome, now: Instant) {
        let Some(batch) = self.in_flight.get_mut(&id) else {
            return;
        };
        if let Outcome::Partly(failed) = &outcome {
            batch.parcel = batch.parcel.select(failed);
        }
        self.resends.failed(id, batch.parcel.len(), now);
    }

    /// When the next failed batch is due again.
    pub fn next_due(&self) -> Option<Instant> {
        self.resends.next_due()
    }

    /// The failed batches whose pause is over, each under a new token, in
    /// the same place of their file (none for a file truncated since: the
    /// lines are gone from it).
    pub fn take_due(&mut self, now: Instant, issuer: &AckIssuer) -> Vec<Parcel> {
        let due = self.resends.take_due(now);
        let parcels: Vec<Parcel> = due
            .into_iter()
            .filter_map(|id| self.resend(id, issuer))
            .collect();
        self.resends.resent(parcels.iter().map(Parcel::len).sum());
        parcels
    }

    /// A change in resending worth a log line, once.
    pub fn take_resend_change(&mut self) -> Option<ResendChange> {
        self.resends.take_change()
    }

    fn resend(&mut self, id: u64, issuer: &AckIssuer) -> Option<Parcel> {
        let batch = self.in_flight.remove(&id)?;
        let tailed = self
            .open
            .get_mut(&batch.key)
            .filter(|tailed| tailed.committed.holds(id));
        let Some(tailed) = tailed else {
            self.resends.forget(id);
            self.in_flight_bytes -= batch.bytes;
            return None;
        };
        let new_id = self.next_id;
        self.next_id += 1;
        tailed.committed.renumber(id, new_id);
        self.resends.renumber(id, new_id);
        let parcel = with_token(batch.parcel.clone(), issuer.issue(new_id));
        self.in_flight.insert(new_id, batch);
        Some(parcel)
    }

    /// Batch `id` failed and will not be sent again by this run: its lines
    /// stay behind the checkpoint, to be read again at the next start.
    pub fn forget(&mut self, id: u64) {
        self.resends.forget(id);
        if let Some(batch) = self.in_flight.remove(&id) {
            self.in_flight_bytes -= batch.bytes;
        }
    }

    /// A stop: the failed batches waiting out their pause are left for the
    /// next start.
    pub fn forget_failed(&mut self) {
        for id in self.resends.take_all() {
            self.forget(id);
        }
    }

    /// Batches in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn in_flight_bytes(&self) -> usize {
        self.in_flight_bytes
    }

    /// The checkpoints to store.
    pub fn entries(&self) -> Vec<Entry> {
        self.open.values().map(Tailed::entry).collect()
    }

    /// Files open, and bytes written to them and not yet read.
    pub fn gauges(&self) -> (usize, u64) {
        let behind = self
            .open
            .values()
            .map(|tailed| tailed.size().map_or(0, |size| tailed.behind(size)))
            .sum();
        (self.open.len(), behind)
    }

    /// Lines cut and dropped for their length since the last call.
    pub fn take_overlong(&mut self) -> (u64, u64, u64) {
        let (mut truncated, mut dropped, mut cut) = self.closed_overlong;
        for tailed in self.open.values() {
            let (t, d) = tailed.overlong();
            truncated += t;
            dropped += d;
            cut += tailed.groups_cut();
        }
        let delta = (
            truncated - self.reported_overlong.0,
            dropped - self.reported_overlong.1,
            cut - self.reported_overlong.2,
        );
        self.reported_overlong = (truncated, dropped, cut);
        delta
    }
}

/// The offset after the last newline before `end` (0 if none in the last
/// 64 KiB): where a file's unfinished last line starts, so that starting
/// at a file's end reads that line whole once it is finished.
fn line_start_before(file: &File, end: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let from = end.saturating_sub(64 * 1024);
    let mut tail = vec![0u8; (end - from) as usize];
    file.read_exact_at(&mut tail, from)?;
    Ok(match memchr::memrchr(b'\n', &tail) {
        Some(at) => from + at as u64 + 1,
        None if from == 0 => 0,
        None => end,
    })
}

/// What sending a batch updates.
struct Sending<'a> {
    in_flight: &'a mut HashMap<u64, InFlight>,
    in_flight_bytes: &'a mut usize,
    next_id: &'a mut u64,
    issuer: &'a AckIssuer,
}

impl Sending<'_> {
    fn send(&mut self, tailed: &mut Tailed, chunk: Chunk) -> Parcel {
        let id = *self.next_id;
        *self.next_id += 1;
        let bytes = bytes_of(&chunk.parcel);
        tailed.committed.sent(id, chunk.end);
        *self.in_flight_bytes += bytes;
        self.in_flight.insert(
            id,
            InFlight {
                key: tailed.key,
                parcel: chunk.parcel.clone(),
                bytes,
            },
        );
        with_token(chunk.parcel, self.issuer.issue(id))
    }
}

fn bytes_of(parcel: &Parcel) -> usize {
    match parcel {
        Parcel::Lines(lines) => lines.data().len(),
        Parcel::Events(events) => events.iter().map(|event| event.len() + 1).sum(),
    }
}

/// The parcel carrying `ack`: a block of lines as one, separate events
/// each with a share.
fn with_token(parcel: Parcel, ack: Ack) -> Parcel {
    match parcel {
        Parcel::Lines(lines) => Parcel::Lines(lines.with_ack(ack)),
        Parcel::Events(events) => {
            let shares = ack.each(events.len());
            let batch: Batch = events
                .into_iter()
                .zip(shares)
                .map(|(event, share)| event.with_ack(share))
                .collect();
            Parcel::Events(batch)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use std::time::Duration;

    use wishbone_runtime::ack::{Outcome, issuer};

    use super::*;
    use wishbone_codecs::lines::Overlong;

    const CUTTING: LineRules = LineRules {
        max_line_length: 1000,
        overlong: Overlong::Truncate,
        with_origin: false,
        multiline: None,
    };

    const PAUSE: Duration = Duration::from_millis(100);

    fn resends() -> Resends {
        Resends::new(PAUSE, 10 * PAUSE)
    }

    /// The lines' texts; their tokens are left alone.
    fn texts(parcels: &[Parcel]) -> Vec<String> {
        parcels
            .iter()
            .flat_map(|parcel| match parcel {
                Parcel::Lines(lines) => lines.iter().map(<[u8]>::to_vec).collect::<Vec<_>>(),
                Parcel::Events(events) => events.iter().map(|e| e.data().to_vec()).collect(),
            })
            .map(|line| String::from_utf8_lossy(&line).into_owned())
            .collect()
    }

    #[test]
    fn a_renamed_file_is_read_to_its_end_and_the_new_one_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let pattern = format!("{}/app.log*", dir.path().display());
        let mut writer = File::create(&path).unwrap();
        writer.write_all(b"1\n2\n").unwrap();
        let (issuer, _replies) = issuer();
        let mut files = Files::new(
            vec![pattern],
            Vec::new(),
            StartAt::Beginning,
            CUTTING,
            resends(),
        );
        files.scan();
        assert_eq!(
            texts(&files.read_round(4096, usize::MAX, &issuer).parcels),
            ["1", "2"]
        );
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        writer.write_all(b"3\n").unwrap();
        std::fs::write(&path, b"4\n").unwrap();
        files.scan();
        let mut read = texts(&files.read_round(4096, usize::MAX, &issuer).parcels);
        read.sort();
        assert_eq!(read, ["3", "4"]);
        assert_eq!(files.gauges().0, 2);
    }

    #[test]
    fn checkpoints_follow_acknowledgements_and_failures_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"one\ntwo\n").unwrap();
        let (issuer, mut replies) = issuer();
        let pattern = format!("{}/*.log", dir.path().display());
        let mut files = Files::new(
            vec![pattern.clone()],
            Vec::new(),
            StartAt::Beginning,
            CUTTING,
            resends(),
        );
        files.scan();
        let round = files.read_round(4096, usize::MAX, &issuer);
        assert_eq!(files.entries()[0].offset, 0);
        drop(round);
        let (id, outcome) = replies.try_recv().unwrap();
        assert_eq!(outcome, Outcome::Failed, "a batch lost downstream fails");
        let now = Instant::now();
        files.failed(id, outcome, now);
        assert!(files.take_due(now, &issuer).is_empty(), "not at once");
        let again = files.take_due(now + PAUSE, &issuer);
        again[0].acknowledge();
        assert_eq!(texts(&again), ["one", "two"]);
        let (id, outcome) = replies.try_recv().unwrap();
        assert_eq!(outcome, Outcome::Acknowledged);
        files.acknowledge(id, now + PAUSE);
        let entries = files.entries();
        assert_eq!((entries[0].offset, files.in_flight()), (8, 0));
        // A restart with the checkpoint reads nothing twice.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"three\n")
            .unwrap();
        let mut restarted = Files::new(
            vec![pattern],
            entries,
            StartAt::Beginning,
            CUTTING,
            resends(),
        );
        restarted.scan();
        assert_eq!(
            texts(&restarted.read_round(4096, usize::MAX, &issuer).parcels),
            ["three"]
        );
    }

    #[test]
    fn start_at_end_skips_what_the_first_scan_finds_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.log"), b"old\nunfin").unwrap();
        let (issuer, _replies) = issuer();
        let pattern = format!("{}/*.log", dir.path().display());
        let mut files = Files::new(vec![pattern], Vec::new(), StartAt::End, CUTTING, resends());
        files.scan();
        std::fs::write(dir.path().join("new.log"), b"new\n").unwrap();
        let old = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("old.log"));
        old.unwrap().write_all(b"ished\n").unwrap();
        files.scan();
        let mut read = texts(&files.read_round(4096, usize::MAX, &issuer).parcels);
        read.sort();
        assert_eq!(
            read,
            ["new", "unfinished"],
            "an unfinished last line is read whole"
        );
    }

    #[test]
    fn a_reused_inode_with_other_content_is_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"first content, long enough\n").unwrap();
        let metadata = std::fs::metadata(&path).unwrap();
        let stored = vec![Entry {
            key: FileKey::of(&metadata),
            fingerprint: super::super::identity::Fingerprint::of(b"other content at the start"),
            path: path.clone(),
            offset: 20,
        }];
        let (issuer, _replies) = issuer();
        let pattern = format!("{}/*.log", dir.path().display());
        let mut files = Files::new(
            vec![pattern],
            stored,
            StartAt::Beginning,
            CUTTING,
            resends(),
        );
        files.scan();
        assert_eq!(
            texts(&files.read_round(4096, usize::MAX, &issuer).parcels),
            ["first content, long enough"]
        );
    }

    #[test]
    fn a_batch_failed_in_part_sends_only_its_failed_lines_again_after_a_pause() {
        let dir = tempfile::tempdir().unwrap();
        let lines: String = (0..10).map(|n| format!("{n}\n")).collect();
        std::fs::write(dir.path().join("app.log"), lines).unwrap();
        let (issuer, mut replies) = issuer();
        let pattern = format!("{}/*.log", dir.path().display());
        let mut files = Files::new(
            vec![pattern],
            Vec::new(),
            StartAt::Beginning,
            CUTTING,
            resends(),
        );
        files.scan();
        let mut round = files.read_round(4096, usize::MAX, &issuer);
        let Parcel::Lines(mut lines) = round.parcels.remove(0) else {
            panic!("lines read stay lines")
        };
        // A selector sends 3 and 7 one way, the rest another: the first
        // way fails.
        let ack = lines.take_ack().unwrap();
        let parts = ack.parts(vec![
            [3, 7].into_iter().collect(),
            [0, 1, 2, 4, 5, 6, 8, 9].into_iter().collect(),
        ]);
        parts[1].acknowledge();
        parts[0].fail();
        let (id, outcome) = replies.try_recv().unwrap();
        let now = Instant::now();
        files.failed(id, outcome, now);
        assert_eq!(files.next_due(), Some(now + PAUSE));
        let again = files.take_due(now + PAUSE, &issuer);
        assert_eq!(texts(&again), ["3", "7"], "only what failed");
        assert_eq!(
            files.entries()[0].offset,
            0,
            "the batch is not delivered yet"
        );
        // It fails again, all of it (dropped downstream): the pause doubles.
        drop(again);
        let (id, outcome) = replies.try_recv().unwrap();
        files.failed(id, outcome, now + PAUSE);
        assert!(files.take_due(now + 2 * PAUSE, &issuer).is_empty());
        let last = files.take_due(now + 3 * PAUSE, &issuer);
        assert_eq!(texts(&last), ["3", "7"]);
        last[0].acknowledge();
        let (id, outcome) = replies.try_recv().unwrap();
        assert_eq!(outcome, Outcome::Acknowledged);
        files.acknowledge(id, now + 3 * PAUSE);
        assert_eq!(
            files.entries()[0].offset,
            20,
            "the checkpoint moves past all ten"
        );
        assert!(matches!(
            files.take_resend_change(),
            Some(wishbone_runtime::resend::ResendChange::Ended { resent: 4, .. })
        ));
    }
}
