//! The wal's end of its log on disk: opening it (and what it held), the
//! writer thread's reports applied to the bookkeeping, and whether the
//! inbox may be read meanwhile.

use std::time::Duration;

use super::{Journal, Report, Retention, Writer};
use crate::config::Config;
use wishbone_runtime::ModuleError;
use wishbone_runtime::module_metric;

/// Events handed to the log and not yet kept, at most: past this the inbox
/// waits, which is how a failing disk pushes back.
const MOST_WRITING: usize = 1 << 18;

/// The log's end, with what the module last heard from it.
pub(super) struct Log {
    pub(super) writer: Writer,
    disk_bytes: u64,
    disk_bytes_limit: u64,
    /// Writing fails: the inbox waits until it works again.
    failing: bool,
    /// Events handed to the writer that it never kept, as it ended.
    pub(super) unwritten: usize,
    /// `module.<name>.kept`, `.disk_bytes` and `.memory_bytes`, looked up once.
    kept: metrics::Counter,
    disk_bytes_gauge: metrics::Gauge,
    memory_bytes_gauge: metrics::Gauge,
}

/// Opens the log at `path` and starts its writer; what it held is the
/// retention's to send first.
pub(super) fn open_log(
    config: &Config,
    path: &std::path::Path,
    name: &str,
) -> Result<(Log, Retention), ModuleError> {
    let (journal, recovered) = Journal::open(path, config.segment_bytes())
        .map_err(|error| ModuleError::Other(format!("cannot open the wal: {error}")))?;
    let events: usize = recovered.blocks.iter().map(|stored| stored.events).sum();
    if recovered.damaged_records > 0 {
        tracing::error!(module = %name, path = %path.display(), records = recovered.damaged_records, bytes = recovered.damaged_bytes, lost_events = recovered.lost_events, "skipped damaged records in the wal; the records after them are read");
    }
    if recovered.cut_bytes > 0 {
        tracing::warn!(module = %name, path = %path.display(), bytes = recovered.cut_bytes, "cut a torn or damaged tail off the wal");
    }
    tracing::info!(
        module = %name,
        path = %path.display(),
        events,
        blocks = recovered.blocks.len(),
        segments = recovered.segments,
        "opened the wal; what it holds is sent first"
    );
    metrics::counter!(module_metric(name, "replayed")).increment(events as u64);
    let disk_bytes = journal.disk_bytes();
    let retention = Retention::on_disk(config.clone(), recovered.blocks, recovered.next_id);
    let writer = Writer::start(
        journal,
        config.sync,
        Duration::from_millis(config.sync_interval_ms),
        name.to_string(),
    )
    .map_err(|source| ModuleError::Io {
        context: "cannot start the wal's writer thread".into(),
        source,
    })?;
    Ok((
        Log {
            writer,
            disk_bytes,
            disk_bytes_limit: config.disk_bytes_limit(),
            failing: false,
            unwritten: 0,
            kept: metrics::counter!(module_metric(name, "kept")),
            disk_bytes_gauge: metrics::gauge!(module_metric(name, "disk_bytes")),
            memory_bytes_gauge: metrics::gauge!(module_metric(name, "memory_bytes")),
        },
        retention,
    ))
}

impl Log {
    /// Whether the inbox may be read: the writer keeps up (what it was
    /// handed and has not written fits in a quarter of
    /// `max_memory_bytes`), the files have room.
    pub(super) fn has_room(&self, retention: &Retention, config: &Config) -> bool {
        !self.failing
            && retention.writing() < MOST_WRITING
            && retention.writing_bytes() < (config.max_memory_bytes / 4).max(1)
            && self.disk_bytes <= self.disk_bytes_limit
    }

    /// Applies one report of the writer.
    pub(super) fn apply(&mut self, report: Report, retention: &mut Retention) {
        match report {
            Report::Kept(blocks) => {
                let events: usize = blocks.iter().map(|(_, parcel, _)| parcel.len()).sum();
                for (id, parcel, location) in blocks {
                    retention.kept(id, parcel, location);
                }
                self.kept.increment(events as u64);
            }
            Report::Loaded(blocks) => {
                for (id, parcel) in blocks {
                    retention.loaded(id, parcel);
                }
            }
            Report::Unreadable(ids) => retention.unreadable(&ids),
            Report::Settled(ids) => retention.settled(&ids),
            Report::Failing(failing) => self.failing = failing,
            Report::Unwritten(events) => self.unwritten += events,
            Report::DiskBytes(bytes) => {
                self.disk_bytes = bytes;
                self.disk_bytes_gauge.set(bytes as f64);
                self.memory_bytes_gauge.set(retention.held_bytes() as f64);
            }
        }
    }
}
