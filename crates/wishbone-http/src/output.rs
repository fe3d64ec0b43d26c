//! `wishbone.output.http`: events as NDJSON batches, one request at a time,
//! delivered on a 2xx answer. The text `wishbone show --docs` prints is
//! [`DOCS`].
//!
//! A transport on the one pump of `wishbone-output`: each request's events
//! are recorded as messages, and a 2xx answer acknowledges them all. A
//! failed request ends the connection: the shell waits its backoff
//! (longer if the answer said `Retry-After`), connects again and sends what
//! was not acknowledged first, in halves when [`Batching`] says so; an
//! event that fails alone is rejected to `failed`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpStream;
use wishbone_output::arguments::peer_port;
use wishbone_output::{Connection, Output, Sent, Settings, Transport, shared_arguments_docs};
use wishbone_runtime::{
    ArgumentError, Arguments, Counted, Module, ModuleKind, Parcel, QueueSpec, host_name,
    module_metric,
};

use crate::batching::{Answer, Batching, Verdict};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = concat!(
    r#"wishbone.output.http: events as NDJSON batches to an HTTP store.

Queues
  inbox      events to send, each one line of the body
  failed     events given up (an HTTP error for the event alone), always;
             with `failed: true` also what waits while the store is down
  success    with `success: true`, events the store accepted

Arguments (default)
  url               http://host:port/path?query (required)
  method            POST | PUT (POST)
  headers           a map of header names to values ({}), for authorization
  batch_max_events  events in one request, at most (1000)
  batch_max_bytes   body bytes past which a batch stops growing (1048576),
                    estimated from the events' average size
"#,
    shared_arguments_docs!(),
    r#"
The body is each event's payload followed by a newline, sent as
`Content-Type: application/x-ndjson`, one request at a time (order holds).

Delivery
  An event is delivered when the answer to the request that carried it is
  2xx: its write-ahead buffer token is acknowledged then, and it goes to
  `success` if routed. No answer (a refused or reset connection, a request
  that took longer than `timeout`), 408, 429 and 5xx are retried after the
  backoff (reconnect_initial doubling to reconnect_max, or the answer's
  Retry-After, up to a minute); while the store is down the inbox is
  locked, so nothing is lost and the pipeline is held back. A batch that
  gets an HTTP error answer three times (a 4xx other than 408 and 429: at
  once) is sent again in halves, and so on, so that a bad event ends up
  alone: an event that fails alone goes to `failed` with its payload as it
  was (routed or not: with no route it is dropped and counted there),
  counted in module.<name>.rejected, the status and the start of the answer
  logged. Metrics as the tcp output's (connected, connects, delivered,
  failed_over, resent, rejected), and requests, retries (requests whose
  events are sent again) and request_seconds (a histogram).

Example
  modules:
    input: {module: wishbone.input.tcp, arguments: {port: 19283}}
    store:
      module: wishbone.output.http
      arguments:
        url: "http://127.0.0.1:8123/?query=INSERT%20INTO%20logs%20FORMAT%20JSONEachRow"
    rejected: {module: wishbone.output.tcp, arguments: {port: 10001}}
  routingtable:
    - input.outbox -> store.inbox
    - store.failed -> rejected.inbox
"#
);

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.output.http",
    aliases: &[],
    description: "events as NDJSON batches to an HTTP store",
    docs: DOCS,
    queues: QueueSpec::SINK,
    build,
};

/// The arguments besides the shared ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to send.
    pub url: String,
    /// POST or PUT.
    #[serde(default = "default_method")]
    pub method: String,
    /// Headers sent with every request.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Events in one request, at most.
    #[serde(default = "default_batch_max_events")]
    pub batch_max_events: usize,
    /// Body bytes past which a batch stops growing.
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: usize,
}

fn default_method() -> String {
    "POST".into()
}

fn default_batch_max_events() -> usize {
    1000
}

fn default_batch_max_bytes() -> usize {
    1024 * 1024
}

/// The longest `Retry-After` waited for.
const MOST_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Bytes of an error answer kept for the log.
const ANSWER_SHOWN: usize = 200;

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let (settings, own) = Settings::split(arguments)?;
    let config: Config = own.deserialize()?;
    let uri: Uri = config
        .url
        .parse()
        .map_err(|error: hyper::http::uri::InvalidUri| {
            ArgumentError::value("url", error.to_string())
        })?;
    if uri.scheme_str() != Some("http") {
        return Err(ArgumentError::field(
            "url",
            format!("must start with http://, not `{}`", config.url),
        ));
    }
    let host = uri
        .host()
        .ok_or_else(|| ArgumentError::field("url", "names no host"))?
        .to_string();
    host_name("url", &host)?;
    let port = peer_port("url", uri.port_u16().unwrap_or(80))?;
    let method = match config.method.to_ascii_uppercase().as_str() {
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        other => {
            return Err(ArgumentError::field(
                "method",
                format!("must be POST or PUT, not `{other}`"),
            ));
        }
    };
    let mut headers = Vec::new();
    for (name, value) in &config.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ArgumentError::value("headers", format!("`{name}` is not a header name"))
        })?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            ArgumentError::value(
                "headers",
                format!("the value of `{name}` is not a header value"),
            )
        })?;
        headers.push((name, value));
    }
    if config.batch_max_events == 0 || config.batch_max_bytes == 0 {
        return Err(ArgumentError::field(
            "batch_max_events",
            "batches must hold at least one event and one byte",
        ));
    }
    let authority = uri
        .authority()
        .map(|authority| authority.to_string())
        .unwrap_or(host.clone());
    let target = uri
        .path_and_query()
        .map(|path| path.to_string())
        .unwrap_or_else(|| "/".into());
    Ok(Box::new(Output {
        transport: HttpTransport {
            request: Arc::new(RequestShape {
                url: config.url,
                method,
                authority,
                target,
                headers,
            }),
            address: (host, port),
            timeout: settings.timeout,
            state: Arc::new(Mutex::new(Shared {
                batching: Batching::new(config.batch_max_events),
                batch_max_bytes: config.batch_max_bytes,
                average_bytes: 0,
                give_up: None,
            })),
            metrics: None,
        },
        settings,
    }))
}

/// What every request is.
struct RequestShape {
    url: String,
    method: Method,
    authority: String,
    target: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// What outlives a connection: how big the next batch is, and the event
/// to give up on the next one.
struct Shared {
    batching: Batching,
    batch_max_bytes: usize,
    /// The events' average size so far, for `batch_max_bytes`.
    average_bytes: usize,
    /// Why the event at the head was given up, to reject it when it comes
    /// back.
    give_up: Option<String>,
}

impl Shared {
    /// Events the next batch may hold.
    fn room(&self) -> usize {
        let by_bytes = match self.average_bytes {
            0 => usize::MAX,
            average => (self.batch_max_bytes / average).max(1),
        };
        self.batching.limit().min(by_bytes)
    }
}

/// The store.
struct HttpTransport {
    request: Arc<RequestShape>,
    address: (String, u16),
    timeout: Duration,
    state: Arc<Mutex<Shared>>,
    metrics: Option<Arc<HttpMetrics>>,
}

/// The output's own metrics, besides the pump's.
struct HttpMetrics {
    /// Requests answered or given up on.
    requests: Counted,
    /// Requests whose events are sent again (as they were, or in halves).
    retries: Counted,
    /// From a request's sending to the end of its answer.
    seconds: metrics::Histogram,
}

/// The shared state; a panic elsewhere while it was held changes nothing
/// in it that matters.
fn lock(state: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Transport for HttpTransport {
    type Connection = HttpConnection;

    fn target(&self) -> String {
        self.request.url.clone()
    }

    fn named(&mut self, module: &str) {
        self.metrics = Some(Arc::new(HttpMetrics {
            requests: Counted::new(module, "requests"),
            retries: Counted::new(module, "retries"),
            seconds: metrics::histogram!(module_metric(module, "request_seconds")),
        }));
    }

    async fn connect(&mut self) -> Result<HttpConnection, String> {
        let (host, port) = &self.address;
        let stream = TcpStream::connect((host.as_str(), *port))
            .await
            .map_err(|error| error.to_string())?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|error| error.to_string())?;
        let driver = tokio::task::spawn_local(async move {
            let _ = connection.await;
        });
        Ok(HttpConnection {
            sender,
            driver,
            request: self.request.clone(),
            timeout: self.timeout,
            state: self.state.clone(),
            metrics: self.metrics.clone(),
            in_flight: None,
            failure: None,
        })
    }
}

/// What a request came to: the answer, the wait it asks for, and words
/// for the log. One future from sending to the end of the answer's body,
/// so that waiting for it can be cancelled and taken up again.
type Answered = Pin<Box<dyn Future<Output = (Answer, Option<Duration>, String)>>>;

/// A request sent and not yet answered.
struct InFlight {
    answer: Answered,
    sent_at: tokio::time::Instant,
    deadline: tokio::time::Instant,
    /// The number of its last message.
    last: u64,
    events: usize,
}

/// One connection to the store.
struct HttpConnection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<()>,
    request: Arc<RequestShape>,
    timeout: Duration,
    state: Arc<Mutex<Shared>>,
    metrics: Option<Arc<HttpMetrics>>,
    in_flight: Option<InFlight>,
    /// The request failed: the connection ends at this instant, with these
    /// words (a `Retry-After` makes it later).
    failure: Option<(tokio::time::Instant, String)>,
}

impl Connection for HttpConnection {
    /// One request at a time, of the batch size [`Batching`] allows.
    fn room(&self, in_flight: usize) -> usize {
        match (in_flight, &self.in_flight) {
            (0, None) if self.failure.is_none() => lock(&self.state).room(),
            _ => 0,
        }
    }

    async fn send(&mut self, parcels: Vec<Parcel>, sent: &mut Sent<'_>) -> Result<(), String> {
        let mut parcels = parcels;
        let give_up = lock(&self.state).give_up.take();
        if let Some(reason) = give_up {
            // The event that failed alone comes back first: give it up.
            let mut events =
                Parcel::Events(parcels.into_iter().flat_map(Parcel::into_events).collect());
            let rest = events.split_off(1);
            for event in events.into_events() {
                sent.reject(event, reason.clone());
            }
            parcels = vec![rest];
        }
        let newline = Bytes::from_static(b"\n");
        let mut body = Vec::new();
        let mut events = 0;
        let mut last = 0;
        for parcel in parcels {
            let (lines, tokened) = parcel.into_wire(&newline);
            if lines.is_empty() {
                continue;
            }
            events += lines.len();
            body.push(lines.data().clone());
            last = sent.messages(tokened.map_or(Parcel::Lines(lines), Parcel::Events));
        }
        if events == 0 {
            return Ok(());
        }
        let bytes: usize = body.iter().map(Bytes::len).sum();
        {
            let mut state = lock(&self.state);
            state.average_bytes = match state.average_bytes {
                0 => bytes / events,
                average => (average * 7 + bytes / events) / 8,
            }
            .max(1);
        }
        let request = self.build(body).map_err(|error| error.to_string())?;
        let sending = self.sender.send_request(request);
        self.in_flight = Some(InFlight {
            answer: Box::pin(async move {
                match sending.await {
                    Err(error) => (Answer::NoAnswer, None, error.to_string()),
                    Ok(response) => {
                        let status = response.status();
                        let wait = retry_after(&response);
                        let text = start_of(response).await;
                        (
                            Answer::Status(status.as_u16()),
                            wait,
                            format!("{status}: {text}"),
                        )
                    }
                }
            }),
            sent_at: tokio::time::Instant::now(),
            deadline: tokio::time::Instant::now() + self.timeout,
            last,
            events,
        });
        Ok(())
    }

    /// The answer to the request in flight; cancelled, it is awaited again
    /// next time (against the same deadline).
    async fn heard(&mut self) -> Result<Option<u64>, String> {
        if self.failure.is_none() {
            let Some(in_flight) = &mut self.in_flight else {
                return std::future::pending().await;
            };
            let answered = tokio::time::timeout_at(in_flight.deadline, &mut in_flight.answer).await;
            let (events, last, sent_at) = (in_flight.events, in_flight.last, in_flight.sent_at);
            self.in_flight = None;
            let (answer, wait, shown) = answered.unwrap_or_else(|_| {
                (
                    Answer::NoAnswer,
                    None,
                    format!("no answer in {:?}", self.timeout),
                )
            });
            let verdict = lock(&self.state).batching.answered(events, answer);
            if let Some(metrics) = &self.metrics {
                metrics.requests.add(1);
                metrics.seconds.record(sent_at.elapsed().as_secs_f64());
                if matches!(verdict, Verdict::Retry | Verdict::Split) {
                    metrics.retries.add(1);
                }
            }
            match verdict {
                Verdict::Delivered => return Ok(Some(last)),
                Verdict::GiveUp => {
                    lock(&self.state).give_up =
                        Some(format!("the store refused it alone: {shown}"));
                }
                Verdict::Retry | Verdict::Split => {}
            }
            let at = tokio::time::Instant::now() + wait.unwrap_or_default().min(MOST_RETRY_AFTER);
            self.failure = Some((at, format!("{shown} ({verdict:?})")));
        }
        // The connection ends once the wait the answer asked for is over.
        if let Some((at, _)) = &self.failure {
            tokio::time::sleep_until(*at).await;
        }
        Err(self
            .failure
            .take()
            .map(|(_, reason)| reason)
            .unwrap_or_default())
    }

    async fn close(&mut self, _timeout: Duration) {
        self.driver.abort();
    }
}

impl Drop for HttpConnection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl HttpConnection {
    fn build(&self, body: Vec<Bytes>) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let body: Bytes = match body.len() {
            1 => body.into_iter().next().unwrap_or_default(),
            _ => body.concat().into(),
        };
        let shape = &self.request;
        let mut builder = Request::builder()
            .method(shape.method.clone())
            .uri(shape.target.as_str())
            .header(HOST, shape.authority.as_str())
            .header(CONTENT_TYPE, "application/x-ndjson");
        for (name, value) in &shape.headers {
            builder = builder.header(name, value);
        }
        builder.body(Full::new(body))
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

/// The start of an answer's body, for the log.
async fn start_of(response: Response<hyper::body::Incoming>) -> String {
    let body = Limited::new(response.into_body(), 64 * 1024);
    match body.collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            let shown = &bytes[..bytes.len().min(ANSWER_SHOWN)];
            String::from_utf8_lossy(shown).trim().to_string()
        }
        Err(_) => "(an answer too long to show)".into(),
    }
}
