//! `wishbone.output.file`: events appended to files whose path is a
//! template filled from each event (`/var/log/remote/{{ .hostname }}/{{
//! .appname }}.log`), on the one output pump of `wishbone-output`. The text
//! `wishbone show --docs` prints is [`DOCS`].
//!
//! Each batch is grouped by file and written off the pump's thread (a
//! write or an fdatasync may block); the batch is acknowledged once
//! written, or once synced with `sync: batch`. An event whose path cannot
//! be filled is rejected to `failed`; a write that fails ends the
//! "connection", and the shell retries with backoff as for a peer that is
//! down.

mod object;
mod open_files;
mod template;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;
use wishbone_output::{
    Connection, Heard, Output, Sent, Settings, Transport, shared_arguments_docs,
};
use wishbone_runtime::{ArgumentError, Arguments, Event, Module, ModuleKind, Parcel, QueueSpec};

use self::object::Object;
use self::open_files::OpenFiles;
pub use self::template::Template;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = concat!(
    r#"wishbone.output.file: appends events to files named from their fields.

Queues
  inbox      events to write
  failed     events whose path cannot be filled (always); with
             `failed: true` also what waits while the files cannot be written
  success    with `success: true`, events written

Arguments (default)
  path            the file, a template (required): `{{ .field }}` parts
                  are jq paths into the event's JSON object (`.hostname`,
                  `.a.b`, `."a b"`), and `// "text"` gives the text for a
                  missing or null field, e.g.
                  /var/log/remote/{{ .hostname // "localhost" }}/{{ .appname }}.log.
                  Each value is made safe for one path segment:
                  `/`, NUL and control characters become `_`, as does an
                  empty value and one of dots only (`.`, `..`), so a sender
                  cannot write outside the directory before the first
                  field. An event with a field missing or null, or a
                  segment past 255 bytes, goes to `failed` with the reason.
  format          raw | json | a line template (raw): the event's payload
                  as it is; the event as a JSON line (a payload that is not
                  a JSON object becomes {"message": payload}); or a template
                  with fields, `-` for a missing one, e.g.
                  "{{ .timestamp }} {{ .hostname }} {{ .appname }}: {{ .message }}"
  sync            none | batch (none): an event counts as delivered once
                  written (the kernel has it), or once the files of its
                  batch are fdatasync'ed
  max_open_files  files open at once (256); the least recently written is
                  closed first
  mode            permissions of new files, in octal ("0644"); new
                  directories get the same with x wherever there is r
"#,
    shared_arguments_docs!(),
    r#"
Rotation
  A file renamed or deleted under the output (logrotate's `create`) is
  noticed at the first write a second or more after the last look, and
  made anew; lines written meanwhile are in the renamed file. SIGHUP
  (logrotate's `postrotate`) closes every file, to open each anew at its
  next write, besides reloading the bootstrap file.

Delivery
  An event is delivered once written, or with sync: batch once on disk.
  A write that fails (a full disk, a read-only file system, permissions)
  is undone (the file is cut back to where it was), logged, and retried
  with backoff (reconnect_initial to reconnect_max); meanwhile events wait
  and the inbox is locked, or with `failed: true` they go to `failed`.

Metrics (module.<name>.<counter>)
  as the tcp output's (connected, connects, delivered, failed_over,
  resent, rejected), and files_open (a gauge)

Example
  modules:
    syslog: {module: wishbone.input.udp, arguments: {port: 514}}
    decode: {module: wishbone.process.decode, arguments: {format: syslog}}
    files:
      module: wishbone.output.file
      arguments:
        path: "/var/log/remote/{{ .hostname }}/{{ .appname }}.log"
        format: "{{ .timestamp }} {{ .hostname }} {{ .appname }}: {{ .message }}"
  routingtable:
    - syslog.outbox -> decode.inbox
    - decode.outbox -> files.inbox
"#
);

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.output.file",
    aliases: &[],
    description: "appends events to files named from their fields",
    docs: DOCS,
    queues: QueueSpec::SINK,
    build,
};

/// When an event counts as delivered.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Sync {
    /// Once written.
    #[default]
    None,
    /// Once its batch's files are fdatasync'ed.
    Batch,
}

/// The arguments besides the shared ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file, a template.
    pub path: String,
    /// raw, json, or a line template.
    #[serde(default = "default_format")]
    pub format: String,
    /// When an event counts as delivered.
    #[serde(default)]
    pub sync: Sync,
    /// Files open at once.
    #[serde(default = "default_max_open_files")]
    pub max_open_files: usize,
    /// Permissions of new files.
    #[serde(default = "default_mode")]
    pub mode: String,
}

fn default_format() -> String {
    "raw".into()
}

fn default_max_open_files() -> usize {
    256
}

fn default_mode() -> String {
    "0644".into()
}

/// How an event becomes a line.
#[derive(Clone, Debug)]
enum Format {
    Raw,
    Json,
    Line(Template),
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let (settings, own) = Settings::split(arguments)?;
    let config: Config = own.deserialize()?;
    let path =
        Template::parse(&config.path).map_err(|error| ArgumentError::field("path", error))?;
    if config.path.is_empty() || config.path.ends_with('/') {
        return Err(ArgumentError::field("path", "must name a file"));
    }
    let format = match config.format.as_str() {
        "raw" => Format::Raw,
        "json" => Format::Json,
        line => {
            let template =
                Template::parse(line).map_err(|error| ArgumentError::field("format", error))?;
            if !template.has_fields() {
                return Err(ArgumentError::field(
                    "format",
                    format!("must be raw, json or a template with {{{{ .fields }}}}, not `{line}`"),
                ));
            }
            Format::Line(template)
        }
    };
    let mode = wishbone_runtime::octal_mode(&config.mode)?;
    if config.max_open_files == 0 {
        return Err(ArgumentError::field("max_open_files", "must be at least 1"));
    }
    let writer = Writer {
        files: OpenFiles::new(config.max_open_files, mode),
        path,
        format,
        sync: config.sync == Sync::Batch,
        files_open: None,
    };
    Ok(Box::new(Output {
        transport: FileTransport {
            target: config.path,
            writer: Arc::new(Mutex::new(writer)),
        },
        settings,
    }))
}

/// What writes the files, shared by the output's connections.
struct Writer {
    files: OpenFiles,
    path: Template,
    format: Format,
    sync: bool,
    files_open: Option<metrics::Gauge>,
}

/// What writing a batch came to.
struct Written {
    /// Events written, in order.
    written: Vec<Event>,
    /// Events whose path could not be filled, with the reason.
    rejected: Vec<(Event, String)>,
    result: std::io::Result<()>,
}

impl Writer {
    /// Writes `events`, grouped by file, in one write per file.
    fn write(&mut self, events: Vec<Event>, now: Instant) -> Written {
        if self.files.reopen_if_asked() {
            tracing::info!(target: "wishbone_modules::output::file", "SIGHUP: reopening every file");
        }
        let mut groups: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        let (mut written, mut rejected) = (Vec::with_capacity(events.len()), Vec::new());
        // One line at a time, copied into its file's group.
        let mut line = Vec::new();
        for event in events {
            line.clear();
            match self.place(&event, &mut line) {
                Ok(path) => {
                    match group_of.get(&path) {
                        Some(&group) => groups[group].1.extend_from_slice(&line),
                        None => {
                            group_of.insert(path.clone(), groups.len());
                            groups.push((PathBuf::from(path), line.clone()));
                        }
                    }
                    written.push(event);
                }
                Err(reason) => rejected.push((event, reason)),
            }
        }
        let result = self.write_groups(&groups, now);
        if let Some(gauge) = &self.files_open {
            gauge.set(self.files.len() as f64);
        }
        Written {
            written,
            rejected,
            result,
        }
    }

    fn write_groups(&mut self, groups: &[(PathBuf, Vec<u8>)], now: Instant) -> std::io::Result<()> {
        for (path, data) in groups {
            self.files
                .append(path, data, now)
                .map_err(|error| with_path(error, path))?;
        }
        if self.sync {
            for (path, _) in groups {
                self.files
                    .sync(path)
                    .map_err(|error| with_path(error, path))?;
            }
        }
        Ok(())
    }

    /// The file an event goes to; its line is written to `line`.
    fn place(&self, event: &Event, line: &mut Vec<u8>) -> Result<String, String> {
        let data = event.data();
        let wanted = self.path.has_fields() || !matches!(self.format, Format::Raw);
        let object = wanted.then(|| Object::parse(data)).flatten();
        let not_object = || "the event is not a JSON object, so the path or line cannot be filled";
        let path = match (&object, self.path.has_fields()) {
            (_, false) => self.path.fixed_start().to_string(),
            (Some(object), true) => self.path.path(object)?,
            (None, true) => return Err(not_object().into()),
        };
        match (&self.format, &object) {
            (Format::Raw, _) | (Format::Json, Some(_)) => line.extend_from_slice(data),
            (Format::Json, None) => {
                let text = String::from_utf8_lossy(data);
                serde_json::to_writer(&mut *line, &serde_json::json!({ "message": text }))
                    .map_err(|error| error.to_string())?;
            }
            (Format::Line(template), Some(object)) => template.line(object, line),
            (Format::Line(_), None) => return Err(not_object().into()),
        }
        line.push(b'\n');
        Ok(path)
    }
}

/// An error that names the file.
fn with_path(error: std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

fn lock(writer: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    writer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The files, as the pump's peer.
struct FileTransport {
    target: String,
    writer: Arc<Mutex<Writer>>,
}

impl Transport for FileTransport {
    type Connection = FileConnection;

    fn target(&self) -> String {
        self.target.clone()
    }

    fn named(&mut self, module: &str) {
        lock(&self.writer).files_open = Some(metrics::gauge!(wishbone_runtime::module_metric(
            module,
            "files_open"
        )));
    }

    async fn connect(&mut self) -> Result<FileConnection, String> {
        Ok(FileConnection {
            writer: self.writer.clone(),
        })
    }
}

/// Writing, as one connection of the pump: positions are messages, one
/// per event written.
struct FileConnection {
    writer: Arc<Mutex<Writer>>,
}

/// Events taken in one write, at most.
const BATCH: usize = 65_536;

impl Connection for FileConnection {
    fn room(&self, _in_flight: usize) -> usize {
        BATCH
    }

    async fn send(&mut self, parcels: Vec<Parcel>, sent: &mut Sent<'_>) -> Result<(), String> {
        let events: Vec<Event> = parcels.into_iter().flat_map(Parcel::into_events).collect();
        let writer = self.writer.clone();
        let done = tokio::task::spawn_blocking(move || lock(&writer).write(events, Instant::now()))
            .await
            .map_err(|error| format!("the writing task failed: {error}"))?;
        for (event, reason) in done.rejected {
            sent.reject(event, reason);
        }
        let written = Parcel::Events(done.written);
        match done.result {
            Ok(()) => {
                if !written.is_empty() {
                    let done = sent.messages(written);
                    sent.delivered(done);
                }
                Ok(())
            }
            Err(error) => {
                sent.never_acknowledged(written);
                Err(format!("cannot write: {error}"))
            }
        }
    }

    /// Nothing comes back from a file: what was written is delivered when
    /// the write returns ([`Sent::delivered`]).
    async fn heard(&mut self) -> Result<Heard, String> {
        std::future::pending().await
    }

    async fn close(&mut self, _timeout: Duration) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(path: &str, format: Format) -> Writer {
        Writer {
            files: OpenFiles::new(1, 0o644),
            path: Template::parse(path).unwrap(),
            format,
            sync: false,
            files_open: None,
        }
    }

    fn placed(writer: &Writer, data: &'static str) -> Result<(String, String), String> {
        let mut line = Vec::new();
        let path = writer.place(&Event::new(data), &mut line)?;
        Ok((path, String::from_utf8(line).unwrap()))
    }

    #[test]
    fn each_format_makes_its_line_and_a_path_needs_an_object() {
        let raw = writer("/l/{{ .host }}.log", Format::Raw);
        let event = r#"{"host":"a","message":"m"}"#;
        assert_eq!(
            placed(&raw, event).unwrap(),
            ("/l/a.log".into(), format!("{event}\n"))
        );
        let error = placed(&raw, "plain text").unwrap_err();
        assert!(error.contains("not a JSON object"), "{error}");
        let json = writer("/l/all.log", Format::Json);
        assert_eq!(placed(&json, event).unwrap().1, format!("{event}\n"));
        assert_eq!(
            placed(&json, "plain \"text\"").unwrap(),
            (
                "/l/all.log".into(),
                "{\"message\":\"plain \\\"text\\\"\"}\n".into()
            )
        );
        let line = writer(
            "/l/all.log",
            Format::Line(Template::parse("{{ .host }}: {{ .message }}").unwrap()),
        );
        assert_eq!(placed(&line, event).unwrap().1, "a: m\n");
        assert!(placed(&line, "plain text").is_err());
        let plain = writer("/l/all.log", Format::Raw);
        assert_eq!(placed(&plain, "plain text").unwrap().1, "plain text\n");
    }
}
