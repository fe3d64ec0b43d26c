//! `wishbone.input.unix`: events from a unix socket, a drop-in for
//! `/dev/log` (datagrams) or for stream senders (lines or octet-counted
//! frames, as the tcp input cuts them). The text `wishbone show --docs`
//! prints is [`DOCS`].

use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_listen::Registry;
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

use super::client::{Client, Counters, Cutting, SharedCutting};
use super::datagrams::{count_kernel_drops, registered};
use super::receiving::receive_all;
use super::udp::{checked_max_datagram, default_max_datagram};
use crate::config::default_delimiter;
use wishbone_codecs::framing::Framing;
use wishbone_codecs::lines::Overlong;
use wishbone_runtime::octal_mode;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.input.unix: events from a unix socket: datagrams (as /dev/log) or streams.

Queues
  outbox     with datagram, every datagram (a trailing newline dropped);
             with stream, every line or frame

Arguments (default)
  path             the socket file (required). A socket file left there by
                   a process that is gone is replaced; a live one (another
                   process listening) or anything that is not a socket is
                   refused, by `check` too. The file is removed at stop.
  type             datagram | stream (datagram): /dev/log and `logger -u`
                   send datagrams; `logger --socket-type stream` and
                   other senders streams
  mode             the socket file's permissions, in octal, quoted (none:
                   as the process's umask leaves them); "0666" lets every
                   local user write
  max_datagram     with datagram, longest datagram in bytes, 1 to 65535
                   (65535); a longer one is cut to it and counted
  framing          with stream: newline | octet_counted | auto (newline),
                   as the tcp input's
  delimiter        with stream: what ends an event ("\n")
  max_line_length  with stream: longest event in bytes (1048576)
  overlong_lines   with stream: truncate | drop (truncate)
  max_connections  with stream: senders served at once (1024); past it the
                   idlest is closed to make room

Delivery
  A unix datagram socket does not drop: a sender waits while the socket's
  queue is full (net.unix.max_dgram_qlen datagrams), so a full outbox
  slows the senders. A stream sender is slowed the same way, as over TCP.

Metrics (module.<name>.<counter>)
  events             events put on outbox
  truncated          datagrams or lines cut to their limit
  dropped            with stream, lines dropped for their length
  incomplete         with stream, unfinished lines at a sender's end
  malformed          with stream, senders closed for a malformed frame
  evicted            with stream, senders closed to make room
  dropped_by_kernel  with datagram, what the kernel says it dropped

Example
  modules:
    devlog:
      module: wishbone.input.unix
      arguments: {path: /dev/log, mode: "0666"}
    decode: {module: wishbone.process.decode, arguments: {format: syslog}}
  routingtable:
    - devlog.outbox -> decode.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.input.unix",
    aliases: &[],
    description: "events from a unix socket: datagrams (as /dev/log) or streams",
    docs: DOCS,
    queues: QueueSpec::SOURCE,
    build,
};

/// Datagrams or a stream.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SocketType {
    /// One event per datagram, as /dev/log.
    #[default]
    Datagram,
    /// Connections cut into lines or frames.
    Stream,
}

/// The arguments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The socket file.
    pub path: PathBuf,
    /// Datagrams or a stream.
    #[serde(default, rename = "type")]
    pub socket_type: SocketType,
    /// The socket file's permissions, in octal.
    #[serde(default)]
    pub mode: Option<String>,
    /// With datagram, the longest datagram.
    #[serde(default = "default_max_datagram")]
    pub max_datagram: usize,
    /// With stream, how events are cut.
    #[serde(default)]
    pub framing: Framing,
    /// With stream, what ends an event.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// With stream, the longest event.
    #[serde(default = "default_max_line_length")]
    pub max_line_length: usize,
    /// With stream, what to do with a longer one.
    #[serde(default)]
    pub overlong_lines: Overlong,
    /// With stream, senders served at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_line_length() -> usize {
    1024 * 1024
}

fn default_max_connections() -> usize {
    1024
}

/// Whether something at `path` stops a socket from being made there (a
/// link is followed: /dev/log is often one to journald's socket).
fn occupied(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Err(_) => {
            let parent = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty());
            match parent {
                Some(parent) if !parent.is_dir() => {
                    Err(format!("{} is not a directory", parent.display()))
                }
                _ => Ok(()),
            }
        }
        Ok(metadata) if metadata.file_type().is_socket() => Ok(()),
        Ok(_) => Err(format!(
            "{} exists and is not a socket; it is left alone",
            path.display()
        )),
    }
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    checked_max_datagram(config.max_datagram)?;
    let mode = config.mode.as_deref().map(octal_mode).transpose()?;
    occupied(&config.path).map_err(|reason| ArgumentError::field("path", reason))?;
    if config.max_line_length == 0 || config.max_connections == 0 {
        return Err(ArgumentError::field(
            "max_line_length",
            "max_line_length and max_connections must be at least 1",
        ));
    }
    let cutting = Cutting::of(
        config.framing,
        &config.delimiter,
        config.max_line_length,
        config.overlong_lines,
    )?;
    Ok(Box::new(UnixInput {
        config,
        mode,
        cutting,
    }))
}

/// The module.
pub struct UnixInput {
    config: Config,
    mode: Option<u32>,
    cutting: Cutting,
}

/// Clears the way for a socket at `path`: a socket file nobody listens on
/// is removed; a live one is an error.
fn clear_stale(path: &Path, socket_type: SocketType) -> Result<(), String> {
    occupied(path)?;
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    let probe = match socket_type {
        SocketType::Datagram => std::os::unix::net::UnixDatagram::unbound()
            .and_then(|socket| socket.connect(path))
            .map(drop),
        SocketType::Stream => std::os::unix::net::UnixStream::connect(path).map(drop),
    };
    match probe {
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing a socket file nobody listens on");
            std::fs::remove_file(path).map_err(|error| format!("cannot remove it: {error}"))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Ok(()) => Err(format!("another process listens on {}", path.display())),
        Err(error) => Err(format!("{} is in use: {error}", path.display())),
    }
}

impl UnixInput {
    async fn serve(self, mut context: ModuleContext) -> Result<(), ModuleError> {
        let module = context.name().to_string();
        let path = self.config.path.clone();
        clear_stale(&path, self.config.socket_type).map_err(ModuleError::Other)?;
        let result = match self.config.socket_type {
            SocketType::Datagram => self.serve_datagrams(&mut context).await,
            SocketType::Stream => self.serve_stream(&mut context).await,
        };
        if let Err(error) = std::fs::remove_file(&path) {
            tracing::warn!(module = %module, path = %path.display(), %error, "cannot remove the socket file");
        }
        result
    }

    /// Makes the socket file's permissions `mode`, and logs it listening.
    fn ready(&self, module: &str) -> Result<(), ModuleError> {
        let path = &self.config.path;
        if let Some(mode) = self.mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(
                |error| {
                    ModuleError::Other(format!(
                        "cannot set the mode of {}: {error}",
                        path.display()
                    ))
                },
            )?;
        }
        tracing::info!(module = %module, path = %path.display(), socket_type = ?self.config.socket_type, "listening");
        Ok(())
    }

    async fn serve_datagrams(&self, context: &mut ModuleContext) -> Result<(), ModuleError> {
        let module = context.name().to_string();
        let path = &self.config.path;
        let bound = std::os::unix::net::UnixDatagram::bind(path).map_err(|error| {
            ModuleError::Other(format!("cannot listen on {}: {error}", path.display()))
        })?;
        let socket = socket2::Socket::from(OwnedFd::from(bound));
        // Unix datagram sockets make their senders wait rather than drop;
        // the count is asked for anyway, in case a kernel drops.
        let _ = count_kernel_drops(&socket);
        socket
            .set_nonblocking(true)
            .map_err(|error| ModuleError::Other(error.to_string()))?;
        self.ready(&module)?;
        let socket = registered(socket).map_err(|error| ModuleError::Other(error.to_string()))?;
        let outbox = context.outgoing("outbox");
        let (stop, abort) = (context.stopping(), context.aborting());
        receive_all(
            socket,
            &module,
            self.config.max_datagram,
            outbox,
            stop,
            abort,
        )
        .await;
        Ok(())
    }

    async fn serve_stream(&self, context: &mut ModuleContext) -> Result<(), ModuleError> {
        let module = context.name().to_string();
        let path = &self.config.path;
        let listener = tokio::net::UnixListener::bind(path).map_err(|error| {
            ModuleError::Other(format!("cannot listen on {}: {error}", path.display()))
        })?;
        self.ready(&module)?;
        let outbox = context.outgoing("outbox");
        let (stop, abort) = (context.stopping(), context.aborting());
        let counters = Arc::new(Counters::new(&module));
        let cutting: SharedCutting = Arc::new(ArcSwap::from_pointee(self.cutting.clone()));
        let registry = Registry::new(&module, None);
        let mut clients: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        let mut accepted = 0u64;
        loop {
            clients.retain(|client| !client.is_finished());
            if clients.len() >= self.config.max_connections {
                registry.make_room(true);
                tokio::select! {
                    _ = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
            let stream = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match stream {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(module = %module, %error, "cannot accept; trying again in 50 ms");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            accepted += 1;
            let client = Client {
                module: module.clone(),
                peer: format!("{} #{accepted}", path.display()),
                framer: self.cutting.framer(),
                cutting: cutting.clone(),
                outbox: outbox.clone(),
                stop: stop.clone(),
                abort: abort.clone(),
                counters: counters.clone(),
                grouper: None,
            };
            let presence = registry.join();
            clients.push(tokio::task::spawn_local(client.serve(stream, presence)));
        }
        drop(outbox);
        for client in clients {
            let _ = client.await;
        }
        tracing::info!(
            module = %module,
            connections = accepted,
            events = counters.events.total(),
            truncated = counters.truncated.total(),
            dropped = counters.dropped.total(),
            incomplete = counters.incomplete.total(),
            malformed = counters.malformed.total(),
            evicted = registry.evicted(),
            "input totals"
        );
        Ok(())
    }
}

impl Module for UnixInput {
    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        Box::pin((*self).serve(context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_no_socket_is_refused_and_a_stale_socket_replaced() {
        let dir = std::env::temp_dir().join(format!("wishbone-unix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("regular");
        std::fs::write(&file, b"keep me").unwrap();
        let error = occupied(&file).unwrap_err();
        assert!(error.contains("is not a socket"), "{error}");
        assert!(occupied(&dir.join("new.sock")).is_ok());
        assert!(
            occupied(&dir.join("missing/new.sock"))
                .unwrap_err()
                .contains("not a directory")
        );
        let socket = dir.join("stale.sock");
        drop(std::os::unix::net::UnixDatagram::bind(&socket).unwrap());
        clear_stale(&socket, SocketType::Datagram).unwrap();
        assert!(!socket.exists(), "a socket nobody listens on is replaced");
        let live = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
        let error = clear_stale(&socket, SocketType::Datagram).unwrap_err();
        assert!(error.contains("another process listens"), "{error}");
        drop(live);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
