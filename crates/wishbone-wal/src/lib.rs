//! `wishbone.flow.wal`: a bounded write-ahead buffer. It keeps every event
//! until an output acknowledges it, sends blocks of at most `read_count`
//! events, and sends again whatever an output fails. With `path` it keeps
//! them in a log on disk that survives a crash.
//!
//! The text `wishbone show --docs` prints is [`DOCS`]; the on-disk format
//! is described in `docs/wal.md` and in [`record`]. The parts:
//! [`Retention`] is the bookkeeping as a plain struct, in blocks of events;
//! [`journal::Journal`] is the log's files; [`writer::Writer`] is the
//! thread that writes and syncs them. The module around them issues one
//! token with each block it sends (on lines,
//! [`wishbone_runtime::Lines::with_ack`]; split over separate events,
//! [`wishbone_runtime::Event::with_ack`]) and hears each block's fate from
//! the outputs that handled it.

mod block;
mod config;
mod journal;
mod log;
pub mod record;
mod residency;
mod retention;
mod running;
mod writer;

use futures::future::LocalBoxFuture;
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

pub use block::{Location, Stored};
pub use config::{Config, SyncMode, WhenFull};
pub use journal::{Journal, JournalError, Recovered};
pub use retention::{Pushed, Retention};
pub use writer::{Command, Report, Writer};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.flow.wal: a bounded write-ahead buffer, in memory or on disk.

Queues
  inbox      events to keep until delivered
  outbox     events on their way to outputs (a round robin, an output)

Arguments (default)
  read_count    events sent on per step, at most (20): each block the
                buffer sends holds at most this many, with one token
  max_elements  events kept, sent or waiting (1000)
  max_bytes     payload bytes kept (10485760). In memory this bounds
                their memory too: a kept block may share the buffer it was
                read into until 64 newer ones do, then it gets a copy of
                its own, so at most 64 read buffers are held beyond this
  when_full     drop_oldest | drop_newest | block (drop_oldest): what a new
                event does when a limit is reached; `block` makes the inbox
                wait, pushing back upstream. Every drop is counted in the
                inbox's dropped_total.
  path          a directory for the log on disk (none: kept in memory only,
                and lost when the process ends)
  sync          with `path`, what "kept" means (batch):
                  batch     records are fsynced before any event in them is
                            sent on or acknowledged upstream; one fsync
                            covers everything that arrived meanwhile. A
                            crash or power cut loses nothing kept.
                  interval  fsync every sync_interval_ms; events count as
                            kept once written. A process crash loses
                            nothing; a power cut can lose that interval.
                  none      never fsync; the operating system writes when
                            it will. A process crash loses nothing; a power
                            cut can lose whatever it had not written.
  sync_interval_ms  with `sync: interval` (1000)
  resend_initial    seconds before a block that failed downstream is sent
                    again (0.1); the pause doubles each time the same block
                    fails
  resend_max        longest such pause in seconds (1)
  max_memory_bytes  with `path`, payload bytes held in memory besides the
                log (67108864): blocks in flight and the oldest waiting
                ones; newer blocks wait on disk only and are read back
                before they are sent, so a backlog larger than memory waits
                on disk. What the log is still writing is held to a
                quarter of this besides

Events are kept in blocks: what arrived together, at most read_count events
(and max_elements, and max_bytes) a block; lines read from a socket stay in
their wire form, one copy and one token per block. Blocks are sent on as
the outbox takes them, without waiting for earlier blocks' acknowledgements
(read_count is what the original forwards per step, not a window): what is
in flight is still kept, so max_elements and max_bytes bound it, and the
queues downstream and each output's own window bound it further. While
the outbox is locked (the output it feeds is down, or every destination of
the round robin it feeds is) nothing is sent: events wait here, where
when_full applies to them. Each block sent carries a token that the
outputs which handle it resolve: acknowledged once every one of its events
is with its peer (tcp: the peer's TCP stack acknowledged the bytes;
websocket: likewise for the frames). A block that travels in parts (a
round robin deals it, a selector sorts it, an output cuts it to fit its
window) is settled once every part is, and a failure names the events
that were not delivered (a connection died before they were
acknowledged, an output is down): only those are sent again, never what
another output already delivered. A fanout's copies are one exception:
an event one copy failed is sent again to every destination. A failed
block is sent again after a pause (resend_initial, doubling each time the
same block fails, up to resend_max), so a path that keeps failing costs no
CPU and sends no copies elsewhere; then before anything newer, to
whichever output is up. Resending is logged once when it starts and once
when everything failed was delivered, and counted in
module.<name>.resent (events sent again). Only the block itself is settled
by its token: a block in flight on one output is never acknowledged by
another's progress. With `path` the log records a block as settled only
once all of it is: after a crash, a block of which a part was delivered
is sent again whole.

Upstream, an event that arrived with a token (from an acknowledging input,
or another buffer) is acknowledged once it is kept: with `path`, written as
`sync` says; in memory, once an output delivered it. A dropped event's
token fails.

With `path`, the log is a directory of segment files (max_bytes/8 each,
64 KiB to 128 MiB) of checksummed records, locked by the process using it:
a second process on the same path is refused. On start every event kept and
not delivered is sent again, oldest first, before anything new (counted in
module.<name>.replayed); a damaged record is skipped, the records after
it read, and the events it held logged as lost; a torn tail is cut off and
logged. A
delivered block is recorded as settled as soon as its outputs acknowledge
it, and keeps its room in max_elements until then: after a crash, the
blocks delivered since the log's last write are sent again, along with
those in flight whose delivery the outputs had not yet heard of. A
segment is deleted once every block in it is settled, which is fsynced
first. The files hold at most max_bytes of
payload plus record headers, plus what was settled in segments still
holding an older unsettled block: the inbox waits while they exceed
1.25 × max_bytes plus two segments. When the disk is full or failing the
module logs once, the inbox waits (nothing kept is lost, nothing new is
acknowledged), and writing resumes by itself; meanwhile what was kept is
still delivered, and a log whose blocks are all settled is emptied so its
room comes back. A stop waits on a failing disk for a second at most: what
was never kept is then counted undelivered. A block that cannot be read
back (its record damaged since) is logged, counted as dropped and settled.
Metrics: module.<name>.kept (events kept on disk), .replayed, .disk_bytes,
.memory_bytes (payload held in memory besides the log).

Example (the round-robin demo)
  modules:
    metronome: {module: wishbone.input.metronome}
    wal:
      module: wishbone.flow.wal
      arguments: {read_count: 20, max_elements: 1000, max_bytes: 10485760}
    roundrobin: {module: wishbone.flow.roundrobin}
    output_1: {module: wishbone.output.tcp, arguments: {port: 10001}}
    output_2: {module: wishbone.output.tcp, arguments: {port: 10002}}
  routingtable:
    - metronome.outbox -> wal.inbox
    - wal.outbox -> roundrobin.inbox
    - roundrobin.one -> output_1.inbox
    - roundrobin.two -> output_2.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.flow.wal",
    aliases: &["wishbone.flow.qos.wal"],
    description: "keeps events until an output acknowledges them; replays failures",
    docs: DOCS,
    queues: QueueSpec::PROCESS,
    build,
};

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    if config.read_count == 0
        || config.max_elements == 0
        || config.max_bytes == 0
        || config.max_memory_bytes == 0
    {
        return Err(ArgumentError::new(
            "`read_count`, `max_elements`, `max_bytes` and `max_memory_bytes` must be at least 1",
        ));
    }
    if config
        .path
        .as_ref()
        .is_some_and(|path| path.as_os_str().is_empty())
    {
        return Err(ArgumentError::field("path", "must name a directory"));
    }
    if let Some(path) = &config.path {
        usable_directory(path).map_err(ArgumentError::new)?;
    }
    config
        .resend_arguments()
        .pauses()
        .map_err(ArgumentError::new)?;
    if config.sync_interval_ms == 0 {
        return Err(ArgumentError::field(
            "sync_interval_ms",
            "must be at least 1",
        ));
    }
    Ok(Box::new(Wal { config }))
}

/// Whether `path` is, or can be made, a directory: it, or the nearest of
/// its parents that exists, must be one (a regular file there would only
/// fail at start).
fn usable_directory(path: &std::path::Path) -> Result<(), String> {
    for place in path
        .ancestors()
        .filter(|place| !place.as_os_str().is_empty())
    {
        match std::fs::metadata(place) {
            Ok(found) if found.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(format!(
                    "`path` {} cannot be a directory: {} is a file",
                    path.display(),
                    place.display()
                ));
            }
            // Not there, or under a file: the parent tells.
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) => {}
            Err(error) => return Err(format!("`path` {}: {error}", path.display())),
        }
    }
    Ok(())
}

/// The module.
pub struct Wal {
    config: Config,
}

impl Module for Wal {
    /// A new `path` would leave what the old log holds behind: refused.
    fn may_replace(&self, previous: &Arguments) -> Result<(), String> {
        let Ok(previous) = previous.deserialize::<Config>() else {
            return Ok(());
        };
        match (&previous.path, &self.config.path) {
            (Some(old), new) if Some(old) != new.as_ref() => Err(format!(
                "`path` cannot change by a reload: the events kept in {} would be stranded \
                 (restart the server to move the log, or add a wal under another name and \
                 remove this one once it has delivered everything)",
                old.display()
            )),
            _ => Ok(()),
        }
    }

    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let running = running::Running::new(&mut context, self.config);
        Box::pin(running.run())
    }
}

#[cfg(test)]
mod tests;
