//! `wishbone.input.tcp`: accepts TCP connections and turns each delimited
//! line into an event on `outbox`.
//!
//! The text `wishbone show --docs wishbone.input.tcp` prints is [`DOCS`].
//! Each connection is served by its own task with its own framer
//! (`client.rs`, shared with the unix input): it reads up to 256 KiB at a
//! time and sends the complete lines of one read as one parcel of
//! [`Lines`](wishbone_runtime::Lines), still in the read's buffer. When
//! `outbox` is full the task waits before reading again, so a slow
//! pipeline slows the senders through TCP's own flow control instead of
//! buffering without bound.

use std::sync::Arc;

use arc_swap::ArcSwap;
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_runtime::{
    ArgumentError, Arguments, ListenAddress, Module, ModuleContext, ModuleError, ModuleKind,
    QueueSpec,
};

use super::client::{Client, Counters, Cutting, SharedCutting, follow_updates};
use crate::config::default_delimiter;
use wishbone_codecs::framing::Framing;
use wishbone_codecs::lines::Overlong;
use wishbone_codecs::multiline::{self, Grouper};
use wishbone_listen::Listening;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = concat!(
    r#"wishbone.input.tcp: events from TCP clients, one per delimited line.

Queues
  outbox     every line read, without its delimiter

Arguments (default)
  address          interface to listen on, an IP address or host name ("0.0.0.0")
  port             port to listen on (19283); 0 picks a free port, logged at start
  delimiter        what ends an event ("\n")
  framing          newline | octet_counted | auto (newline): events end at
                   the delimiter, or each is its length, a space and that
                   many bytes (RFC 6587 octet counting, rsyslog's
                   TCP_Framing="octet-counted", `logger --octet-count`);
                   auto decides per connection: octet counting when the
                   first byte is a digit 1-9, else the delimiter
  max_connections  clients served at once (0: half the process's open-file
                   limit, `ulimit -n`, logged at start); further clients
                   wait in the listen backlog until one leaves, or is
                   closed to make room (Slots, below)
  reuse_port       share the port with other processes, SO_REUSEPORT (false)
  max_line_length  longest event in bytes (1048576); memory per client never
                   grows past it
  overlong_lines   what to do with a longer line or frame: truncate | drop
                   (truncate); either way it is counted and logged once per
                   connection
  multiline        (none) join each client's lines into one event: java |
                   python | go, or {start_pattern, condition_pattern, mode,
                   timeout_ms, max_bytes}, as wishbone.input.file takes it
                   (`wishbone show --docs wishbone.input.file`); a group
                   open when its client leaves, or at a stop, is sent as
                   it is
"#,
    wishbone_tls::tls_arguments_docs!(),
    wishbone_listen::slots_docs!(),
    wishbone_listen::threads_docs!(),
    r#"
A client that ends without a final delimiter still delivers its last line;
with octet counting, a frame cut short by the end is counted as incomplete.
A length that is not one (not 1 to 10 digits and a space, or a leading zero)
closes that connection with the reason logged, counted as malformed; the
frames before it are delivered.
When the server stops, a line a client had not finished is counted as
incomplete and not delivered.

A reload (SIGHUP) that changes only delimiter, framing, max_line_length,
overlong_lines, max_connections, tls or frame_timeout keeps the input, its
socket and its clients' connections: each client cuts what it reads next
with the new values (a line under way included); new clients get the new
tls and slots, frames begun from then on the new frame_timeout.

When the process runs out of file descriptors (or memory) to accept with,
the input pauses accepting (50 ms, doubling up to 1 s) and logs it once per
outage; connections already open are served meanwhile.

Metrics (module.<name>.<counter>)
  connections      clients accepted
  events           lines put on outbox
  truncated        lines cut to max_line_length
  dropped          lines dropped for being longer than max_line_length
  incomplete       unfinished lines of clients still connected at a stop,
                   or closed (frame_timeout, or to make room)
  malformed        connections closed for a malformed frame length
  multiline_cut    multi-line groups cut at max_bytes
  evicted          clients closed to make room for a new one
  timed_out        clients closed for a line not finished in frame_timeout
  accept_failures  accepts that failed for want of descriptors or memory
  handshake_failures  with tls: clients refused because their handshake
                   failed (logged with the reason, the first and every
                   hundredth)

Example
  modules:
    input:
      module: wishbone.input.tcp
      arguments:
        port: 10000
"#
);

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.input.tcp",
    aliases: &[],
    description: "events from TCP clients, one per delimited line",
    docs: DOCS,
    queues: QueueSpec::SOURCE,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What ends an event.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// Longest event in bytes; bounds memory per client.
    #[serde(default = "default_max_line_length")]
    pub max_line_length: usize,
    /// What to do with a longer line.
    #[serde(default)]
    pub overlong_lines: Overlong,
    /// How events are cut from the stream.
    #[serde(default)]
    pub framing: Framing,
    /// How lines are joined into multi-line events, per connection.
    #[serde(default)]
    pub multiline: Option<multiline::Config>,
}

/// The port it listens on when `port` is not given.
pub const DEFAULT_PORT: u16 = 19283;

fn default_max_line_length() -> usize {
    1024 * 1024
}

/// The listening arguments and the input's own, checked.
fn configured(arguments: &Arguments) -> Result<(Listening, Config), ArgumentError> {
    let (listening, own) = Listening::split(arguments, DEFAULT_PORT)?;
    let config: Config = own.deserialize()?;
    if config.max_line_length == 0 {
        return Err(ArgumentError::field(
            "max_line_length",
            "must be at least 1",
        ));
    }
    Ok((listening, config))
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let (listening, config) = configured(arguments)?;
    let cutting = Cutting::of_config(&config)?;
    let multiline = multiline::Config::rules_of(config.multiline.as_ref())
        .map_err(|error| ArgumentError::field("multiline", error))?;
    Ok(Box::new(TcpInput {
        cutting,
        listening,
        multiline,
    }))
}

/// The module: a listener and one task per client.
pub struct TcpInput {
    cutting: Cutting,
    listening: Listening,
    /// With `multiline`: how each client's lines are joined.
    multiline: Option<multiline::Rules>,
}

impl Module for TcpInput {
    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        Box::pin(self.serve(context))
    }

    fn listens(&self) -> Option<ListenAddress> {
        Some(self.listening.address())
    }

    /// A reload that changes only how lines are cut, or the listener's
    /// live arguments (`wishbone_listen::LIVE`), keeps the input, its
    /// listening socket and its clients' connections.
    fn live_arguments(&self) -> &'static [&'static str] {
        &LIVE_ARGUMENTS
    }
}

/// How lines are cut, and the listener's live arguments.
const LIVE_ARGUMENTS: [&str; 7] = [
    "max_line_length",
    "delimiter",
    "overlong_lines",
    "framing",
    wishbone_listen::LIVE[0],
    wishbone_listen::LIVE[1],
    wishbone_listen::LIVE[2],
];

impl Cutting {
    fn of_config(config: &Config) -> Result<Self, ArgumentError> {
        Cutting::of(
            config.framing,
            &config.delimiter,
            config.max_line_length,
            config.overlong_lines,
        )
    }
}

impl TcpInput {
    async fn serve(self, mut context: ModuleContext) -> Result<(), ModuleError> {
        let outbox = context.outgoing("outbox");
        let stop = context.stopping();
        let counters = Arc::new(Counters::new(context.name()));
        let cutting: SharedCutting = Arc::new(ArcSwap::from_pointee(self.cutting.clone()));
        let following = tokio::task::spawn_local(follow_updates(
            context.name().to_string(),
            context.updates(),
            cutting.clone(),
            |arguments| configured(arguments).and_then(|(_, config)| Cutting::of_config(&config)),
        ));
        let accepted = self
            .listening
            .serve_spread(&mut context, |peer, context| {
                let client = Client {
                    module: context.name().to_string(),
                    peer: peer.to_string(),
                    framer: self.cutting.framer(),
                    cutting: cutting.clone(),
                    outbox: outbox.clone(),
                    stop: stop.clone(),
                    abort: context.aborting(),
                    counters: counters.clone(),
                    grouper: self.multiline.clone().map(Grouper::new),
                };
                move |socket, presence| client.serve(socket, presence)
            })
            .await;
        following.abort();
        let accepted = accepted?;
        tracing::info!(
            module = %context.name(),
            connections = accepted.connections,
            events = counters.events.total(),
            truncated = counters.truncated.total(),
            dropped = counters.dropped.total(),
            incomplete = counters.incomplete.total(),
            malformed = counters.malformed.total(),
            multiline_cut = counters.multiline_cut.total(),
            accept_failures = accepted.accept_failures,
            handshake_failures = accepted.handshake_failures,
            evicted = accepted.evicted,
            timed_out = accepted.timed_out,
            "input totals"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_that_is_no_address_or_host_name_is_refused() {
        let built = |yaml: &str| build(&Arguments::from_yaml(yaml).unwrap()).map(drop);
        assert!(built("{address: 127.0.0.1, port: 0}").is_ok());
        assert!(built("{address: localhost}").is_ok());
        let error = built("{address: 'not an address'}")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`address` must be an IP address"), "{error}");
    }
}
