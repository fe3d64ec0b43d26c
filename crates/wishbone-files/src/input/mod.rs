//! `wishbone.input.file`: tails the files matching glob patterns, one event
//! per line, and checkpoints per file only what was delivered downstream.
//! The text `wishbone show --docs` prints is [`DOCS`].
//!
//! Each batch of lines read goes out with a token
//! ([`wishbone_runtime::ack`]); the file's checkpoint moves past a batch
//! once it and every batch before it were acknowledged ([`Committed`]),
//! and a batch that failed is sent again. The files are found again by
//! polling and by watching their directories; [`Files`] holds the logic of
//! scanning, reading and closing.

mod checkpoint;
mod files;
mod identity;
mod tail;
mod watch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_runtime::ack::{self, Outcome};
use wishbone_runtime::resend::{self, ResendArguments, Resends};
use wishbone_runtime::{
    ArgumentError, Arguments, Counted, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
    module_metric,
};

pub use checkpoint::{Committed, Entry, Store};
pub use files::Files;
pub use identity::{FileKey, Fingerprint};

use tail::LineRules;
use watch::Wakes;
use wishbone_codecs::lines::Overlong;
use wishbone_codecs::multiline;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.input.file: tails files, one event per line, checkpointing what was delivered.

Queues
  outbox     every line read, without its newline

Arguments (default)
  paths             glob patterns of the files to read (required), such as
                    /var/log/app.log* (the file and its rotated copies)
  checkpoints       a directory for the checkpoint file (required); checked
                    writable when the file is loaded
  start_at          beginning | end (beginning): where to start a file found
                    at the first scan that has no checkpoint (end: at its
                    unfinished last line, if any, so that line is read
                    whole); files that appear later are read from their
                    beginning
  max_line_length   longest line in bytes (1048576)
  overlong_lines    truncate | drop (truncate), as the tcp input
  with_origin       false | true (false): each line becomes a JSON object
                    {"message": LINE, "file": PATH, "offset": N}, PATH
                    where the file is now, N the byte offset where the line
                    starts in it (invalid UTF-8 in a line is replaced)
  poll_interval_ms  how often to look for new files and growth (250);
                    besides, the directories the patterns start from are
                    watched (inotify), so writes and new files are seen at
                    once
  resend_initial    seconds before lines that failed downstream are sent
                    again (0.1); the pause doubles each time the same lines
                    fail
  resend_max        longest such pause in seconds (1)
  multiline         (none) join lines into one event: java | python | go,
                    or {start_pattern, condition_pattern, mode,
                    timeout_ms, max_bytes}; see Multi-line below

Multi-line: a line matching start_pattern opens a group; each line after
it is tested against condition_pattern, and mode says what a match means:
continue_through (lines that match join; the first that does not ends the
group and is looked at anew), continue_past (lines that match join, and
the first that does not joins and ends it), halt_before (lines that do not
match join; the first that does is looked at anew), halt_with (lines that
do not match join; the first that does joins and ends it). A line that
opens no group is an event alone. The lines of a group are joined with
\n. A group open for timeout_ms (1000) is sent as it is; one longer than
max_bytes (1048576) keeps its first max_bytes, counted in multiline_cut.
java: a line not starting with a space, then the exception, `at` frames,
`... N more`, `Caused by:` and `Suppressed:`; python: `Traceback (most
recent call last):` to the exception's line; go: `panic:` or `fatal
error:` to `exit status`. The checkpoint never passes the first line of
a group not yet delivered: after a SIGKILL in the middle of a stack trace,
the whole trace comes again.

Identity: a file is its device and inode plus a fingerprint of its first
1024 bytes: a renamed file is the same file, a reused inode with other
content a new one.

Rotation: a file renamed (logrotate's `create`) is read to its end while
it matches a pattern, the new one from its beginning; a file that shrinks
(`copytruncate`) is read again from 0; a file gone is closed once read to
its end, and its unfinished last line, if any, is sent as it is.

Checkpoints: per file, the offset after the last line whose event was
acknowledged downstream (an output's peer, a write-ahead buffer, a filter
that routed it nowhere), replaced atomically at most once a second and at
stop. After a SIGKILL the restart resumes there: at least once, the
duplicates at most what was in flight. A batch split downstream (a
selector sorting it among outputs, a round robin dealing it) is settled
part by part: only the lines that failed are sent again, after a pause
(resend_initial, doubling up to resend_max), never lines another output
already delivered. Resending is logged once when it starts and once when
the failed lines are delivered. The checkpoint moves past a batch only
once all of it is delivered: after a SIGKILL a batch of which a part was
delivered is read again whole.

Metrics (module.<name>.<metric>)
  events         lines put on outbox
  truncated      lines cut to max_line_length
  dropped        lines dropped for being longer (overlong_lines: drop)
  multiline_cut  multi-line groups cut at max_bytes
  resent         lines sent again after failing downstream
  files_open     files open (a gauge)
  bytes_behind   bytes written to the open files and not yet read (a gauge)

Example
  modules:
    app:
      module: wishbone.input.file
      arguments:
        paths: ["/var/log/app.log*"]
        checkpoints: /var/lib/wishbone
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.input.file",
    aliases: &[],
    description: "tails files, one event per line, checkpointing what was delivered",
    docs: DOCS,
    queues: QueueSpec::SOURCE,
    build,
};

/// The arguments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Glob patterns of the files to read.
    pub paths: Vec<String>,
    /// Where the checkpoint file lives.
    pub checkpoints: PathBuf,
    /// Where a file without a checkpoint, found at the first scan, starts.
    #[serde(default)]
    pub start_at: StartAt,
    /// Longest line in bytes.
    #[serde(default = "default_max_line_length")]
    pub max_line_length: usize,
    /// What to do with a longer line.
    #[serde(default)]
    pub overlong_lines: Overlong,
    /// Each line as a JSON object with the file's path and the line's
    /// offset.
    #[serde(default)]
    pub with_origin: bool,
    /// How often to look for new files and growth.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_ms: u64,
    /// First pause before lines that failed downstream are sent again,
    /// seconds.
    #[serde(default = "resend::default_resend_initial")]
    pub resend_initial: f64,
    /// Longest such pause, seconds.
    #[serde(default = "resend::default_resend_max")]
    pub resend_max: f64,
    /// How lines are joined into multi-line events.
    #[serde(default)]
    pub multiline: Option<multiline::Config>,
}

impl Config {
    fn resend_arguments(&self) -> ResendArguments {
        ResendArguments {
            resend_initial: self.resend_initial,
            resend_max: self.resend_max,
        }
    }

    /// The pauses before failed lines are sent again (checked at build).
    fn resend_pauses(&self) -> (Duration, Duration) {
        self.resend_arguments().pauses_or_default()
    }
}

/// The `start_at` argument.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// From the first byte.
    #[default]
    Beginning,
    /// From the end the file has when found.
    End,
}

fn default_max_line_length() -> usize {
    1024 * 1024
}

fn default_poll_interval() -> u64 {
    250
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    if config.paths.is_empty() {
        return Err(ArgumentError::field("paths", "names no pattern"));
    }
    for pattern in &config.paths {
        glob::Pattern::new(pattern)
            .map_err(|error| ArgumentError::value("paths", format!("`{pattern}`: {error}")))?;
    }
    if config.max_line_length == 0 {
        return Err(ArgumentError::field(
            "max_line_length",
            "must be at least 1",
        ));
    }
    if config.poll_interval_ms == 0 {
        return Err(ArgumentError::field(
            "poll_interval_ms",
            "must be at least 1",
        ));
    }
    config
        .resend_arguments()
        .pauses()
        .map_err(ArgumentError::new)?;
    checkpoint::usable_directory(&config.checkpoints)
        .map_err(|error| ArgumentError::field("checkpoints", error))?;
    let multiline = multiline::Config::rules_of(config.multiline.as_ref())
        .map_err(|error| ArgumentError::field("multiline", error))?;
    Ok(Box::new(FileInput { config, multiline }))
}

/// The module.
pub struct FileInput {
    config: Config,
    multiline: Option<multiline::Rules>,
}

impl Module for FileInput {
    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        Box::pin(self.serve(context))
    }
}

/// Bytes read from one file at a time.
const READ_SIZE: usize = 256 * 1024;
/// Bytes of batches in flight, at most, before reading waits.
const MAX_IN_FLIGHT_BYTES: usize = 16 * 1024 * 1024;
/// How often checkpoints are written, at most (the first progress after
/// a start is written at once).
const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// The module's counters and gauges.
struct Metrics {
    events: Counted,
    truncated: Counted,
    dropped: Counted,
    /// Multi-line groups cut at `max_bytes`.
    multiline_cut: Counted,
    resent: Counted,
    files_open: metrics::Gauge,
    bytes_behind: metrics::Gauge,
}

impl Metrics {
    /// Lines cut to `max_line_length` and lines dropped, since last asked.
    fn overlong(&self, (truncated, dropped, cut): (u64, u64, u64)) {
        self.truncated.add(truncated);
        self.dropped.add(dropped);
        if cut > 0 && self.multiline_cut.total() == 0 {
            tracing::warn!(
                "a multi-line group was longer than max_bytes: cut, and counted in multiline_cut"
            );
        }
        self.multiline_cut.add(cut);
    }

    fn log_totals(&self, module: &str, undelivered_batches: usize) {
        tracing::info!(
            module = %module,
            events = self.events.total(),
            resent = self.resent.total(),
            truncated = self.truncated.total(),
            dropped = self.dropped.total(),
            multiline_cut = self.multiline_cut.total(),
            undelivered_batches,
            "input totals"
        );
    }

    fn new(module: &str) -> Self {
        Self {
            events: Counted::new(module, "events"),
            truncated: Counted::new(module, "truncated"),
            dropped: Counted::new(module, "dropped"),
            multiline_cut: Counted::new(module, "multiline_cut"),
            resent: Counted::new(module, "resent"),
            files_open: metrics::gauge!(module_metric(module, "files_open")),
            bytes_behind: metrics::gauge!(module_metric(module, "bytes_behind")),
        }
    }
}

impl FileInput {
    async fn serve(self, mut context: ModuleContext) -> Result<(), ModuleError> {
        let name = context.name().to_string();
        let (store, mut files) = self.checkpointed(&name)?;
        let mut outbox = Some(context.outgoing("outbox"));
        let (stop, abort) = (context.stopping(), context.aborting());
        // The outbox must close when reading ends, while acknowledgements
        // are still awaited: the context keeps no copy of it.
        drop(context);
        let (issuer, mut replies) = ack::issuer();
        let metrics = Metrics::new(&name);
        let mut poll = tokio::time::interval(Duration::from_millis(self.config.poll_interval_ms));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (wakes, problems) = Wakes::watch(&self.config.paths);
        for problem in problems {
            tracing::warn!(module = %name, %problem, "file input");
        }
        let mut saving = Saving::new(files.entries());
        let mut more = false;
        let (mut scan_problems, mut read_problems) = (Problems::default(), Problems::default());
        loop {
            if outbox.is_none() && files.in_flight() == 0 {
                break;
            }
            tokio::select! {
                biased;
                _ = abort.cancelled() => break,
                _ = stop.cancelled(), if outbox.is_some() => {
                    files.forget_failed();
                    tracing::debug!(module = %name, in_flight = files.in_flight(), "stopping: waiting for what is in flight");
                    outbox = None;
                }
                Some((id, outcome)) = replies.recv() => {
                    settle(&mut files, &mut saving, id, outcome, outbox.is_none());
                    report_resends(&mut files, &name);
                }
                () = resend::until(files.next_due()), if outbox.is_some() => {
                    let Some(sender) = &outbox else { continue };
                    let due = files.take_due(Instant::now(), &issuer);
                    if !send_all(sender, due, &metrics.resent, &abort).await { break; }
                }
                _ = poll.tick() => {
                    scan(&mut files, &metrics, &name, &mut scan_problems);
                    saving.scanned(&files, Instant::now());
                    more = true;
                }
                () = wakes.changed.notified() => {
                    scan(&mut files, &metrics, &name, &mut scan_problems);
                    saving.scanned(&files, Instant::now());
                    more = true;
                }
                () = wakes.grown.notified() => more = true,
                () = resend::until(saving.due()) => {
                    saving.save_if_changed(&files, &store, &name, Instant::now());
                }
                () = std::future::ready(()), if more && outbox.is_some() && files.in_flight_bytes() < MAX_IN_FLIGHT_BYTES => {
                    let Some(sender) = &outbox else { continue };
                    let round = files.read_round(READ_SIZE, MAX_IN_FLIGHT_BYTES, &issuer);
                    more = round.more;
                    read_problems.report(round.problems, &name);
                    if !send_all(sender, round.parcels, &metrics.events, &abort).await { break; }
                    metrics.overlong(files.take_overlong());
                    tokio::task::yield_now().await;
                }
            }
        }
        if let Err(error) = store.save(&files.entries()) {
            tracing::error!(module = %name, %error, "cannot write the checkpoints at stop");
        }
        metrics.log_totals(&name, files.in_flight());
        Ok(())
    }

    /// The checkpoint store, and the files of the patterns from what it
    /// holds.
    fn checkpointed(&self, name: &str) -> Result<(Store, Files), ModuleError> {
        let io_error = |message: String| ModuleError::Other(format!("checkpoints: {message}"));
        let store = Store::open(&self.config.checkpoints, name).map_err(&io_error)?;
        let stored = store.load().map_err(&io_error)?;
        Ok((store, self.files(stored)))
    }

    /// The files of the patterns, from the checkpoints `stored`.
    fn files(&self, stored: Vec<Entry>) -> Files {
        let cutting = LineRules {
            max_line_length: self.config.max_line_length,
            overlong: self.config.overlong_lines,
            with_origin: self.config.with_origin,
            multiline: self.multiline.clone(),
        };
        let (initial, most) = self.config.resend_pauses();
        Files::new(
            self.config.paths.clone(),
            stored,
            self.config.start_at,
            cutting,
            Resends::new(initial, most),
        )
    }
}

/// When checkpoints are written: progress (an acknowledgement) at once
/// when the last progress written is a second old, else a second after
/// it, so that a kill repeats at most about a second's worth of lines; a
/// file found or gone is written at once. A failure to write is logged
/// once until writing works again, and retried every second.
struct Saving {
    saved: Vec<Entry>,
    /// The last write that recorded progress (or failed to).
    progress_written: Option<Instant>,
    /// Progress not yet written.
    progress: bool,
    /// When the next write is due.
    due: Option<Instant>,
    failure_logged: bool,
}

impl Saving {
    /// Checkpoints as loaded at the start: `saved` is what the store holds.
    fn new(saved: Vec<Entry>) -> Self {
        Self {
            saved,
            progress_written: None,
            progress: false,
            due: None,
            failure_logged: false,
        }
    }

    /// Files were found or forgotten: a write is due now.
    fn changed(&mut self, now: Instant) {
        self.due = Some(self.due.map_or(now, |due| due.min(now)));
    }

    /// Files were looked for: a write is due now if files were found or
    /// forgotten (or renamed) since the last write.
    fn scanned(&mut self, files: &Files, now: Instant) {
        let same =
            |entry: &Entry, saved: &Entry| entry.key == saved.key && entry.path == saved.path;
        let entries = files.entries();
        let unchanged = entries.len() == self.saved.len()
            && entries
                .iter()
                .zip(&self.saved)
                .all(|(entry, saved)| same(entry, saved));
        if !unchanged {
            self.changed(now);
        }
    }

    /// Lines were delivered: a write is due a second after the last
    /// progress written, or now if that is older.
    fn progressed(&mut self, now: Instant) {
        self.progress = true;
        if self.due.is_none() {
            let earliest = self
                .progress_written
                .map_or(now, |written| written + SAVE_INTERVAL);
            self.due = Some(earliest.max(now));
        }
    }

    /// When the next write is due.
    fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Writes the checkpoints if they changed since the last write.
    fn save_if_changed(&mut self, files: &Files, store: &Store, name: &str, now: Instant) {
        self.due = None;
        let entries = files.entries();
        if entries == self.saved {
            return;
        }
        if std::mem::take(&mut self.progress) {
            self.progress_written = Some(now);
        }
        match store.save(&entries) {
            Ok(()) => (self.saved, self.failure_logged) = (entries, false),
            Err(error) => {
                if !self.failure_logged {
                    tracing::error!(module = %name, %error, "cannot write the checkpoints; retrying every second");
                    self.failure_logged = true;
                }
                self.progress = true;
                self.due = Some(now + SAVE_INTERVAL);
            }
        }
    }
}

/// Puts parcels on the outbox, counting their events in `counter`; false
/// when the server aborts or the pipeline is gone.
async fn send_all(
    sender: &wishbone_runtime::queue::Sender,
    parcels: Vec<wishbone_runtime::Parcel>,
    counter: &Counted,
    abort: &tokio_util::sync::CancellationToken,
) -> bool {
    for parcel in parcels {
        counter.add(parcel.len() as u64);
        if !send(sender, parcel, abort).await {
            return false;
        }
    }
    true
}

/// Logs when resending starts and ends.
/// A batch's token resolved: delivered moves its checkpoint on; while
/// stopping, anything else is read again at the next start; otherwise what
/// failed is sent again after a pause (an output that keeps giving events
/// up makes no busy loop of it, and what was delivered is not sent again).
fn settle(files: &mut Files, saving: &mut Saving, id: u64, outcome: Outcome, stopping: bool) {
    match outcome {
        Outcome::Acknowledged => {
            files.acknowledge(id, Instant::now());
            saving.progressed(Instant::now());
        }
        _ if stopping => files.forget(id),
        failed => files.failed(id, failed, Instant::now()),
    }
}

fn report_resends(files: &mut Files, name: &str) {
    if let Some(change) = files.take_resend_change() {
        change.log(name, "lines");
    }
}

/// Problems of one kind (scanning, reading), each logged once while it
/// lasts: a file that stays unreadable is not logged at every poll, and
/// is logged again if its reason changes, or once it recurs.
#[derive(Default)]
struct Problems(std::collections::HashSet<String>);

impl Problems {
    fn report(&mut self, found: Vec<String>, name: &str) {
        let found: std::collections::HashSet<String> = found.into_iter().collect();
        for problem in found.difference(&self.0) {
            tracing::warn!(module = %name, %problem, "file input");
        }
        self.0 = found;
    }
}

/// Looks for files, logs each opened and closed, and updates the gauges.
fn scan(files: &mut Files, metrics: &Metrics, name: &str, problems: &mut Problems) {
    let scanned = files.scan();
    for (path, offset) in &scanned.opened {
        tracing::info!(module = %name, path = %path.display(), offset, "file opened");
    }
    for (path, offset) in &scanned.closed {
        tracing::info!(module = %name, path = %path.display(), offset, "file closed: gone, and read to its end");
    }
    problems.report(scanned.problems, name);
    let (open, behind) = files.gauges();
    metrics.files_open.set(open as f64);
    metrics.bytes_behind.set(behind as f64);
}

/// Puts a parcel on the outbox; false when the server aborts or the
/// pipeline is gone (what was not delivered is read again at the next
/// start, from the checkpoint).
async fn send(
    sender: &wishbone_runtime::queue::Sender,
    parcel: wishbone_runtime::Parcel,
    abort: &tokio_util::sync::CancellationToken,
) -> bool {
    tokio::select! {
        biased;
        _ = abort.cancelled() => false,
        sent = sender.send(parcel) => sent.is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Problems, SAVE_INTERVAL, Saving};
    use std::time::{Duration, Instant};

    #[test]
    fn progress_is_written_at_once_then_once_a_second_at_most() {
        let start = Instant::now();
        let mut saving = Saving::new(Vec::new());
        assert_eq!(saving.due(), None, "nothing moved: nothing to write");
        saving.changed(start);
        assert_eq!(saving.due(), Some(start), "a file found: at once");
        // Written (as save_if_changed records it): no progress in it.
        saving.due = None;
        let soon = start + Duration::from_millis(100);
        saving.progressed(soon);
        assert_eq!(saving.due(), Some(soon), "the first progress: at once");
        (saving.due, saving.progress, saving.progress_written) = (None, false, Some(soon));
        let then = soon + Duration::from_millis(100);
        saving.progressed(then);
        saving.progressed(then + Duration::from_millis(100));
        assert_eq!(saving.due(), Some(soon + SAVE_INTERVAL), "a second after");
        saving.changed(then);
        assert_eq!(saving.due(), Some(then), "a file found or gone: at once");
        (saving.due, saving.progress_written) = (None, Some(then));
        let later = then + 5 * SAVE_INTERVAL;
        saving.progressed(later);
        assert_eq!(saving.due(), Some(later), "quiet for long: at once again");
    }

    #[test]
    fn a_lasting_problem_is_kept_once_and_a_new_reason_or_a_recurrence_is_new() {
        let mut problems = Problems::default();
        let denied = || vec!["/var/log/a.log: Permission denied".to_string()];
        problems.report(denied(), "app");
        assert!(problems.0.contains(&denied()[0]));
        let before = problems.0.clone();
        problems.report(denied(), "app");
        assert_eq!(problems.0, before, "the same problem again is not new");
        problems.report(vec!["/var/log/a.log: Is a directory".into()], "app");
        assert!(
            !problems.0.contains(&denied()[0]),
            "another reason replaces it"
        );
        problems.report(Vec::new(), "app");
        assert!(problems.0.is_empty(), "gone: logged again if it recurs");
    }
}
