//! `wishbone.output.http`: events as NDJSON batches, delivered on a 2xx
//! answer. The text `wishbone show --docs` prints is [`DOCS`].
//!
//! A transport on the one pump of `wishbone-output`: each request's events
//! are recorded as messages, and a 2xx answer acknowledges them all
//! (answers are taken in the order the requests were sent:
//! `connection.rs`). A failed request ends the connection. After an
//! outage or a configuration fault the shell waits its backoff (longer if
//! the answer said `Retry-After`); after bad data it connects again at once
//! ([`Connection::again_at_once`](wishbone_output::Connection)) and sends
//! what was not acknowledged first, in halves as [`Batching`] says; an
//! event that fails alone is rejected to `failed`.

mod connection;

use crate::encoding::Compression;

use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Uri};
use serde::Deserialize;
use wishbone_output::arguments::peer_port;
use wishbone_output::{Output, Settings, Transport, shared_arguments_docs};
use wishbone_runtime::{
    ArgumentError, Arguments, Counted, Module, ModuleKind, QueueSpec, host_name, module_metric,
};
use wishbone_tls::{TlsArguments, tls_arguments_docs};

use self::connection::{HttpConnection, Learned, Spare};
use crate::batching::Batching;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = concat!(
    r#"wishbone.output.http: events as NDJSON batches to an HTTP store.

Queues
  inbox      events to send, each one line of the body
  failed     events given up (an HTTP error for the event alone), always;
             with `failed: true` also what waits while the store is down
  success    with `success: true`, events the store accepted

Arguments (default)
  url               http://host:port/path?query or https://... (required)
  method            POST | PUT (POST)
  headers           a map of header names to values ({}), for authorization
  batch_max_events  events in one request, at most (1000)
  batch_max_bytes   body bytes past which a batch stops growing (1048576),
                    estimated from the events' average size
  batch_timeout_ms  how long a batch that is not full waits for more
                    events before it goes (100; 0: at once)
  concurrency       requests in flight at once, each on a connection of its
                    own (1, so that order holds; at most 64)
  compression       none | gzip | zstd (none): bodies sent with that
                    Content-Encoding (ClickHouse takes both)
  bad_row_pattern   a regular expression ("\\(at row (\\d+)\\)", ClickHouse's
                    words; "" for none) whose first group finds, in the
                    body of a refusal, the number of the bad row, counted
                    from 1
"#,
    shared_arguments_docs!(),
    tls_arguments_docs!(),
    r#"
The body is each event's payload followed by a newline, sent as
`Content-Type: application/x-ndjson`. A batch fills while the previous
requests are in flight; it goes once it is full, or batch_timeout_ms after
its first event, when fewer than `concurrency` requests are in flight.
An https:// url speaks TLS, verified against `tls.ca` or the system's
roots (`tls` is refused with an http:// url).

Delivery
  An event is delivered when the answer to the request that carried it is
  2xx: its write-ahead buffer token is acknowledged then, and it goes to
  `success` if routed. What the answer says decides the rest:
  - an outage (no answer: a refused or reset connection, a request that
    took longer than `timeout`; 408, 429, 502, 503, 504): retried after the
    backoff (reconnect_initial doubling to reconnect_max, each wait cut by
    a random part of up to half so that many senders do not retry
    together, or the answer's Retry-After, up to a minute); while the
    store is down the inbox is locked, so nothing is lost and the pipeline
    is held back;
  - bad data (any other 4xx, such as 400, 413, 422; a 500 or other 5xx
    answered twice, or once when it names the bad row): the events are
    sent again at once, without a backoff wait, so that a bad event ends
    up alone within milliseconds while the good ones are delivered. When
    the answer names the bad row (bad_row_pattern), the rows before it go
    as one request and the named row alone; otherwise the batch is
    halved, and the half that holds the bad row halved again: an event that fails
    alone goes to `failed` with its payload as it was (routed or not: with
    no route it is dropped and counted there), counted in
    module.<name>.rejected, the status and the start of the answer logged
    on one line;
  - a wrong configuration (3xx, 401, 403, 404, 405, 407): the events are
    held and sent again after the backoff, never split, never given up;
    the cause is logged once per change and the events counted in
    module.<name>.held_by_configuration.
  logged. Answers are taken in the order of the requests: with
  concurrency above 1, the first request that fails sends again every
  request after it, which the store may already hold (at least once).
  Metrics as the tcp output's (connected, connects, delivered,
  failed_over, resent, rejected), and requests (answered or given up
  on), batches (requests the store accepted), retries (requests whose
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
    /// How long a batch that is not full waits for more events.
    #[serde(default = "default_batch_timeout_ms")]
    pub batch_timeout_ms: u64,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// How bodies are compressed.
    #[serde(default)]
    pub compression: Compression,
    /// Finds the number of the bad row in a refusal's body.
    #[serde(default = "default_bad_row")]
    pub bad_row_pattern: String,
    /// TLS for an https:// url.
    #[serde(default)]
    pub tls: Option<TlsArguments>,
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

fn default_batch_timeout_ms() -> u64 {
    100
}

fn default_concurrency() -> usize {
    1
}

/// ClickHouse's words for the row a refused insert stopped at.
pub(crate) const DEFAULT_BAD_ROW: &str = r"\(at row (\d+)\)";

fn default_bad_row() -> String {
    DEFAULT_BAD_ROW.into()
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let (mut settings, own) = Settings::split(arguments)?;
    let config: Config = own.deserialize()?;
    settings.backoff = settings.backoff.with_jitter(0);
    check_limits(&config)?;
    let store = Store::of(&config.url, config.tls.as_ref())?;
    let request = RequestShape {
        url: config.url.clone(),
        method: method(&config.method)?,
        authority: store.authority,
        target: store.target,
        headers: headers(&config.headers)?,
    };
    Ok(Box::new(Output {
        transport: HttpTransport {
            endpoint: Arc::new(Endpoint {
                request,
                address: store.address,
                tls: store.tls,
                timeout: settings.timeout,
                concurrency: config.concurrency,
                compression: config.compression,
                bad_row: bad_row(&config.bad_row_pattern)?,
                batch_timeout: Duration::from_millis(config.batch_timeout_ms),
                batch_max_bytes: config.batch_max_bytes,
            }),
            metrics: None,
            learned: Learned::new(Batching::new(config.batch_max_events)),
        },
        settings,
    }))
}

/// Batches that hold something, and a concurrency in bounds.
fn check_limits(config: &Config) -> Result<(), ArgumentError> {
    if config.batch_max_events == 0 || config.batch_max_bytes == 0 {
        return Err(ArgumentError::field(
            "batch_max_events",
            "batches must hold at least one event and one byte",
        ));
    }
    if !(1..=MOST_CONCURRENCY).contains(&config.concurrency) {
        return Err(ArgumentError::field(
            "concurrency",
            format!("must be from 1 to {MOST_CONCURRENCY}"),
        ));
    }
    Ok(())
}

/// Where the url points, and how to get there.
struct Store {
    address: (String, u16),
    tls: Option<wishbone_tls::Connector>,
    authority: String,
    target: String,
}

/// A url as logs show it: without a user and password before the host or
/// a query after the path, where stores take credentials
/// (`?user=…&password=…`).
fn shown(url: &str) -> String {
    let Ok(uri) = url.parse::<Uri>() else {
        return "(a url)".into();
    };
    let port = uri
        .port_u16()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    let query = if uri.query().is_some() { "?…" } else { "" };
    format!(
        "{}://{}{port}{}{query}",
        uri.scheme_str().unwrap_or("http"),
        uri.host().unwrap_or_default(),
        uri.path()
    )
}

impl Store {
    /// From `url` (http:// or https://), with `tls` for an https:// one.
    fn of(url: &str, tls: Option<&TlsArguments>) -> Result<Self, ArgumentError> {
        let uri: Uri = url.parse().map_err(|error: hyper::http::uri::InvalidUri| {
            ArgumentError::value("url", error.to_string())
        })?;
        let secure = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(ArgumentError::field(
                    "url",
                    format!("must start with http:// or https://, not `{url}`"),
                ));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| ArgumentError::field("url", "names no host"))?
            .to_string();
        host_name("url", &host)?;
        let port = peer_port(
            "url",
            uri.port_u16().unwrap_or(if secure { 443 } else { 80 }),
        )?;
        let tls = match (secure, tls) {
            (true, tls) => Some(wishbone_tls::connector(
                &tls.cloned().unwrap_or_default(),
                &host,
            )?),
            (false, None) => None,
            (false, Some(_)) => {
                return Err(ArgumentError::field(
                    "tls",
                    "is for an https:// url; this one is http://",
                ));
            }
        };
        let authority = uri
            .authority()
            .map(|authority| authority.to_string())
            .unwrap_or(host.clone());
        let target = uri
            .path_and_query()
            .map(|path| path.to_string())
            .unwrap_or_else(|| "/".into());
        Ok(Self {
            address: (host, port),
            tls,
            authority,
            target,
        })
    }
}

/// POST or PUT.
fn method(method: &str) -> Result<Method, ArgumentError> {
    match method.to_ascii_uppercase().as_str() {
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        other => Err(ArgumentError::field(
            "method",
            format!("must be POST or PUT, not `{other}`"),
        )),
    }
}

/// The `headers` argument, checked.
fn headers(
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, ArgumentError> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ArgumentError::value("headers", format!("`{name}` is not a header name"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                ArgumentError::value(
                    "headers",
                    format!("the value of `{name}` is not a header value"),
                )
            })?;
            Ok((name, value))
        })
        .collect()
}

/// `bad_row_pattern`, compiled; none when empty.
fn bad_row(pattern: &str) -> Result<Option<regex::bytes::Regex>, ArgumentError> {
    match pattern {
        "" => Ok(None),
        pattern => regex::bytes::Regex::new(pattern)
            .map(Some)
            .map_err(|error| ArgumentError::value("bad_row_pattern", error.to_string())),
    }
}

/// Requests in flight, at most.
const MOST_CONCURRENCY: usize = 64;

/// What every request is.
struct RequestShape {
    url: String,
    method: Method,
    authority: String,
    target: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// The store and how to talk to it, shared by every connection.
struct Endpoint {
    request: RequestShape,
    address: (String, u16),
    /// With an https:// url.
    tls: Option<wishbone_tls::Connector>,
    /// For a connection, and for a request's answer.
    timeout: Duration,
    concurrency: usize,
    compression: Compression,
    /// Finds the bad row in a refusal.
    bad_row: Option<regex::bytes::Regex>,
    batch_timeout: Duration,
    batch_max_bytes: usize,
}

/// The store.
struct HttpTransport {
    endpoint: Arc<Endpoint>,
    metrics: Option<Arc<HttpMetrics>>,
    /// What the last connection learned; lent to each connection.
    learned: Learned,
}

/// The output's own metrics, besides the pump's.
struct HttpMetrics {
    /// Requests answered or given up on.
    requests: Counted,
    /// Requests the store accepted (2xx).
    batches: Counted,
    /// Requests whose events are sent again (as they were, or in halves).
    retries: Counted,
    /// Events held because the store's answer says the configuration is
    /// wrong (3xx, 401, 403, 404, 405, 407), counted at each such answer.
    held: Counted,
    /// From a request's sending to the end of its answer.
    seconds: metrics::Histogram,
}

impl Transport for HttpTransport {
    type Connection = HttpConnection;

    fn target(&self) -> String {
        shown(&self.endpoint.request.url)
    }

    fn named(&mut self, module: &str) {
        self.metrics = Some(Arc::new(HttpMetrics {
            requests: Counted::new(module, "requests"),
            batches: Counted::new(module, "batches"),
            retries: Counted::new(module, "retries"),
            held: Counted::new(module, "held_by_configuration"),
            seconds: metrics::histogram!(module_metric(module, "request_seconds")),
        }));
    }

    async fn connect(&mut self) -> Result<HttpConnection, String> {
        let (endpoint, metrics) = (self.endpoint.clone(), self.metrics.clone());
        let spare = match self.learned.spare.take().and_then(Spare::open) {
            Some(spare) => spare,
            None => Spare::opened(connection::open(&self.endpoint).await?),
        };
        // What was learned is lent only once connected: an attempt given
        // up on (the shell's timeout) leaves it here.
        let fresh = self.learned.fresh();
        let learned = std::mem::replace(&mut self.learned, fresh);
        Ok(HttpConnection::new(endpoint, metrics, learned, spare))
    }

    fn ended(&mut self, connection: HttpConnection) {
        self.learned = connection.into_learned();
    }
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_logged_url_shows_no_credentials() {
        assert_eq!(
            shown("http://writer:s3cret@clickhouse:8123/?user=writer&password=s3cret&query=INSERT"),
            "http://clickhouse:8123/?…"
        );
        assert_eq!(
            shown("https://store.example.net/bulk"),
            "https://store.example.net/bulk"
        );
    }
}
