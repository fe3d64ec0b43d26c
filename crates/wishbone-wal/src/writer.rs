//! The thread that writes the log: file writes and fsyncs block, so they
//! stay off the thread that runs the modules.
//!
//! It takes everything queued since its last turn, writes it as one write,
//! syncs as `sync` says, and reports back. With `sync: batch` one fsync
//! covers everything that arrived while the previous one ran (group
//! commit). When writing fails (a full disk, a file size limit, an I/O
//! error) it logs once and keeps what it could not write, and tries it
//! again with a growing pause until writing works; meanwhile nothing more
//! is reported kept, and the module stops reading its inbox. What does not
//! need room goes on: settlements free their blocks at once (a segment
//! whose blocks are all settled is deleted, and a log with nothing
//! unsettled is emptied, so a full disk gets its room back as outputs
//! deliver), and blocks are read back. Once the module is gone it tries
//! what is left for [`FINAL_TRIES`] at most, then ends and reports what it
//! could not write, so a stop never waits on a disk.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc as tokio_mpsc;
use wishbone_runtime::Parcel;

use super::block::Location;
use super::journal::Journal;
use crate::config::SyncMode;

/// What the module asks of the log.
#[derive(Debug)]
pub enum Command {
    /// Write these blocks (carrying no tokens).
    Keep(Vec<(u64, Parcel)>),
    /// Record that these blocks need not be sent again.
    Settle(Vec<u64>),
    /// Read these blocks back (kept earlier, let go of in memory).
    Load(Vec<(u64, Location)>),
}

/// What the log tells the module.
#[derive(Debug)]
pub enum Report {
    /// These blocks are kept, as `sync` means it; the events now point
    /// into the log's record buffer, which lies at the location given.
    Kept(Vec<(u64, Parcel, Location)>),
    /// These blocks were read back.
    Loaded(Vec<(u64, Parcel)>),
    /// These blocks could not be read back (logged): they are lost.
    Unreadable(Vec<u64>),
    /// These settlements are written, or the segments that held the
    /// blocks are deleted.
    Settled(Vec<u64>),
    /// The segment files now hold this many bytes.
    DiskBytes(u64),
    /// Writing fails (true) or works again (false).
    Failing(bool),
    /// The module was gone and writing still failed: this many events
    /// handed over were never kept (logged).
    Unwritten(usize),
}

/// How long the thread goes on trying what failed once the module is gone.
pub const FINAL_TRIES: Duration = Duration::from_secs(1);

/// The module's end of the writer thread.
pub struct Writer {
    commands: Option<mpsc::Sender<Command>>,
    pub reports: tokio_mpsc::UnboundedReceiver<Report>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread that owns `journal`.
    pub fn start(
        journal: Journal,
        sync: SyncMode,
        interval: Duration,
        module: String,
    ) -> std::io::Result<Writer> {
        let (commands, incoming) = mpsc::channel();
        let (outgoing, reports) = tokio_mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name(format!("wal-{module}"))
            .spawn(move || {
                Turns {
                    journal,
                    sync,
                    interval,
                    module,
                    outgoing,
                    last_sync: Instant::now(),
                    dirty: false,
                    pending: Pending::default(),
                    failing: None,
                    pause: FIRST_PAUSE,
                }
                .run(incoming)
            })?;
        Ok(Writer {
            commands: Some(commands),
            reports,
            thread: Some(thread),
        })
    }

    /// Hands the log a command; false when the thread has ended.
    pub fn send(&self, command: Command) -> bool {
        self.commands
            .as_ref()
            .is_some_and(|commands| commands.send(command).is_ok())
    }

    /// Lets the thread write what it was given, sync, and end; while
    /// writing fails that takes `FINAL_TRIES` (1 s) at most.
    pub fn finish(&mut self) {
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What the thread was handed and has not yet done.
#[derive(Default)]
struct Pending {
    /// Blocks to write.
    keep: Vec<(u64, Parcel)>,
    /// With `sync: batch`: blocks written and not yet fsynced, as handed
    /// over (written again after a failed fsync), and as written.
    unsynced: Vec<(u64, Parcel)>,
    written: Vec<(u64, Parcel, Location)>,
    /// An fsync failed: the unsynced blocks go to a new segment first.
    sync_failed: bool,
    /// Settlements whose record is not written.
    settle: Vec<u64>,
    /// An fsync is owed whatever `sync` says (the module is gone).
    sync_due: bool,
    /// Blocks to read back.
    load: Vec<(u64, Location)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.keep.is_empty()
            && self.unsynced.is_empty()
            && self.settle.is_empty()
            && self.load.is_empty()
            && !self.sync_due
    }
}

/// The thread's state.
struct Turns {
    journal: Journal,
    sync: SyncMode,
    /// Between fsyncs, with `sync: interval`.
    interval: Duration,
    module: String,
    outgoing: tokio_mpsc::UnboundedSender<Report>,
    last_sync: Instant,
    /// Written since the last sync.
    dirty: bool,
    pending: Pending,
    /// When writing started failing, while it does.
    failing: Option<Instant>,
    /// Before the next try while it fails.
    pause: Duration,
}

/// Payload bytes written at a time, at least one block.
const CHUNK_BYTES: usize = 4 << 20;

/// The first and the longest pause between tries while writing fails.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MOST_PAUSE: Duration = Duration::from_secs(1);

impl Turns {
    fn run(mut self, incoming: mpsc::Receiver<Command>) {
        loop {
            let wait = match self.sync {
                _ if self.failing.is_some() => Some(self.pause),
                SyncMode::Interval if self.dirty => {
                    Some(self.interval.saturating_sub(self.last_sync.elapsed()))
                }
                _ => None,
            };
            let first = match wait {
                Some(wait) => match incoming.recv_timeout(wait) {
                    Ok(command) => Some(command),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                },
                None => match incoming.recv() {
                    Ok(command) => Some(command),
                    Err(_) => break,
                },
            };
            for command in first.into_iter().chain(incoming.try_iter()) {
                self.take(command);
            }
            self.turn();
        }
        self.last_turns();
    }

    fn take(&mut self, command: Command) {
        match command {
            Command::Keep(blocks) => self.pending.keep.extend(blocks),
            Command::Settle(ids) => self.pending.settle.extend(ids),
            Command::Load(blocks) => self.pending.load.extend(blocks),
        }
    }

    /// The module is gone: what it handed over is written and made to
    /// last, for [`FINAL_TRIES`] at most while writing fails.
    fn last_turns(&mut self) {
        let since = Instant::now();
        // Nobody reads blocks back any more.
        self.pending.load.clear();
        loop {
            if self.sync != SyncMode::None && self.dirty {
                self.pending.sync_due = true;
            }
            self.turn();
            if self.failing.is_none() && self.pending.is_empty() {
                return;
            }
            if since.elapsed() >= FINAL_TRIES {
                break;
            }
            std::thread::sleep(self.pause.min(FINAL_TRIES.saturating_sub(since.elapsed())));
        }
        let unwritten: usize = self
            .pending
            .keep
            .iter()
            .chain(&self.pending.unsynced)
            .map(|(_, parcel)| parcel.len())
            .sum();
        tracing::error!(
            module = %self.module,
            events = unwritten,
            settlements = self.pending.settle.len(),
            "stopping while the wal cannot be written: these events were never kept, and these deliveries are sent again at the next start"
        );
        let _ = self.outgoing.send(Report::Unwritten(unwritten));
    }

    /// Tries everything pending once, in the order that frees room first:
    /// settlements (deleting settled segments), then the blocks, the
    /// fsync, the reads.
    fn turn(&mut self) {
        let mut failure = None;
        self.settle(&mut failure);
        self.keep(&mut failure);
        self.sync_when_due(&mut failure);
        self.load(&mut failure);
        if let Err(error) = self.journal.reclaim(failure.is_some()) {
            failure.get_or_insert(("delete settled segments of", error));
        }
        let _ = self
            .outgoing
            .send(Report::DiskBytes(self.journal.disk_bytes()));
        self.note(failure);
    }

    /// Frees settled blocks, makes room, and writes their record; what no
    /// segment holds any more is settled without one.
    fn settle(&mut self, failure: &mut Option<(&'static str, std::io::Error)>) {
        if self.pending.settle.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.pending.settle);
        let error = match self.journal.settle(&ids) {
            Ok(()) => {
                self.dirty = true;
                let _ = self.outgoing.send(Report::Settled(ids));
                return;
            }
            Err(error) => error,
        };
        // Settled in memory all the same: their segments may go (a log with
        // nothing unsettled is emptied), which settles them for good.
        if let Err(error) = self.journal.reclaim(true) {
            failure.get_or_insert(("delete settled segments of", error));
        }
        let (gone, held): (Vec<u64>, Vec<u64>) =
            ids.into_iter().partition(|id| !self.journal.holds(*id));
        if !gone.is_empty() {
            let _ = self.outgoing.send(Report::Settled(gone));
        }
        if !held.is_empty() {
            failure.get_or_insert(("write", error));
        }
        self.pending.settle = held;
    }

    /// Writes the blocks handed over, [`CHUNK_BYTES`] at a time so that on a
    /// disk with less room than that what fits is written (and can be
    /// delivered, which makes room for the rest); with `batch` they are
    /// reported once an fsync covers them, otherwise at once.
    fn keep(&mut self, failure: &mut Option<(&'static str, std::io::Error)>) {
        if self.pending.keep.is_empty() || failure.is_some() {
            return;
        }
        // A full log gives its room back before the blocks are tried again.
        if self.failing.is_some()
            && let Err(error) = self.journal.reclaim(true)
        {
            failure.get_or_insert(("delete settled segments of", error));
            return;
        }
        let mut done = 0;
        while done < self.pending.keep.len() {
            let mut end = done;
            let mut bytes = 0;
            while end < self.pending.keep.len() && (end == done || bytes < CHUNK_BYTES) {
                bytes += super::block::payload_bytes(&self.pending.keep[end].1);
                end += 1;
            }
            match self.journal.append(&self.pending.keep[done..end]) {
                Ok(kept) => {
                    self.dirty = true;
                    if self.sync != SyncMode::Batch {
                        let _ = self.outgoing.send(Report::Kept(kept));
                    } else {
                        self.pending.written.extend(kept);
                    }
                    done = end;
                }
                Err(error) => {
                    failure.get_or_insert(("write", error));
                    break;
                }
            }
        }
        let written = self.pending.keep.drain(..done);
        if self.sync == SyncMode::Batch {
            self.pending.unsynced.extend(written);
        }
    }

    /// Fsyncs when `sync` says. After a failed fsync the kernel may have
    /// dropped the pages it could not write, and a second fsync would
    /// succeed without them: the unsynced blocks are written again, to a
    /// new segment, before syncing again. (The copy left behind holds the
    /// same events.)
    fn sync_when_due(&mut self, failure: &mut Option<(&'static str, std::io::Error)>) {
        let due = match self.sync {
            // Settlements alone wait for the next fsync: losing one sends
            // an event twice, never loses it.
            SyncMode::Batch => !self.pending.unsynced.is_empty(),
            SyncMode::Interval => self.dirty && self.last_sync.elapsed() >= self.interval,
            SyncMode::None => false,
        } || std::mem::take(&mut self.pending.sync_due);
        // Even when writing more failed: what was written is due.
        if !due {
            return;
        }
        let pending = &mut self.pending;
        let synced = (|| {
            if pending.sync_failed {
                self.journal.start_segment()?;
                pending.written = self.journal.append(&pending.unsynced)?;
                pending.sync_failed = false;
            }
            self.journal
                .sync()
                .inspect_err(|_| pending.sync_failed = true)
        })();
        match synced {
            Ok(()) => {
                self.dirty = false;
                self.last_sync = Instant::now();
                self.pending.unsynced.clear();
                let kept = std::mem::take(&mut self.pending.written);
                if !kept.is_empty() {
                    let _ = self.outgoing.send(Report::Kept(kept));
                }
            }
            Err(error) => {
                failure.get_or_insert(("sync", error));
            }
        }
    }

    /// Reads blocks back and reports them. A block whose record is no
    /// longer whole is logged and reported lost; on other errors (the disk
    /// failing) they are tried again, as writes are.
    fn load(&mut self, failure: &mut Option<(&'static str, std::io::Error)>) {
        if self.pending.load.is_empty() {
            return;
        }
        let results = self.journal.read(&self.pending.load);
        if let Some(error) = results.iter().find_map(|(_, read)| {
            read.as_ref()
                .err()
                .filter(|error| error.kind() != std::io::ErrorKind::InvalidData)
        }) {
            let error = std::io::Error::new(error.kind(), error.to_string());
            failure.get_or_insert(("read", error));
            return;
        }
        self.pending.load.clear();
        let mut loaded = Vec::with_capacity(results.len());
        let mut unreadable = Vec::new();
        for (id, read) in results {
            match read {
                Ok(parcel) => loaded.push((id, parcel)),
                Err(error) => {
                    tracing::error!(module = %self.module, block = id, %error, "cannot read a block back from the wal; its events are lost");
                    unreadable.push(id);
                }
            }
        }
        let _ = self.outgoing.send(Report::Loaded(loaded));
        if !unreadable.is_empty() {
            let _ = self.outgoing.send(Report::Unreadable(unreadable));
        }
    }

    /// Logs when trouble starts (once) and when it ends, and sets the
    /// pause before the next try.
    fn note(&mut self, failure: Option<(&'static str, std::io::Error)>) {
        match failure {
            None => {
                self.pause = FIRST_PAUSE;
                if let Some(since) = self.failing.take() {
                    let _ = self.outgoing.send(Report::Failing(false));
                    tracing::info!(
                        module = %self.module,
                        after_ms = since.elapsed().as_millis() as u64,
                        "writing the wal again"
                    );
                }
            }
            Some((what, error)) => {
                if self.failing.is_none() {
                    self.failing = Some(Instant::now());
                    let _ = self.outgoing.send(Report::Failing(true));
                    tracing::warn!(
                        module = %self.module,
                        %error,
                        "cannot {what} the wal; the inbox waits and it tries again"
                    );
                } else {
                    self.pause = (self.pause * 2).min(MOST_PAUSE);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
