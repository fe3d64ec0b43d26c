//! `wishbone.input.http`: events POSTed by HTTP clients, one per line of
//! the body, answered `200` only once every one of them is acknowledged
//! downstream (the RELP input's rule). The text `wishbone show --docs`
//! prints is [`DOCS`].
//!
//! Accepting clients (TLS, `max_connections`, eviction) is the shared
//! listener's (`wishbone-listen`); hyper serves HTTP/1.1 on each
//! connection. Each request's events go downstream as lines carrying one
//! acknowledgement token, split into shares when the body is larger than
//! the outbox; the answer waits for the token.

pub mod auth;
pub mod forward;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{
    ALLOW, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, RETRY_AFTER, WWW_AUTHENTICATE,
};

use crate::encoding::{self, Undecoded};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use wishbone_listen::{Listening, Presence};

use self::auth::{Auth, AuthConfig};
use self::forward::{Forwarded, forward};
use wishbone_runtime::queue::Sender;
use wishbone_runtime::{
    ArgumentError, Arguments, Counted, Lines, ListenAddress, Module, ModuleContext, ModuleError,
    ModuleKind, QueueSpec,
};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = concat!(
    r#"wishbone.input.http: events POSTed by HTTP clients, one per line of the body.

Queues
  outbox     every non-empty line of every body, without its newline

Arguments (default)
  address          interface to listen on, an IP address or host name ("0.0.0.0")
  port             port to listen on (8080); 0 picks a free port, logged at start
  path             the path events are POSTed to ("/"); others answer 404
  max_body_bytes   largest body in bytes (10485760); larger answers 413
  max_connections  clients served at once (0: half the process's open-file limit)
  reuse_port       share the port with other processes, SO_REUSEPORT (false)
  tls              HTTPS (none: plain HTTP): {cert, key}, and {ca,
                   verify_peer} for mutual TLS, as for wishbone.input.tcp
  frame_timeout    seconds a client may take to send a request's headers,
                   and then its body (30; 0: no limit); then 408
  auth             who may POST (none: anyone), one of
                     bearer_token_file  a file holding the token clients
                                send as `Authorization: Bearer TOKEN`
                     basic_users_file   `user:hash` lines with bcrypt
                                hashes (`htpasswd -B -c FILE user`), for
                                `Authorization: Basic`
                   read when the file is loaded; others are answered 401
                   before their body is read. Tokens are compared in
                   constant time; a password checked once is remembered
                   as a SHA-256 of what the client sent
"#,
    wishbone_listen::threads_docs!(),
    r#"
A body is NDJSON or plain lines: each line ending in a newline (a CR
before it is dropped; the last line needs none) is one event; empty lines
are skipped. HTTP/1.1 with keep-alive; POST or PUT.

What an answer means
  200  every event of the body was delivered by an output that knows its
       peer has it (wishbone.output.tcp: the peer's TCP stack acknowledged
       it; wishbone.output.http: the store answered 2xx), or kept by a
       wishbone.flow.wal with `path` as its `sync` says
  503  with Retry-After: 1: send the body again. Either the outbox stayed
       full for a second (nothing was taken, unless the body was larger
       than the outbox: then its first parts may have been), or an event
       of the body was dropped or could not be delivered (answered a
       second later, so that a client sending again at once does not spin
       while every output is down). An output whose peer is down gives
       such events back at once (they wait in no memory of its own)
  415  a Content-Encoding other than gzip and zstd (those are decoded,
       and a body over max_body_bytes once decoded answers 413)
  401  with auth, a request without the credentials (counted in
       module.<name>.unauthorized); its body is not read
  413  a body over max_body_bytes; 408 a body not sent within
       frame_timeout; 404 another path; 405 another method; 400 a request
       hyper cannot read
  Not guaranteed: a client that sends again after a 503, a timeout or a
  lost connection may have some events stored twice (at least once).
  At a stop the input stops accepting, answers the requests it took as
  their events settle, and closes.

A reload (SIGHUP) that changes only max_connections or tls keeps the
input and its clients' connections; new clients get the new values.

Slots
  When all max_connections slots are taken and another client connects,
  the client quiet longest (no request finished for a second or more) is
  closed to make room. Counted in module.<name>.evicted.

Metrics (module.<name>.<counter>)
  connections      clients accepted
  requests         requests answered
  unauthorized     requests answered 401
  events           lines put on outbox
  accepted         events answered 200
  refused          events answered 503 because one of them failed downstream
  busy             requests answered 503 because the outbox stayed full
  too_large        requests answered 413
  bad              requests answered 400, 404, 405 or 408
  accept_failures  accepts that failed for want of descriptors or memory
  evicted          clients closed to make room for a new one

Example
  modules:
    input:
      module: wishbone.input.http
      arguments:
        port: 8080
        path: /events
    output:
      module: wishbone.output.tcp
      arguments:
        port: 10000
  routingtable:
    - input.outbox -> output.inbox
"#
);

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.input.http",
    aliases: &[],
    description: "events POSTed by HTTP clients, answered once safe downstream",
    docs: DOCS,
    queues: QueueSpec::SOURCE,
    build,
};

/// The arguments besides the shared listening ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The path events are POSTed to.
    #[serde(default = "default_path")]
    pub path: String,
    /// Largest body in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// What a request must carry; none: anyone may POST.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
}

fn default_path() -> String {
    "/".into()
}

fn default_max_body_bytes() -> usize {
    10 * 1024 * 1024
}

/// The port it listens on when `port` is not given.
pub const DEFAULT_PORT: u16 = 8080;

/// How long a request waits for room on a full outbox before it is
/// answered 503.
const BUSY_WAIT: Duration = Duration::from_secs(1);

/// How long a 503 for events that failed downstream waits before it is
/// sent.
const REFUSAL_HOLD: Duration = Duration::from_secs(1);

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let (listening, own) = Listening::split(arguments, DEFAULT_PORT)?;
    let config: Config = own.deserialize()?;
    if !config.path.starts_with('/') {
        return Err(ArgumentError::field(
            "path",
            format!("must start with /, not `{}`", config.path),
        ));
    }
    if config.max_body_bytes == 0 {
        return Err(ArgumentError::field("max_body_bytes", "must be at least 1"));
    }
    let auth = match &config.auth {
        Some(auth) => {
            Some(Auth::load(auth).map_err(|problem| ArgumentError::field("auth", problem))?)
        }
        None => None,
    };
    Ok(Box::new(HttpInput {
        config,
        listening,
        auth,
    }))
}

/// The module: a listener and one hyper connection per client.
pub struct HttpInput {
    config: Config,
    listening: Listening,
    auth: Option<Auth>,
}

impl Module for HttpInput {
    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        Box::pin(self.serve(context))
    }

    fn listens(&self) -> Option<ListenAddress> {
        Some(self.listening.address())
    }

    /// A reload that changes only these keeps the input and its clients'
    /// connections; new clients get the new ones.
    fn live_arguments(&self) -> &'static [&'static str] {
        &["max_connections", "tls"]
    }
}

/// What the requests of one input came to.
struct Counters {
    requests: Counted,
    unauthorized: Counted,
    events: Counted,
    accepted: Counted,
    refused: Counted,
    busy: Counted,
    too_large: Counted,
    bad: Counted,
}

/// What every client's requests share.
struct Shared {
    module: String,
    path: String,
    max_body_bytes: usize,
    frame_timeout: Option<Duration>,
    auth: Option<Auth>,
    outbox: Sender,
    stop: CancellationToken,
    abort: CancellationToken,
    counters: Counters,
}

impl HttpInput {
    async fn serve(self, mut context: ModuleContext) -> Result<(), ModuleError> {
        let module = context.name().to_string();
        let counted = |counter: &str| Counted::new(&module, counter);
        let shared = Arc::new(Shared {
            module: module.clone(),
            path: self.config.path.clone(),
            max_body_bytes: self.config.max_body_bytes,
            frame_timeout: self.listening.frame_timeout(),
            auth: self.auth,
            outbox: context.outgoing("outbox"),
            stop: context.stopping(),
            abort: context.aborting(),
            counters: Counters {
                requests: counted("requests"),
                unauthorized: counted("unauthorized"),
                events: counted("events"),
                accepted: counted("accepted"),
                refused: counted("refused"),
                busy: counted("busy"),
                too_large: counted("too_large"),
                bad: counted("bad"),
            },
        });
        let totals = self
            .listening
            .serve_spread(&mut context, |peer, _| {
                let shared = shared.clone();
                move |socket, presence| serve_client(shared, peer, socket, presence)
            })
            .await?;
        let counters = &shared.counters;
        tracing::info!(
            module = %module,
            connections = totals.connections,
            requests = counters.requests.total(),
            unauthorized = counters.unauthorized.total(),
            events = counters.events.total(),
            accepted = counters.accepted.total(),
            refused = counters.refused.total(),
            busy = counters.busy.total(),
            too_large = counters.too_large.total(),
            bad = counters.bad.total(),
            accept_failures = totals.accept_failures,
            handshake_failures = totals.handshake_failures,
            evicted = totals.evicted,
            "input totals"
        );
        Ok(())
    }
}

/// Serves one client's requests until it closes, is evicted, or the
/// server stops (then the requests under way are answered first).
async fn serve_client<S>(shared: Arc<Shared>, peer: SocketAddr, socket: S, presence: Presence)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let presence = Rc::new(presence);
    let service = {
        let (shared, presence) = (shared.clone(), presence.clone());
        service_fn(move |request| {
            let (shared, presence) = (shared.clone(), presence.clone());
            async move { Ok::<_, Infallible>(shared.answer(request, &presence).await) }
        })
    };
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new());
    builder.header_read_timeout(shared.frame_timeout);
    let connection = builder.serve_connection(TokioIo::new(socket), service);
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        closing = presence.closing() => {
            tracing::debug!(module = %shared.module, %peer, ?closing, "client closed");
            return;
        }
        _ = shared.stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                ended = connection.as_mut() => ended,
                _ = shared.abort.cancelled() => return,
            }
        }
    };
    if let Err(error) = ended {
        tracing::debug!(module = %shared.module, %peer, %error, "client ended");
    }
}

/// An answer with a short text body.
fn answer(status: StatusCode, text: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(text.into()));
    *response.status_mut() = status;
    response
}

/// 503 with `Retry-After: 1`.
fn unavailable(text: &'static str) -> Response<Full<Bytes>> {
    let mut response = answer(StatusCode::SERVICE_UNAVAILABLE, text);
    response
        .headers_mut()
        .insert(RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
    response
}

impl Shared {
    /// The answer to one request.
    async fn answer(
        &self,
        request: Request<Incoming>,
        presence: &Presence,
    ) -> Response<Full<Bytes>> {
        self.counters.requests.add(1);
        if let Some(refusal) = self.refusal(&request).await {
            return refusal;
        }
        let encoding = request
            .headers()
            .get(CONTENT_ENCODING)
            .map(|value| value.to_str().unwrap_or("?").to_string());
        let body = match self.read_body(request.into_body()).await {
            Ok(body) => body,
            Err(refusal) => return refusal,
        };
        let body = match encoding::decode(encoding.as_deref(), body, self.max_body_bytes) {
            Ok(body) => body,
            Err(undecoded) => return self.undecoded(undecoded),
        };
        presence.progress(true, false);
        let lines = wishbone_codecs::ndjson::decode(body);
        if lines.is_empty() {
            return answer(StatusCode::OK, "0 events\n");
        }
        self.deliver(lines).await
    }

    /// The answer to a request refused before its body is read: another
    /// path, another method, no credentials, a declared length too large.
    async fn refusal(&self, request: &Request<Incoming>) -> Option<Response<Full<Bytes>>> {
        if request.uri().path() != self.path {
            self.counters.bad.add(1);
            return Some(answer(StatusCode::NOT_FOUND, "events go to another path\n"));
        }
        if !matches!(*request.method(), Method::POST | Method::PUT) {
            self.counters.bad.add(1);
            let mut response = answer(StatusCode::METHOD_NOT_ALLOWED, "POST events\n");
            response
                .headers_mut()
                .insert(ALLOW, hyper::header::HeaderValue::from_static("POST, PUT"));
            return Some(response);
        }
        let authorization = request
            .headers()
            .get(AUTHORIZATION)
            .map(|value| value.as_bytes());
        if let Some(auth) = &self.auth
            && !auth.admits(authorization).await
        {
            self.counters.unauthorized.add(1);
            let mut response = answer(StatusCode::UNAUTHORIZED, "credentials required\n");
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static(auth.challenge()),
            );
            return Some(response);
        }
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.max_body_bytes as u64) {
            self.counters.too_large.add(1);
            return Some(answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body over max_body_bytes\n",
            ));
        }
        None
    }

    /// Sends the body's events on, and answers once they are delivered
    /// (or not).
    async fn deliver(&self, lines: Lines) -> Response<Full<Bytes>> {
        let count = lines.len() as u64;
        let (forwarded, sent) = forward(&self.outbox, lines, BUSY_WAIT, &self.abort).await;
        self.counters.events.add(sent);
        match forwarded {
            Forwarded::Acknowledged => {
                self.counters.accepted.add(count);
                answer(StatusCode::OK, format!("{count} events\n"))
            }
            Forwarded::Failed => {
                self.counters.refused.add(count);
                // A client that sends again at once would spin while every
                // output is down: the refusal waits, as the RELP input's.
                tokio::select! {
                    () = tokio::time::sleep(REFUSAL_HOLD) => {}
                    _ = self.abort.cancelled() => {}
                }
                unavailable("an event could not be delivered; send the body again\n")
            }
            Forwarded::Busy => {
                self.counters.busy.add(1);
                unavailable("the pipeline is full; send the body again\n")
            }
            Forwarded::Aborted => unavailable("the server stops\n"),
        }
    }

    /// The answer that refuses a body that cannot be decoded (counted).
    fn undecoded(&self, undecoded: Undecoded) -> Response<Full<Bytes>> {
        match undecoded {
            Undecoded::TooLarge => {
                self.counters.too_large.add(1);
                answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body over max_body_bytes once decoded\n",
                )
            }
            Undecoded::Unsupported(name) => {
                self.counters.bad.add(1);
                answer(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("Content-Encoding `{name}` is not one of gzip, zstd\n"),
                )
            }
            Undecoded::Broken(error) => {
                self.counters.bad.add(1);
                answer(
                    StatusCode::BAD_REQUEST,
                    format!("cannot decode the body: {error}\n"),
                )
            }
        }
    }

    /// The whole body, or the answer that refuses it (a body still coming
    /// when the server stops is refused with 503: nothing was taken).
    async fn read_body(&self, body: Incoming) -> Result<Bytes, Response<Full<Bytes>>> {
        let collecting = Limited::new(body, self.max_body_bytes).collect();
        let too_slow = async {
            match self.frame_timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        let collected = tokio::select! {
            collected = collecting => collected,
            () = too_slow => {
                self.counters.bad.add(1);
                return Err(answer(StatusCode::REQUEST_TIMEOUT, "body too slow\n"));
            }
            _ = self.stop.cancelled() => return Err(unavailable("the server stops\n")),
        };
        match collected {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
                self.counters.too_large.add(1);
                Err(answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body over max_body_bytes\n",
                ))
            }
            Err(error) => {
                self.counters.bad.add(1);
                Err(answer(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {error}\n"),
                ))
            }
        }
    }
}
