//! One "connection" of the HTTP output, as the pump sees it: up to
//! `concurrency` HTTP/1.1 connections to the store, the batch being
//! filled, and the requests in flight, whose answers are taken in the
//! order they were sent (so that an acknowledgement says "everything up to
//! here"). The first request that fails ends it all: the shell waits its
//! backoff and sends again what was not acknowledged.
//!
//! Every request starts in [`Connection::send`]: with new events once the
//! batch is full, or with none when [`Connection::heard`] said the batch's
//! time is up. `heard` only waits: for answers, and for that time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use regex::bytes::Regex;
use tokio::net::TcpStream;
use tokio::time::Instant;
use wishbone_codecs::ndjson;
use wishbone_output::{Connection, Heard, Sent};
use wishbone_runtime::Parcel;
use wishbone_tls::Socket;

use super::{Endpoint, HttpMetrics};
use crate::batching::{Answer, Batching, Verdict};

/// The longest `Retry-After` waited for.
const MOST_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Bytes of an error answer kept for the log.
const ANSWER_SHOWN: usize = 200;

/// Opens one HTTP/1.1 connection to the store (TLS included): its sender,
/// and the task that drives it.
pub(super) async fn open(
    endpoint: &Endpoint,
) -> Result<(SendRequest<Full<Bytes>>, tokio::task::JoinHandle<()>), String> {
    let (host, port) = &endpoint.address;
    let stream = TcpStream::connect((host.as_str(), *port))
        .await
        .map_err(|error| error.to_string())?;
    let _ = stream.set_nodelay(true);
    let socket = Socket::connect(stream, endpoint.tls.as_ref()).await?;
    let (sender, connection) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(socket))
        .await
        .map_err(|error| error.to_string())?;
    let driver = tokio::task::spawn_local(async move {
        let _ = connection.await;
    });
    Ok((sender, driver))
}

/// The batch being filled.
struct Pending {
    body: Vec<Bytes>,
    events: usize,
    bytes: usize,
    /// The number of its last message.
    last: u64,
    /// When it goes even if not full (`batch_timeout_ms` after its first
    /// event).
    due: Instant,
}

/// What a request came to.
struct Done {
    answer: Answer,
    /// The wait the answer asked for.
    wait: Option<Duration>,
    /// Words for the log.
    shown: String,
    /// The connection, for the next request, when it can carry one.
    sender: Option<SendRequest<Full<Bytes>>>,
    events: usize,
    last: u64,
    seconds: f64,
}

/// A request from its sending to the end of its answer.
type Answering = Pin<Box<dyn Future<Output = Done>>>;

/// The store, as one connection of the pump.
pub(super) struct HttpConnection {
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) metrics: Option<Arc<HttpMetrics>>,
    /// What outlives this connection; the transport takes it back.
    pub(super) learned: Learned,
    /// Connections ready for a request.
    idle: Vec<SendRequest<Full<Bytes>>>,
    drivers: Drivers,
    pending: Option<Pending>,
    requests: FuturesOrdered<Answering>,
    /// The first request that failed: the connection ends at this
    /// instant, with these words (a `Retry-After` makes it later).
    failure: Option<(Instant, String)>,
    /// The failure was the data's, not the store's: its events go again
    /// at once, in smaller batches, on the same connections.
    again_at_once: bool,
}

/// What outlives a connection: how big the next batch is, and the
/// connections the last one left open.
pub(super) struct Learned {
    pub(super) batching: Batching,
    /// The events' average size so far, for `batch_max_bytes`.
    pub(super) average_bytes: usize,
    /// Connections the last one left open, sending again at once.
    pub(super) spare: Option<Spare>,
}

impl Learned {
    /// Nothing learned yet: batches as `batching` starts them.
    pub(super) fn new(batching: Batching) -> Self {
        Self {
            batching,
            average_bytes: 0,
            spare: None,
        }
    }

    /// What stands in for it while a connection has it: the batch size
    /// and the events' size, not the connections.
    pub(super) fn fresh(&self) -> Self {
        Self {
            batching: self.batching.clone(),
            average_bytes: self.average_bytes,
            spare: None,
        }
    }

    /// Events the next batch may hold, with batches of at most
    /// `batch_max_bytes`.
    fn room(&self, batch_max_bytes: usize) -> usize {
        let by_bytes = match self.average_bytes {
            0 => usize::MAX,
            average => (batch_max_bytes / average).max(1),
        };
        self.batching.limit().min(by_bytes)
    }

    /// Takes in the size of `events` events of `bytes` bytes.
    fn sized(&mut self, events: usize, bytes: usize) {
        if let Some(taken) = bytes.checked_div(events) {
            self.average_bytes = match self.average_bytes {
                0 => taken,
                average => (average * 7 + taken) / 8,
            }
            .max(1);
        }
    }
}

/// What an answer told.
enum Told {
    /// The store has every message up to this one.
    Delivered(u64),
    /// The store refused this message alone; the connection ends.
    Refused(u64, String),
    /// The request failed; the connection ends.
    Failed,
}

/// Connections to the store left open by an [`HttpConnection`] that ended
/// to send its events again at once (the store answered; only the data
/// was bad), for the next one to go on with.
pub(super) struct Spare {
    idle: Vec<SendRequest<Full<Bytes>>>,
    drivers: Drivers,
}

impl Spare {
    /// One connection, just opened.
    pub(super) fn opened(
        (sender, driver): (SendRequest<Full<Bytes>>, tokio::task::JoinHandle<()>),
    ) -> Self {
        Self {
            idle: vec![sender],
            drivers: Drivers(vec![driver]),
        }
    }

    /// The connections, if one of them is still open (the others are
    /// closed).
    pub(super) fn open(mut self) -> Option<Self> {
        self.idle.retain(|sender| !sender.is_closed());
        (!self.idle.is_empty()).then_some(self)
    }
}

/// The tasks that drive the open connections: dropped, they end, and
/// their connections close.
#[derive(Default)]
struct Drivers(Vec<tokio::task::JoinHandle<()>>);

impl Drivers {
    fn push(&mut self, driver: tokio::task::JoinHandle<()>) {
        self.0.retain(|driver| !driver.is_finished());
        self.0.push(driver);
    }

    fn abort(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

impl Drop for Drivers {
    fn drop(&mut self) {
        self.abort();
    }
}

impl HttpConnection {
    /// Over `spare`: a connection just opened, or those an earlier one
    /// left open.
    pub(super) fn new(
        endpoint: Arc<Endpoint>,
        metrics: Option<Arc<HttpMetrics>>,
        learned: Learned,
        spare: Spare,
    ) -> Self {
        Self {
            endpoint,
            metrics,
            learned,
            idle: spare.idle,
            drivers: spare.drivers,
            pending: None,
            requests: FuturesOrdered::new(),
            failure: None,
            again_at_once: false,
        }
    }

    /// What outlives the connection: connections left open when it ended
    /// to send again at once (otherwise they are closed).
    pub(super) fn into_learned(self) -> Learned {
        let mut learned = self.learned;
        if self.again_at_once && !self.idle.is_empty() {
            learned.spare = Some(Spare {
                idle: self.idle,
                drivers: self.drivers,
            });
        }
        learned
    }

    /// Whether the batch being filled goes now: it is full or due, and a
    /// request may start.
    fn ready(&self) -> bool {
        let Some(pending) = &self.pending else {
            return false;
        };
        let full = pending.events >= self.learned.room(self.endpoint.batch_max_bytes)
            || pending.bytes >= self.endpoint.batch_max_bytes;
        self.failure.is_none()
            && self.requests.len() < self.endpoint.concurrency
            && (full || pending.due <= Instant::now())
    }

    /// A connection for the next request: an idle one still open, or a new
    /// one. Cancelled, it loses nothing.
    async fn sender(&mut self) -> Result<SendRequest<Full<Bytes>>, String> {
        while let Some(sender) = self.idle.pop() {
            if !sender.is_closed() {
                return Ok(sender);
            }
        }
        let opening = open(&self.endpoint);
        let (sender, driver) = tokio::time::timeout(self.endpoint.timeout, opening)
            .await
            .map_err(|_| {
                format!(
                    "cannot connect: no answer within {:?}",
                    self.endpoint.timeout
                )
            })??;
        self.drivers.push(driver);
        Ok(sender)
    }

    /// Sends the batch being filled.
    async fn dispatch(&mut self) -> Result<(), String> {
        let mut sender = self.sender().await?;
        let Some(pending) = self.pending.take() else {
            self.idle.push(sender);
            return Ok(());
        };
        let request = self
            .build(pending.body)
            .map_err(|error| error.to_string())?;
        let (events, last) = (pending.events, pending.last);
        let deadline = Instant::now() + self.endpoint.timeout;
        let timeout = self.endpoint.timeout;
        // The endpoint, not a clone of its pattern: a clone of a Regex
        // starts with no search cache of its own.
        let endpoint = self.endpoint.clone();
        self.requests.push_back(Box::pin(async move {
            let sent_at = Instant::now();
            let answered = tokio::time::timeout_at(deadline, async move {
                match sender.send_request(request).await {
                    Err(error) => (Answer::NoAnswer, None, error.to_string(), None),
                    Ok(response) => {
                        let status = response.status();
                        let wait = retry_after(&response);
                        let (text, named) = read_answer(response, endpoint.bad_row.as_ref()).await;
                        let shown = format!("{status}: {text}");
                        let answer = Answer::Status(status.as_u16(), named);
                        (answer, wait, shown, Some(sender))
                    }
                }
            })
            .await;
            let (answer, wait, shown, sender) = answered.unwrap_or_else(|_| {
                let shown = format!("no answer in {timeout:?}");
                (Answer::NoAnswer, None, shown, None)
            });
            Done {
                answer,
                wait,
                shown,
                sender,
                events,
                last,
                seconds: sent_at.elapsed().as_secs_f64(),
            }
        }));
        Ok(())
    }

    /// Takes in the answer to the oldest request: how far the store
    /// acknowledged, or what failed (the connection then ends).
    fn answered(&mut self, done: Done) -> Told {
        let verdict = self.learned.batching.answered(done.events, done.answer);
        if let Some(metrics) = &self.metrics {
            metrics.requests.add(1);
            metrics.seconds.record(done.seconds);
            if matches!(verdict, Verdict::Retry | Verdict::Again | Verdict::Split) {
                metrics.retries.add(1);
            }
        }
        if verdict == Verdict::Delivered {
            if let Some(metrics) = &self.metrics {
                metrics.batches.add(1);
            }
            self.idle.extend(done.sender);
            return Told::Delivered(done.last);
        }
        if verdict == Verdict::Hold
            && let Some(metrics) = &self.metrics
        {
            metrics.held.add(done.events as u64);
        }
        self.again_at_once = verdict.at_once();
        if self.again_at_once {
            // The store answered: its connection serves the next attempt.
            self.idle.extend(done.sender);
        }
        let wait = done.wait.unwrap_or_default().min(MOST_RETRY_AFTER);
        self.failure = Some((
            Instant::now() + wait,
            format!("{} ({verdict:?})", done.shown),
        ));
        match verdict {
            Verdict::GiveUp => Told::Refused(
                done.last,
                format!("the store refused it alone: {}", done.shown),
            ),
            _ => Told::Failed,
        }
    }

    fn build(&self, body: Vec<Bytes>) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let body: Bytes = match body.len() {
            1 => body.into_iter().next().unwrap_or_default(),
            _ => body.concat().into(),
        };
        let compression = self.endpoint.compression;
        let body = compression.encode(body);
        let shape = &self.endpoint.request;
        let mut builder = Request::builder()
            .method(shape.method.clone())
            .uri(shape.target.as_str())
            .header(HOST, shape.authority.as_str())
            .header(CONTENT_TYPE, "application/x-ndjson");
        if let Some(encoding) = compression.header() {
            builder = builder.header(CONTENT_ENCODING, encoding);
        }
        for (name, value) in &shape.headers {
            builder = builder.header(name, value);
        }
        builder.body(Full::new(body))
    }
}

impl Connection for HttpConnection {
    /// Room in the batch being filled, while it may still grow.
    fn room(&self, _in_flight: usize) -> usize {
        if self.failure.is_some() {
            return 0;
        }
        let limit = self.learned.room(self.endpoint.batch_max_bytes);
        match &self.pending {
            None => limit,
            Some(pending) if pending.bytes >= self.endpoint.batch_max_bytes => 0,
            Some(pending) => limit.saturating_sub(pending.events),
        }
    }

    /// Adds the parcels to the batch being filled, and sends it when it is
    /// full or its time is up.
    async fn send(&mut self, parcels: Vec<Parcel>, sent: &mut Sent<'_>) -> Result<(), String> {
        let (mut taken_events, mut taken_bytes) = (0, 0);
        for parcel in parcels {
            let (lines, tokened) = ndjson::encode(parcel);
            if lines.is_empty() {
                continue;
            }
            let (events, bytes) = (lines.len(), lines.data().len());
            let data = lines.data().clone();
            let last = sent.messages(tokened.map_or(Parcel::Lines(lines), Parcel::Events));
            let batch_timeout = self.endpoint.batch_timeout;
            let pending = self.pending.get_or_insert_with(|| Pending {
                body: Vec::new(),
                events: 0,
                bytes: 0,
                last: 0,
                due: Instant::now() + batch_timeout,
            });
            pending.body.push(data);
            pending.events += events;
            pending.bytes += bytes;
            pending.last = last;
            taken_events += events;
            taken_bytes += bytes;
        }
        self.learned.sized(taken_events, taken_bytes);
        if self.ready() {
            self.dispatch().await?;
        }
        Ok(())
    }

    /// Takes in the answers in order, and says when the batch being
    /// filled is due; cancelled, it loses nothing (a request's answer is
    /// awaited again next time, against the same deadline).
    async fn heard(&mut self) -> Result<Heard, String> {
        loop {
            if let Some((at, _)) = &self.failure {
                // The connection ends once the wait the answer asked for
                // is over (at once without one: a timer would round up to
                // its next millisecond tick).
                if *at > Instant::now() {
                    tokio::time::sleep_until(*at).await;
                }
                let reason = self.failure.take().map(|(_, reason)| reason);
                let reason = reason.unwrap_or_default();
                return match self.again_at_once {
                    true => Ok(Heard::Again(reason)),
                    false => Err(reason),
                };
            }
            if self.ready() {
                return Ok(Heard::Writable);
            }
            let due = self
                .pending
                .as_ref()
                .filter(|_| self.requests.len() < self.endpoint.concurrency)
                .map(|pending| pending.due);
            tokio::select! {
                Some(done) = self.requests.next(), if !self.requests.is_empty() => {
                    match self.answered(done) {
                        Told::Delivered(last) => return Ok(Heard::Acknowledged(last)),
                        Told::Refused(message, reason) => {
                            return Ok(Heard::Refused { message, reason });
                        }
                        Told::Failed => {}
                    }
                }
                () = sleep_until_some(due), if due.is_some() => {}
                else => std::future::pending::<()>().await,
            }
        }
    }

    async fn close(&mut self, _timeout: Duration) {
        self.drivers.abort();
    }
}

/// Sleeps until `at`, if any.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The wait an answer asks for (`Retry-After` in seconds).
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let wait = response
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    matches!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    )
    .then(|| Duration::from_secs(wait))
}

/// The start of an answer's body, for the log, and the row a refusal
/// names as bad (with `bad_row`, when the answer is not 2xx); reading it
/// whole also readies the connection for the next request.
async fn read_answer(
    response: Response<hyper::body::Incoming>,
    bad_row: Option<&Regex>,
) -> (String, Option<usize>) {
    let refused = !response.status().is_success();
    let body = Limited::new(response.into_body(), 64 * 1024);
    let Ok(collected) = body.collect().await else {
        return ("(an answer too long to show)".into(), None);
    };
    let bytes = collected.to_bytes();
    let shown = &bytes[..bytes.len().min(ANSWER_SHOWN)];
    let shown = one_line(String::from_utf8_lossy(shown).trim());
    let named = bad_row
        .filter(|_| refused)
        .and_then(|pattern| named_row(pattern, &bytes));
    (shown, named)
}

/// The row (counted from 1) an answer names, by the first group of
/// `pattern`.
fn named_row(pattern: &Regex, answer: &[u8]) -> Option<usize> {
    let captures = pattern.captures(answer)?;
    let number = captures.get(1)?.as_bytes();
    std::str::from_utf8(number).ok()?.parse().ok()
}

/// A peer's words as one line of the log: line breaks and other control
/// characters escaped, so that one record stays one line.
fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|character| match character.is_control() {
            true => character.escape_default().collect::<Vec<_>>(),
            false => vec![character],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_row_a_refusal_names_is_read_by_the_pattern() {
        let pattern = regex::bytes::Regex::new(super::super::DEFAULT_BAD_ROW).unwrap();
        let clickhouse = b"Code: 27, e.displayText() = DB::Exception: Cannot parse input: \
            expected { before: not json\\n{\"id\": 1235}: (at row 1234)\n, e.what() = DB::Exception";
        assert_eq!(super::named_row(&pattern, clickhouse), Some(1234));
        assert_eq!(
            super::named_row(&pattern, b"Code: 60. Table default.x doesn't exist"),
            None
        );
        assert_eq!(
            super::named_row(&pattern, b"(at row 99999999999999999999999)"),
            None
        );
    }

    #[test]
    fn a_peer_answer_is_logged_on_one_line() {
        assert_eq!(
            super::one_line("Code: 27. DB::Exception:\nCannot parse\r\n\tline 2 ü"),
            "Code: 27. DB::Exception:\\nCannot parse\\r\\n\\tline 2 ü"
        );
    }
}
