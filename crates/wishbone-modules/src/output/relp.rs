//! `wishbone.output.relp`: a RELP client. Each event goes out as one
//! `syslog` frame, and counts as delivered when the server answers it
//! `200 OK`.
//!
//! The text `wishbone show --docs wishbone.output.relp` prints is [`DOCS`].
//! Connecting, backoff, the locked inbox while down and what happens to
//! events then are the shell's (`output/shell.rs`); what was sent and not
//! answered is the delivery core's ([`super::Delivery`]). The frames are
//! [`crate::relp`]'s. The core counts positions as a stream of lines
//! (each event's bytes and a delimiter); each frame records where its
//! event ends in that stream, and an answer acknowledges up to there.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use wishbone_runtime::{ArgumentError, Arguments, Module, ModuleKind, Parcel, QueueSpec};

use super::Stall;
use super::shell::{Ended, Output, OutputState, Settings, Transport, shared_arguments_docs};
use super::socket::Socket;
use crate::config::{host_name, peer_port};
use crate::relp::{self, Frame};
use crate::tls::{self, TlsArguments};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = concat!(
    r#"wishbone.output.relp: events to a RELP server (such as rsyslog's imrelp), one syslog frame each.

Queues
  inbox      events to deliver
  failed     with `failed: true`, events it could not deliver
  success    with `success: true`, events the server answered 200

Arguments (default)
  host               server to connect to, an IP address or host name ("localhost")
  port               server's port, 1 to 65535 (2514)
  window             frames sent and not yet answered, at most (128)
"#,
    crate::tls_arguments_docs!(),
    shared_arguments_docs!(),
    r#"
Delivery
  An event counts as delivered once the server answered its frame `200 OK`:
  the server program has taken it (what that means is the server's: an
  rsyslog imrelp whose ruleset has `queue.type="Direct"` answers once its
  action wrote it; wishbone.input.relp once the event is safe downstream).
  An answer other than 200, no answer within `timeout`, or a broken session
  ends the session: every frame not answered is sent again on the next one
  (at least once: the server may see an event twice, counted as `resent`),
  or with `failed: true` goes to `failed`. While the server is down,
  `inbox` is locked so a round robin routes around this output. Events
  from a write-ahead buffer are acknowledged to it when answered, and
  failed back to it when not.

Example
  modules:
    output:
      module: wishbone.output.relp
      arguments:
        host: 127.0.0.1
        port: 2514
"#
);

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.output.relp",
    aliases: &[],
    description: "events to a RELP server; delivered when it answers",
    docs: DOCS,
    queues: QueueSpec::SINK,
    build,
};

/// Largest answer accepted from a server: an `open` answer with offers.
const MAX_ANSWER: usize = 64 * 1024;
/// How often a session with frames in flight checks for a silent server.
const STALL_CHECK: Duration = Duration::from_millis(100);

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Server to connect to.
    #[serde(default = "crate::config::default_peer_host")]
    pub host: String,
    /// Server's port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Frames sent and not yet answered.
    #[serde(default = "default_window")]
    pub window: usize,
    /// TLS to the server.
    #[serde(default)]
    pub tls: Option<TlsArguments>,
}

fn default_port() -> u16 {
    2514
}

fn default_window() -> usize {
    128
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let (settings, own) = Settings::split(arguments)?;
    let config: Config = own.deserialize()?;
    host_name("host", &config.host)?;
    peer_port("port", config.port)?;
    if config.window == 0 {
        return Err(ArgumentError::new("`window` must be at least 1"));
    }
    let tls = config
        .tls
        .as_ref()
        .map(|arguments| tls::connector(arguments, &config.host))
        .transpose()?;
    Ok(Box::new(Output {
        settings,
        transport: Server {
            host: config.host,
            port: config.port,
            window: config.window,
            tls,
        },
    }))
}

/// The server the output connects to.
struct Server {
    host: String,
    port: u16,
    window: usize,
    /// With `tls`: the handshake over each connection.
    tls: Option<tls::Connector>,
}

/// An open session.
struct Session {
    reader: ReadHalf<Socket<TcpStream>>,
    writer: WriteHalf<Socket<TcpStream>>,
    /// What the server sent and was not read as a frame yet.
    received: BytesMut,
    next_txnr: u32,
}

impl Session {
    /// The next whole frame the server sends.
    async fn frame(&mut self) -> Result<Frame, String> {
        loop {
            if let Some(frame) =
                relp::decode(&mut self.received, MAX_ANSWER).map_err(|error| error.to_string())?
            {
                return Ok(frame);
            }
            match self.reader.read_buf(&mut self.received).await {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(_) => {}
                Err(error) => return Err(error.to_string()),
            }
        }
    }
}

/// Frames sent on a session and not answered yet, oldest first: each
/// frame's transaction number and where its event ends in the delivery
/// core's positions.
#[derive(Debug, Default)]
pub struct InFlight {
    frames: VecDeque<(u32, u64)>,
    /// Where the next event ends, less its length: the positions so far.
    position: u64,
}

impl InFlight {
    /// A frame `txnr` for an event of `length` bytes followed by a
    /// delimiter of `delimiter` bytes: where it ends.
    pub fn sent(&mut self, txnr: u32, length: usize, delimiter: usize) -> u64 {
        self.position += (length + delimiter) as u64;
        self.frames.push_back((txnr, self.position));
        self.position
    }

    /// The server answered `txnr` with `code`: the position now
    /// acknowledged, or why the session cannot go on.
    pub fn answered(&mut self, txnr: u32, code: Option<u16>) -> Result<u64, String> {
        let Some(&(oldest, end)) = self.frames.front() else {
            return Err(format!("an answer to {txnr}, which was not sent"));
        };
        if oldest != txnr {
            return Err(format!("an answer to {txnr} where {oldest} was due"));
        }
        if code != Some(200) {
            return Err(format!("the server refused an event (code {code:?})"));
        }
        self.frames.pop_front();
        Ok(end)
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl Transport for Server {
    type Connection = Session;

    fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    async fn connect(&mut self) -> Result<Session, String> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|error| error.to_string())?;
        let _ = stream.set_nodelay(true);
        let socket = Socket::connect(stream, self.tls.as_ref()).await?;
        let (reader, writer) = tokio::io::split(socket);
        let mut session = Session {
            reader,
            writer,
            received: BytesMut::new(),
            next_txnr: 1,
        };
        let mut open = BytesMut::new();
        relp::encode(
            &mut open,
            session.next_txnr,
            "open",
            relp::OFFERS.as_bytes(),
        );
        session
            .writer
            .write_all(&open)
            .await
            .map_err(|error| error.to_string())?;
        let answer = session.frame().await?;
        if &answer.command[..] != b"rsp" || answer.txnr != 1 {
            return Err("the server did not answer the session's open".into());
        }
        if relp::response_code(&answer.data) != Some(200) {
            return Err(format!(
                "the server refused the session: {}",
                String::from_utf8_lossy(&answer.data)
            ));
        }
        session.next_txnr = relp::next_txnr(session.next_txnr);
        Ok(session)
    }

    async fn pump(
        &mut self,
        mut session: Session,
        state: &mut OutputState,
        abort: &CancellationToken,
    ) -> Ended {
        let (held, resent) = state.delivery.begin(Instant::now());
        state.resending(resent);
        let mut waiting: Option<Parcel> = (!held.is_empty()).then_some(Parcel::Events(held));
        let mut in_flight = InFlight::default();
        let mut out = BytesMut::new();
        let mut check = tokio::time::interval(STALL_CHECK);
        let ended = loop {
            if in_flight.len() < self.window
                && let Some(mut parcel) = waiting.take()
            {
                let room = self.window - in_flight.len();
                let rest = parcel.split_off(room);
                waiting = (!rest.is_empty()).then_some(rest);
                self.frames(parcel, &mut session, &mut in_flight, &mut out, state);
                let written =
                    tokio::time::timeout(state.timeout, session.writer.write_all(&out)).await;
                out.clear();
                match written {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => break Ended::Lost(error.to_string()),
                    Err(_) => break Ended::Lost("the server stopped reading".into()),
                }
            }
            if waiting.is_none() && !state.inbox_open && state.delivery.is_settled() {
                close(&mut session, state.timeout).await;
                break Ended::Drained;
            }
            let room = waiting.is_none() && in_flight.len() < self.window;
            tokio::select! {
                biased;
                _ = abort.cancelled() => break Ended::Aborted,
                read = session.reader.read_buf(&mut session.received) => {
                    match read {
                        Ok(0) => break Ended::Lost("the server closed the connection".into()),
                        Err(error) => break Ended::Lost(error.to_string()),
                        Ok(_) => {}
                    }
                    let mut acknowledged = None;
                    let mut broken = None;
                    'frames: loop {
                        let frame = match relp::decode(&mut session.received, MAX_ANSWER) {
                            Ok(Some(frame)) => frame,
                            Ok(None) => break 'frames,
                            Err(error) => {
                                broken = Some(error.to_string());
                                break 'frames;
                            }
                        };
                        if &frame.command[..] == b"serverclose" {
                            broken = Some("the server closed the session".into());
                            break 'frames;
                        }
                        if &frame.command[..] != b"rsp" {
                            broken = Some("the server sent something other than an answer".into());
                            break 'frames;
                        }
                        match in_flight.answered(frame.txnr, relp::response_code(&frame.data)) {
                            Ok(end) => acknowledged = Some(end),
                            Err(reason) => {
                                broken = Some(reason);
                                break 'frames;
                            }
                        }
                    }
                    if let Some(end) = acknowledged {
                        state.acknowledge(end).await;
                    }
                    if let Some(reason) = broken {
                        break Ended::Lost(reason);
                    }
                }
                parcel = state.inbox.recv_parcel(), if state.inbox_open && room => match parcel {
                    None => state.inbox_open = false,
                    Some(parcel) => waiting = Some(parcel),
                },
                _ = check.tick(), if !in_flight.is_empty() => {
                    if state.delivery.stall(Instant::now(), state.timeout) == Some(Stall::Stalled) {
                        break Ended::Lost(format!("no answer for {:?}", state.timeout));
                    }
                }
            }
        };
        // A parcel taken from the inbox and not yet written is recorded as
        // never answered: the session's end holds it for the next one.
        if let Some(parcel) = waiting {
            state.delivery.record_unsent(parcel);
        }
        ended
    }
}

impl Server {
    /// Encodes a parcel as `syslog` frames into `out` and records each
    /// event with where it ends.
    fn frames(
        &self,
        parcel: Parcel,
        session: &mut Session,
        in_flight: &mut InFlight,
        out: &mut BytesMut,
        state: &mut OutputState,
    ) {
        let now = Instant::now();
        match parcel {
            Parcel::Lines(lines) => {
                let delimiter = lines.delimiter().len();
                for line in lines.iter() {
                    relp::encode(out, session.next_txnr, "syslog", line);
                    in_flight.sent(session.next_txnr, line.len(), delimiter);
                    session.next_txnr = relp::next_txnr(session.next_txnr);
                }
                // Recorded whole: the core counts each line's bytes and
                // delimiter, as `InFlight::sent` does.
                state.delivery.record_lines(lines, None, now);
            }
            parcel => {
                for event in parcel.into_events() {
                    relp::encode(out, session.next_txnr, "syslog", event.data());
                    let end = in_flight.sent(session.next_txnr, event.len(), 1);
                    session.next_txnr = relp::next_txnr(session.next_txnr);
                    state.delivery.record_event(event, end, now);
                }
            }
        }
    }
}

/// Ends a drained session the way the protocol asks: `close`, its answer.
async fn close(session: &mut Session, timeout: Duration) {
    let mut frame = BytesMut::new();
    relp::encode(&mut frame, session.next_txnr, "close", b"");
    let _ = tokio::time::timeout(timeout, async {
        session.writer.write_all(&frame).await.ok()?;
        session.frame().await.ok()
    })
    .await;
    let _ = session.writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_acknowledge_in_order_and_anything_else_ends_the_session() {
        let mut in_flight = InFlight::default();
        assert_eq!(in_flight.sent(2, 5, 1), 6);
        assert_eq!(in_flight.sent(3, 0, 1), 7);
        assert_eq!(in_flight.sent(4, 9, 1), 17);
        assert_eq!(in_flight.answered(2, Some(200)), Ok(6));
        assert!(
            in_flight
                .answered(4, Some(200))
                .unwrap_err()
                .contains("3 was due")
        );
        assert!(
            in_flight
                .answered(3, Some(500))
                .unwrap_err()
                .contains("refused")
        );
        assert_eq!(in_flight.answered(3, Some(200)), Ok(7));
        assert_eq!(in_flight.len(), 1);
        assert_eq!(in_flight.answered(4, Some(200)), Ok(17));
        assert!(in_flight.answered(5, Some(200)).is_err(), "never sent");
    }
}
