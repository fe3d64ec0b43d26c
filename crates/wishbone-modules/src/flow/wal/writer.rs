//! The thread that writes the log: file writes and fsyncs block, so they
//! stay off the thread that runs the modules.
//!
//! It takes everything queued since its last turn, writes it as one write,
//! syncs as `sync` says, and reports back. With `sync: batch` one fsync
//! covers everything that arrived while the previous one ran (group
//! commit). When writing fails (a full disk, a file size limit, an I/O
//! error) it logs once, keeps what it was given, and tries again with a
//! growing pause until writing works; meanwhile nothing more is reported
//! kept, and the module stops reading its inbox.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc as tokio_mpsc;
use wishbone_runtime::Parcel;

use super::SyncMode;
use super::journal::{Journal, Location};

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
    /// These settlements are written.
    Settled(Vec<u64>),
    /// The segment files now hold this many bytes.
    DiskBytes(u64),
    /// Writing fails (true) or works again (false).
    Failing(bool),
}

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
                    failing: None,
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

    /// Lets the thread write what it was given, sync, and end.
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
    /// When writing started failing, while it does.
    failing: Option<Instant>,
}

/// The longest pause between attempts while writing fails.
const MOST_PAUSE: Duration = Duration::from_secs(1);

impl Turns {
    fn run(mut self, incoming: mpsc::Receiver<Command>) {
        loop {
            let first = match self.sync {
                SyncMode::Interval if self.dirty => {
                    let due = self.interval.saturating_sub(self.last_sync.elapsed());
                    match incoming.recv_timeout(due) {
                        Ok(command) => Some(command),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                _ => match incoming.recv() {
                    Ok(command) => Some(command),
                    Err(_) => break,
                },
            };
            let mut keep = Vec::new();
            let mut settle = Vec::new();
            let mut load = Vec::new();
            for command in first.into_iter().chain(incoming.try_iter()) {
                match command {
                    Command::Keep(blocks) => keep.extend(blocks),
                    Command::Settle(ids) => settle.extend(ids),
                    Command::Load(blocks) => load.extend(blocks),
                }
            }
            self.turn(keep, settle);
            if !load.is_empty() {
                self.load(&load);
            }
        }
        // The module is gone: what it handed over is written; make it last.
        if self.dirty && self.sync != SyncMode::None {
            self.until_done("sync", |journal| journal.sync());
        }
    }

    /// Writes one turn's commands and reports them.
    fn turn(&mut self, keep: Vec<(u64, Parcel)>, settle: Vec<u64>) {
        if !settle.is_empty() {
            self.until_done("write", |journal| journal.settle(&settle));
            self.dirty = true;
            let _ = self.outgoing.send(Report::Settled(settle));
        }
        let keeping = !keep.is_empty();
        let mut kept = if keep.is_empty() {
            Vec::new()
        } else {
            self.dirty = true;
            self.until_done("write", |journal| journal.append(&keep))
        };
        // After a failed fsync the kernel may have dropped the pages it
        // could not write, and a second fsync would succeed without them:
        // the turn's blocks are written again, to a new segment, before
        // syncing again. (With `batch`, a turn's blocks are all that is
        // not yet synced; the copy left behind holds the same events.)
        let due = match self.sync {
            // Settlements alone wait for the next fsync: losing one sends
            // an event twice, never loses it.
            SyncMode::Batch => keeping,
            SyncMode::Interval => self.dirty && self.last_sync.elapsed() >= self.interval,
            SyncMode::None => false,
        };
        if due {
            let mut failed = false;
            let again = self.until_done("sync", |journal| {
                let mut again = None;
                if failed {
                    journal.start_segment()?;
                    again = Some(journal.append(&keep)?);
                    failed = false;
                }
                journal.sync().inspect_err(|_| failed = true)?;
                Ok(again)
            });
            // Written again: the blocks lie in the new segment now.
            if let Some(again) = again {
                kept = again;
            }
            self.dirty = false;
            self.last_sync = Instant::now();
        }
        if !kept.is_empty() {
            let _ = self.outgoing.send(Report::Kept(kept));
        }
        self.until_done("delete settled segments of", |journal| journal.reclaim());
        let _ = self
            .outgoing
            .send(Report::DiskBytes(self.journal.disk_bytes()));
    }

    /// Reads blocks back and reports them. A block whose record is no
    /// longer whole is logged and reported lost; other errors (the disk
    /// failing) are tried again, as writes are.
    fn load(&mut self, blocks: &[(u64, Location)]) {
        let results = self.until_done("read", |journal| {
            let results = journal.read(blocks);
            match results.iter().find_map(|(_, read)| {
                read.as_ref()
                    .err()
                    .filter(|error| error.kind() != std::io::ErrorKind::InvalidData)
            }) {
                Some(error) => Err(std::io::Error::new(error.kind(), error.to_string())),
                None => Ok(results),
            }
        });
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

    /// Runs `work` until it succeeds, pausing longer after each failure;
    /// logs when the trouble starts and when it ends.
    fn until_done<T>(
        &mut self,
        what: &str,
        mut work: impl FnMut(&mut Journal) -> std::io::Result<T>,
    ) -> T {
        let mut pause = Duration::from_millis(50);
        loop {
            match work(&mut self.journal) {
                Ok(done) => {
                    if let Some(since) = self.failing.take() {
                        let _ = self.outgoing.send(Report::Failing(false));
                        tracing::info!(
                            module = %self.module,
                            after_ms = since.elapsed().as_millis() as u64,
                            "writing the wal again"
                        );
                    }
                    return done;
                }
                Err(error) => {
                    if self.failing.is_none() {
                        self.failing = Some(Instant::now());
                        let _ = self.outgoing.send(Report::Failing(true));
                        tracing::warn!(
                            module = %self.module,
                            %error,
                            "cannot {what} the wal; the inbox waits and it tries again"
                        );
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MOST_PAUSE);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use wishbone_runtime::{Event, Lines};

    fn block(text: &str) -> Parcel {
        Parcel::Lines(Lines::encode(
            &[Event::new(text.to_string())],
            &Bytes::from_static(b"\n"),
        ))
    }

    #[test]
    fn after_a_failed_fsync_the_turn_is_written_again_to_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        journal.failing_syncs = 1;
        let mut writer = Writer::start(
            journal,
            SyncMode::Batch,
            Duration::from_secs(1),
            "wal".into(),
        )
        .unwrap();
        let blocks: Vec<(u64, Parcel)> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(id, text)| (id as u64, block(text)))
            .collect();
        assert!(writer.send(Command::Keep(blocks.clone())));
        let mut seen = Vec::new();
        let kept = loop {
            match writer.reports.blocking_recv().expect("a report") {
                Report::Kept(kept) => break kept,
                Report::Failing(failing) => seen.push(failing),
                _ => {}
            }
        };
        assert_eq!(seen, [true, false], "the failure is reported, then its end");
        assert!(
            kept.iter().all(|(_, _, location)| location.sequence == 2),
            "kept where they were written again: {kept:?}"
        );
        let kept: Vec<(u64, Parcel)> = kept
            .into_iter()
            .map(|(id, parcel, _)| (id, parcel))
            .collect();
        assert_eq!(kept, blocks, "kept only once an fsync worked");
        writer.finish();

        // The first segment's copy went through the failed fsync: the
        // second must hold the whole turn by itself.
        std::fs::remove_file(dir.path().join(super::super::journal::segment_name(1))).unwrap();
        let (journal, recovered) = Journal::open(dir.path(), 1 << 20).unwrap();
        let places: Vec<(u64, Location)> = recovered
            .blocks
            .iter()
            .map(|stored| (stored.id, stored.location))
            .collect();
        assert_eq!(journal.read_all(&places), blocks);
    }
}
