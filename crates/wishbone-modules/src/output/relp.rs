//! `wishbone.output.relp`: a RELP client. Each event goes out as one
//! `syslog` frame, and counts as delivered when the server answers it
//! `200 OK`.
//!
//! The text `wishbone show --docs wishbone.output.relp` prints is [`DOCS`].
//! Connecting, backoff, the pump and what happens to events while the
//! server is down are `wishbone-output`'s. Each event is one message, and
//! the server's answers acknowledge messages in order: the `n`th `200`
//! answer on a session acknowledges its first `n` messages. The frames are
//! [`wishbone_codecs::relp`]'s.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use bytes::BytesMut;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use wishbone_output::arguments::peer_port;
use wishbone_output::shared_arguments_docs;
use wishbone_output::tls::{self, Socket, TlsArguments};
use wishbone_output::{Connection, Heard, OnStall, Output, Sent, Settings, Transport};
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleKind, Parcel, QueueSpec, host_name,
};

use wishbone_codecs::relp::{self, Frame};

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
  window             frames sent and not yet answered, at most (128); while
                     some are unanswered, more are written once a quarter
                     of the window is free, in one write
"#,
    wishbone_tls::tls_arguments_docs!(),
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

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Server to connect to.
    #[serde(default = "wishbone_output::arguments::default_peer_host")]
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
        return Err(ArgumentError::field("window", "must be at least 1"));
    }
    let tls = config
        .tls
        .as_ref()
        .map(|arguments| tls::connector(arguments, &config.host))
        .transpose()?;
    Ok(Box::new(Output {
        settings,
        transport: RelpTransport {
            host: config.host,
            port: config.port,
            window: config.window,
            tls,
        },
    }))
}

/// The server the output connects to.
struct RelpTransport {
    host: String,
    port: u16,
    window: usize,
    /// With `tls`: the handshake over each connection.
    tls: Option<tls::Connector>,
}

/// An open session.
struct RelpConnection {
    /// The TCP socket under both halves, open as long as they are.
    fd: RawFd,
    reader: ReadHalf<Socket<TcpStream>>,
    writer: WriteHalf<Socket<TcpStream>>,
    /// What the server sent and was not read as a frame yet.
    received: BytesMut,
    next_txnr: u32,
    window: usize,
    in_flight: Unanswered,
    /// Messages the server answered `200` on this session.
    answered: u64,
    /// Frames encoded for the next write.
    out: BytesMut,
}

impl RelpConnection {
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

    /// Encodes one `syslog` frame.
    fn encode(&mut self, event: &[u8]) {
        relp::encode(&mut self.out, self.next_txnr, "syslog", event);
        self.in_flight.sent(self.next_txnr);
        self.next_txnr = relp::next_txnr(self.next_txnr);
    }

    /// Takes in the whole frames received: answers in order move
    /// `answered`; anything else breaks the session.
    fn take_answers(&mut self) -> Result<(), String> {
        while let Some(frame) =
            relp::decode(&mut self.received, MAX_ANSWER).map_err(|error| error.to_string())?
        {
            match &frame.command[..] {
                b"rsp" => {}
                b"serverclose" => return Err("the server closed the session".into()),
                _ => return Err("the server sent something other than an answer".into()),
            }
            self.in_flight
                .answered(frame.txnr, relp::response_code(&frame.data))?;
            self.answered += 1;
        }
        Ok(())
    }
}

/// The transaction numbers of the frames sent on a session and not
/// answered yet, oldest first.
#[derive(Debug, Default)]
pub struct Unanswered {
    frames: VecDeque<u32>,
}

impl Unanswered {
    /// A frame `txnr` was sent.
    pub fn sent(&mut self, txnr: u32) {
        self.frames.push_back(txnr);
    }

    /// The server answered `txnr` with `code`: fine, or why the session
    /// cannot go on.
    pub fn answered(&mut self, txnr: u32, code: Option<u16>) -> Result<(), String> {
        let Some(&oldest) = self.frames.front() else {
            return Err(format!("an answer to {txnr}, which was not sent"));
        };
        if oldest != txnr {
            return Err(format!("an answer to {txnr} where {oldest} was due"));
        }
        if code != Some(200) {
            return Err(format!("the server refused an event (code {code:?})"));
        }
        self.frames.pop_front();
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl Transport for RelpTransport {
    type Connection = RelpConnection;

    fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    async fn connect(&mut self) -> Result<RelpConnection, String> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|error| error.to_string())?;
        let _ = stream.set_nodelay(true);
        let fd = stream.as_raw_fd();
        let socket = Socket::connect(stream, self.tls.as_ref()).await?;
        let (reader, writer) = tokio::io::split(socket);
        let mut session = RelpConnection {
            fd,
            reader,
            writer,
            received: BytesMut::new(),
            next_txnr: 1,
            window: self.window,
            in_flight: Unanswered::default(),
            answered: 0,
            out: BytesMut::new(),
        };
        relp::encode(
            &mut session.out,
            session.next_txnr,
            "open",
            relp::OFFERS.as_bytes(),
        );
        let open = session.out.split();
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
}

impl Connection for RelpConnection {
    /// What the window has free; while frames are in flight, nothing until
    /// a quarter of it is: answers come back a few at a time, and writing
    /// as few frames as each frees would cost both sides a system call per
    /// handful of events (the silly window of TCP, avoided the same way).
    fn room(&self, in_flight: usize) -> usize {
        worth_writing(self.window, in_flight)
    }

    /// Encodes each event as a `syslog` frame, records it as a message and
    /// writes them all: if the write fails, the session ends and its
    /// messages are unanswered.
    async fn send(&mut self, parcels: Vec<Parcel>, sent: &mut Sent<'_>) -> Result<(), String> {
        for parcel in parcels {
            match &parcel {
                Parcel::Lines(lines) => lines.iter().for_each(|line| self.encode(line)),
                Parcel::Events(batch) => batch.iter().for_each(|event| self.encode(event.data())),
            }
            sent.messages(parcel);
        }
        let out = self.out.split();
        match tokio::time::timeout(sent.timeout(), self.writer.write_all(&out)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("the server stopped reading".into()),
        }
    }

    /// Reads answers. Each read acknowledges what it read at once
    /// (`TCP_QUICKACK`): this side may be waiting for more answers before
    /// it writes (see `room`), and a server that holds back small writes
    /// until the last is acknowledged (Nagle's algorithm, rsyslog's) would
    /// otherwise wait for the delayed acknowledgement, 40 ms, each time.
    async fn heard(&mut self) -> Result<Heard, String> {
        loop {
            match self.reader.read_buf(&mut self.received).await {
                Ok(0) => return Err("the server closed the connection".into()),
                Err(error) => return Err(error.to_string()),
                Ok(_) => {}
            }
            // SAFETY: the socket is open while `reader` is.
            let socket = unsafe { BorrowedFd::borrow_raw(self.fd) };
            let _ = socket2::SockRef::from(&socket).set_quickack(true);
            let before = self.answered;
            self.take_answers()?;
            if self.answered > before {
                return Ok(Heard::Acknowledged(self.answered));
            }
        }
    }

    fn on_stall(&self) -> OnStall {
        OnStall::Reconnect
    }

    /// Ends a drained session the way the protocol asks: `close`, its
    /// answer.
    async fn close(&mut self, timeout: Duration) {
        let mut frame = BytesMut::new();
        relp::encode(&mut frame, self.next_txnr, "close", b"");
        let _ = tokio::time::timeout(timeout, async {
            self.writer.write_all(&frame).await.ok()?;
            self.frame().await.ok()
        })
        .await;
        let _ = self.writer.shutdown().await;
    }

    /// The answers taken in before the session broke still count.
    async fn finish(&mut self, _lost: bool) -> Option<u64> {
        Some(self.answered)
    }
}

/// Room in a window of `window` frames with `in_flight` unanswered: all of
/// it once a quarter or more is free, or nothing is in flight; else none.
fn worth_writing(window: usize, in_flight: usize) -> usize {
    let room = window.saturating_sub(in_flight);
    if in_flight > 0 && room < window.div_ceil(4) {
        0
    } else {
        room
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_wait_for_a_quarter_of_the_window_unless_none_are_in_flight() {
        assert_eq!(worth_writing(1024, 0), 1024);
        assert_eq!(worth_writing(1024, 768), 256, "a quarter free");
        assert_eq!(worth_writing(1024, 769), 0);
        assert_eq!(worth_writing(1024, 1024), 0);
        assert_eq!(worth_writing(1, 0), 1);
        assert_eq!(worth_writing(1, 1), 0);
        assert_eq!(worth_writing(5, 3), 2, "a quarter of 5 is 2 frames");
        assert_eq!(worth_writing(5, 4), 0);
    }

    #[test]
    fn answers_acknowledge_in_order_and_anything_else_ends_the_session() {
        let mut in_flight = Unanswered::default();
        for txnr in [2, 3, 4] {
            in_flight.sent(txnr);
        }
        assert_eq!(in_flight.answered(2, Some(200)), Ok(()));
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
        assert_eq!(in_flight.answered(3, Some(200)), Ok(()));
        assert_eq!(in_flight.len(), 1);
        assert_eq!(in_flight.answered(4, Some(200)), Ok(()));
        assert!(in_flight.answered(5, Some(200)).is_err(), "never sent");
        assert!(in_flight.is_empty());
    }
}
