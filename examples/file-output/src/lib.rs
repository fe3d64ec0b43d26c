//! `example.output.file`: appends each event as a line to a file, to show
//! how an acknowledged output of one's own is written against
//! `wishbone-output` alone. `docs/writing-a-module.md` walks through it.
//!
//! The transport opens the file; its connection writes each batch, and
//! acknowledges it by byte position once written, or once `fdatasync`
//! returned with `sync: true`. Everything else (backoff, `failed`,
//! `success`, resends, draining on stop) is the shared pump's.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use wishbone_output::{Connection, Heard, Output, Sent, Settings, Transport};
use wishbone_runtime::{ArgumentError, Arguments, Module, ModuleKind, Parcel, QueueSpec};

/// What `show --docs example.output.file` prints.
pub const DOCS: &str = concat!(
    r#"example.output.file: appends each event as a line to a file.

Queues
  inbox      events to write
  failed     with `failed: true`, events it could not write
  success    with `success: true`, events written

Arguments (default)
  path               the file, created if missing (required)
  sync               count an event delivered only once fdatasync returned,
                     instead of once written (false)
"#,
    wishbone_output::shared_arguments_docs!(),
    r#"
Delivery
  An event counts as delivered once written to the file (the kernel has
  it), or with `sync: true` once on disk. A file that cannot be opened or
  written is retried with backoff; meanwhile events wait, or with
  `failed: true` go to `failed`.

Example
  modules:
    archive:
      module: example.output.file
      arguments: {path: /var/log/archive.log, sync: true}
"#
);

/// The kind, to add to a binary's modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "example.output.file",
    aliases: &[],
    description: "appends each event as a line to a file",
    docs: DOCS,
    queues: QueueSpec::SINK,
    build,
};

/// The module's own arguments; the shared ones are [`Settings`]'.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file, created if missing.
    pub path: PathBuf,
    /// Delivered once `fdatasync` returned, not once written.
    #[serde(default)]
    pub sync: bool,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let (settings, own) = Settings::split(arguments)?;
    let config: Config = own.deserialize()?;
    if config.path.as_os_str().is_empty() {
        return Err(ArgumentError::field("path", "must name a file"));
    }
    let transport = FileTransport { config };
    Ok(Box::new(Output {
        settings,
        transport,
    }))
}

/// Where the output writes.
struct FileTransport {
    config: Config,
}

impl Transport for FileTransport {
    type Connection = FileConnection;

    fn target(&self) -> String {
        self.config.path.display().to_string()
    }

    async fn connect(&mut self) -> Result<FileConnection, String> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.config.path)
            .map_err(|error| error.to_string())?;
        Ok(FileConnection {
            file: Arc::new(file),
            sync: self.config.sync,
            done: 0,
        })
    }
}

/// The open file. Positions are bytes written through this handle.
struct FileConnection {
    file: Arc<File>,
    sync: bool,
    /// Bytes written (and synced, with `sync`).
    done: u64,
}

impl Connection for FileConnection {
    fn room(&self, _in_flight: usize) -> usize {
        usize::MAX
    }

    async fn send(&mut self, parcels: Vec<Parcel>, sent: &mut Sent<'_>) -> Result<(), String> {
        let newline = Bytes::from_static(b"\n");
        let blocks: Vec<_> = parcels.into_iter().map(|p| p.into_wire(&newline)).collect();
        let data: Vec<Bytes> = blocks
            .iter()
            .map(|(lines, _)| lines.data().clone())
            .collect();
        let (file, sync) = (self.file.clone(), self.sync);
        // Off the pump's thread: a write or an fdatasync may block.
        let written = tokio::task::spawn_blocking(move || {
            data.iter()
                .try_for_each(|block| (&*file).write_all(block))?;
            if sync { file.sync_data() } else { Ok(()) }
        })
        .await
        .map_err(|error| error.to_string())
        .and_then(|result| result.map_err(|error| error.to_string()));
        for (lines, events) in blocks {
            match written {
                Ok(()) => {
                    self.done += lines.data().len() as u64;
                    sent.lines(lines, events);
                    sent.delivered(self.done);
                }
                Err(_) => {
                    sent.never_acknowledged(events.map_or(Parcel::Lines(lines), Parcel::Events))
                }
            }
        }
        written
    }

    /// Nothing comes back from a file: what was written is delivered when
    /// the write returns ([`Sent::delivered`]).
    async fn heard(&mut self) -> Result<Heard, String> {
        std::future::pending().await
    }

    async fn close(&mut self, _timeout: Duration) {}
}

#[cfg(test)]
mod documentation {
    use super::{Config, KIND};

    #[test]
    fn the_docs_describe_exactly_the_arguments_taken() {
        let mut taken = wishbone_runtime::field_names::<Config>();
        // What every output that reaches a peer takes besides its own.
        taken.extend(wishbone_output::arguments::SHARED);
        assert_eq!(KIND.docs_match(&taken), Ok(()));
    }

    #[test]
    fn the_docs_give_the_defaults_the_code_takes() {
        let example = wishbone_runtime::Arguments::from_yaml("{path: /tmp/out.log}").unwrap();
        let read = |arguments: &wishbone_runtime::Arguments| {
            let (settings, own) = wishbone_output::arguments::Settings::split(arguments)?;
            Ok(format!("{settings:?} {:?}", own.deserialize::<Config>()?))
        };
        assert_eq!(KIND.defaults_match(&example, read), Ok(()));
    }
}
