//! The listening side every input that serves TCP clients shares: bind
//! (or take the launcher's socket), accept up to `max_connections` clients
//! at once (when all are taken and one more waits, the client idle longest
//! makes room: [`crate::presence`]), pause accepting when descriptors or
//! memory run out, serve each client in a task of its own, and on a stop
//! wait for them to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use wishbone_runtime::{ArgumentError, Arguments, ListenAddress, ModuleContext, ModuleError};

use crate::presence::{MIN_IDLE, Presence, Registry};
use wishbone_output::backoff::Backoff;
use wishbone_runtime::Counted;
use wishbone_runtime::seconds;
use wishbone_runtime::{OwnArguments, host_name};
use wishbone_tls::Socket;
use wishbone_tls::TlsArguments;

/// How long a client has to complete a TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// A client's connection, in TLS when the input has an acceptor. A failed
/// handshake gives `None`: counted in `failures`, and logged with its reason
/// for the first failure and every hundredth after it, so that a flood of
/// bad clients cannot flood the log.
async fn handshake(
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    stream: TcpStream,
    module: &str,
    peer: SocketAddr,
    failures: &Counted,
) -> Option<Socket<TcpStream>> {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = acceptor else {
        return Some(Socket::Plain(stream));
    };
    let reason = match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => return Some(Socket::Tls(Box::new(stream.into()))),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no handshake within {HANDSHAKE:?}"),
    };
    failures.add(1);
    let count = failures.total();
    if count == 1 || count.is_multiple_of(100) {
        tracing::warn!(module = %module, %peer, %reason, failures = count, "refused a client: TLS handshake failed");
    }
    None
}

/// The shared arguments a running listener takes from a reload without
/// closing its socket or its clients: new clients get the new TLS
/// settings and slots, frames begun from then on the new timeout. An input
/// lists them among its `Module::live_arguments`.
pub const LIVE: [&str; 3] = ["max_connections", "tls", "frame_timeout"];

/// The arguments every listening input takes.
pub const SHARED: [&str; 6] = [
    "address",
    "port",
    "max_connections",
    "reuse_port",
    "tls",
    "frame_timeout",
];

/// The default of `frame_timeout`, in seconds.
fn default_frame_timeout() -> f64 {
    30.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenArguments {
    /// Interface to listen on.
    #[serde(default = "crate::default_listen_address")]
    address: String,
    /// Port to listen on; 0 lets the system pick one; none: the input's own.
    #[serde(default)]
    port: Option<u16>,
    /// Clients served at once; 0 for half the open-file limit.
    #[serde(default)]
    max_connections: usize,
    /// Share the port with other processes.
    #[serde(default)]
    reuse_port: bool,
    /// TLS on every connection.
    #[serde(default)]
    tls: Option<TlsArguments>,
    /// Seconds a client may take to complete a frame it began; 0: no limit.
    #[serde(default = "default_frame_timeout")]
    frame_timeout: f64,
}

/// Where and how an input listens, made from the arguments every listening
/// input takes (`address`, `port`, `reuse_port`, `max_connections`, `tls`).
pub struct Listening {
    address: ListenAddress,
    /// The input's own port, when `port` is not given.
    default_port: u16,
    max_connections: usize,
    /// With `tls`: every client's handshake, before it is served.
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// How long a frame begun may take; none: no limit.
    frame_timeout: Option<Duration>,
}

/// What the accept loop did, for the input's totals at a stop. Each is
/// also the metric `module.<name>.<field>`.
#[derive(Debug)]
pub struct AcceptTotals {
    /// Clients accepted.
    pub connections: u64,
    /// Accepts that failed for want of descriptors or memory.
    pub accept_failures: u64,
    /// Clients whose TLS handshake failed.
    pub handshake_failures: u64,
    /// Clients closed to make room for a new one.
    pub evicted: u64,
    /// Clients closed for a frame not finished within `frame_timeout`.
    pub timed_out: u64,
}

impl Listening {
    /// Listening as the shared arguments say (`port` defaulting to
    /// `default_port`), and the input's own arguments.
    pub fn split(
        arguments: &Arguments,
        default_port: u16,
    ) -> Result<(Self, OwnArguments), ArgumentError> {
        let (shared, own) = OwnArguments::split(arguments, &SHARED);
        let shared: ListenArguments = shared.deserialize()?;
        host_name("address", &shared.address)?;
        let frame_timeout = seconds("frame_timeout", shared.frame_timeout)?;
        let listening = Self {
            default_port,
            address: ListenAddress {
                host: shared.address,
                port: shared.port.unwrap_or(default_port),
                reuse_port: shared.reuse_port,
            },
            max_connections: shared.max_connections,
            acceptor: shared
                .tls
                .as_ref()
                .map(wishbone_tls::acceptor)
                .transpose()?,
            frame_timeout: (!frame_timeout.is_zero()).then_some(frame_timeout),
        };
        Ok((listening, own))
    }

    /// Where the input listens, for the launcher that binds it beforehand.
    pub fn address(&self) -> ListenAddress {
        self.address.clone()
    }

    /// How long a client may take to complete a frame it began
    /// (`frame_timeout`); none: no limit. An input that reads its frames
    /// through a library of its own (an HTTP server) bounds them with it.
    pub fn frame_timeout(&self) -> Option<Duration> {
        self.frame_timeout
    }

    /// Listens and serves every client, at most `max_connections` at once
    /// (0: half the open-file limit), until the server stops; then waits
    /// for the clients' tasks. For each client `prepare` is called when it
    /// is accepted, and what it returns gets the connection once the TLS
    /// handshake (if any) is done, with the client's [`Presence`], which it
    /// tells of its progress and whose [`Presence::closing`] it heeds.
    pub async fn serve<F, Start, Served>(
        &self,
        context: &mut ModuleContext,
        mut prepare: F,
    ) -> Result<AcceptTotals, ModuleError>
    where
        F: FnMut(SocketAddr, &ModuleContext) -> Start,
        Start: FnOnce(Socket<TcpStream>, Presence) -> Served + 'static,
        Served: Future<Output = ()> + 'static,
    {
        let module = context.name().to_string();
        let connections = Counted::new(&module, "connections");
        let accept_failures = Counted::new(&module, "accept_failures");
        let handshake_failures = Arc::new(Counted::new(&module, "handshake_failures"));
        let wanted = &self.address;
        let listener = context
            .listener(wanted)
            .map_err(|error| ModuleError::io(format!("cannot listen on {wanted}"), error))?;
        let address = listener
            .local_addr()
            .map_err(|error| ModuleError::io("cannot read the listening address", error))?;
        let limit_of = |max_connections: usize| match max_connections {
            0 => default_connection_limit(),
            max => max.min(Semaphore::MAX_PERMITS),
        };
        let mut limit = limit_of(self.max_connections);
        let mut acceptor = self.acceptor.clone();
        let mut updates = context.updates();
        tracing::info!(module = %module, %address, max_connections = limit, "listening");
        let stop = context.stopping();
        let slots = Arc::new(Semaphore::new(limit));
        let mut pauses = AcceptPauses::new();
        let mut clients = JoinSet::new();
        let registry = Registry::new(&module, self.frame_timeout);
        let mut trim = Trim::default();
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
                Ok(()) = updates.changed() => {
                    let arguments = updates.borrow_and_update().clone();
                    match Self::split(&arguments, self.default_port) {
                        Ok((new, _)) => {
                            let wanted = limit_of(new.max_connections);
                            resize(&slots, limit, wanted);
                            limit = wanted;
                            acceptor = new.acceptor;
                            registry.set_frame_timeout(new.frame_timeout);
                            tracing::info!(module = %module, max_connections = limit, "new listening settings for new clients");
                        }
                        Err(error) => tracing::error!(module = %module, %error, "reloaded listening arguments not taken"),
                    }
                    continue;
                }
                _ = housekeeping.tick() => {
                    while clients.try_join_next().is_some() {}
                    if trim.after(clients.len()) {
                        give_back_free_memory();
                    }
                    continue;
                }
            };
            while clients.try_join_next().is_some() {}
            match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = take_slot(&slots, &registry, &stop).await? else {
                        break;
                    };
                    trim.seen(clients.len() + 1);
                    if let Some(failures) = pauses.accepted() {
                        tracing::info!(module = %module, failed_accepts = failures, "accepting connections again");
                    }
                    connections.add(1);
                    let start = prepare(peer, context);
                    let presence = registry.join();
                    let acceptor = acceptor.clone();
                    let failures = handshake_failures.clone();
                    let module = module.clone();
                    clients.spawn_local(async move {
                        // A client still shaking hands may be made to give
                        // up its slot too.
                        let socket = tokio::select! {
                            socket = handshake(acceptor, stream, &module, peer, &failures) => socket,
                            _ = presence.closing() => None,
                        };
                        if let Some(socket) = socket {
                            start(socket, presence).await;
                        }
                        drop(slot);
                    });
                }
                Err(error) => {
                    let (pause, first) = pauses.failed(&error);
                    let Some(pause) = pause else {
                        tracing::debug!(module = %module, %error, "a connection ended before it was accepted");
                        continue;
                    };
                    accept_failures.add(1);
                    if first {
                        tracing::warn!(module = %module, %error, clients = clients.len(), "cannot accept connections; pausing accepts until they work again");
                    }
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
        context.release_listener(listener);
        while clients.join_next().await.is_some() {}
        Ok(AcceptTotals {
            connections: connections.total(),
            accept_failures: accept_failures.total(),
            handshake_failures: handshake_failures.total(),
            evicted: registry.evicted(),
            timed_out: registry.timed_out(),
        })
    }
}

/// Makes `slots` hold `wanted` permits instead of `had`: more at once, or
/// fewer as clients leave.
fn resize(slots: &Arc<Semaphore>, had: usize, wanted: usize) {
    if wanted > had {
        slots.add_permits(wanted - had);
    } else if wanted < had {
        let slots = slots.clone();
        tokio::task::spawn_local(async move {
            if let Ok(taken) = slots.acquire_many_owned((had - wanted) as u32).await {
                taken.forget();
            }
        });
    }
}

/// A slot for a client accepted: a free one, or one the client idle
/// longest gives up (none idle yet: look again each [`MIN_IDLE`], and after
/// the first wait a quiet client may go too). None when the server stops.
async fn take_slot(
    slots: &Arc<Semaphore>,
    registry: &Registry,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<Option<OwnedSemaphorePermit>, ModuleError> {
    if let Ok(slot) = slots.clone().try_acquire_owned() {
        return Ok(Some(slot));
    }
    let mut waited = false;
    loop {
        registry.make_room(waited);
        waited = true;
        tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            slot = slots.clone().acquire_owned() => {
                return slot
                    .map(Some)
                    .map_err(|_| ModuleError::Other("connection limit closed".into()));
            }
            () = tokio::time::sleep(MIN_IDLE) => {}
        }
    }
}

/// How often the accept loop reaps ended clients and considers giving
/// memory back.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// When to give the memory of ended clients back to the system: after the
/// clients served at once fell to a quarter of their peak, a peak of at
/// least [`Trim::PEAK`]. The allocator keeps what it freed for reuse, so a
/// burst of thousands of sessions would otherwise stay resident after
/// they closed.
#[derive(Debug, Default)]
struct Trim {
    peak: usize,
}

impl Trim {
    const PEAK: usize = 256;

    /// `clients` are served now, and more may come.
    fn seen(&mut self, clients: usize) {
        self.peak = self.peak.max(clients);
    }

    /// With `clients` served now: whether to give memory back.
    fn after(&mut self, clients: usize) -> bool {
        self.peak = self.peak.max(clients);
        if self.peak >= Self::PEAK && clients <= self.peak / 4 {
            self.peak = clients;
            return true;
        }
        false
    }
}

/// Returns the allocator's free pages to the system (glibc's
/// `malloc_trim`; elsewhere nothing).
fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Clients served at once when `max_connections` is 0: half the soft limit
/// of open files, leaving the other half to the rest of the server.
pub fn default_connection_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given a valid pointer to.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !known || limit.rlim_cur == libc::RLIM_INFINITY {
        return 65536;
    }
    usize::try_from(limit.rlim_cur / 2).unwrap_or(65536).max(1)
}

/// The accept loop's answer to failed accepts: running out of descriptors
/// or memory is waited out with growing pauses instead of retried at once
/// (which would spin a core and flood the log), and said once per outage.
#[derive(Debug)]
struct AcceptPauses {
    backoff: Backoff,
    /// Failed accepts in the current outage; 0 when accepting works.
    failures: u64,
}

impl AcceptPauses {
    fn new() -> Self {
        Self {
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(1)),
            failures: 0,
        }
    }

    /// An accept failed: how long to pause (none for an error that concerns
    /// one connection only), and whether this failure starts an outage.
    fn failed(&mut self, error: &std::io::Error) -> (Option<Duration>, bool) {
        use std::io::ErrorKind::*;
        if matches!(
            error.kind(),
            ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
        ) {
            return (None, false);
        }
        self.failures += 1;
        (Some(self.backoff.next_wait()), self.failures == 1)
    }

    /// A connection was accepted: the failed accepts of the outage that
    /// ended, if one did.
    fn accepted(&mut self) -> Option<u64> {
        if self.failures == 0 {
            return None;
        }
        let failures = self.failures;
        *self = Self::new();
        Some(failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(kind: std::io::ErrorKind) -> std::io::Error {
        std::io::Error::from(kind)
    }

    #[test]
    fn running_out_of_descriptors_pauses_longer_each_time_and_says_so_once() {
        let mut pauses = AcceptPauses::new();
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        let waits: Vec<(Option<Duration>, bool)> = (0..6).map(|_| pauses.failed(&emfile)).collect();
        assert_eq!(waits[0], (Some(Duration::from_millis(50)), true));
        assert_eq!(waits[1], (Some(Duration::from_millis(100)), false));
        assert_eq!(waits[5], (Some(Duration::from_secs(1)), false));
        assert_eq!(pauses.accepted(), Some(6), "the outage's failures, once");
        assert_eq!(pauses.accepted(), None);
        assert_eq!(
            pauses.failed(&emfile),
            (Some(Duration::from_millis(50)), true)
        );
    }

    #[test]
    fn memory_is_given_back_once_a_burst_of_clients_is_over() {
        let mut trim = Trim::default();
        assert!(
            !(0..100).any(|clients| trim.after(clients)),
            "too few to matter"
        );
        assert!(!trim.after(3000));
        assert!(!trim.after(1000), "still a third of the peak");
        assert!(trim.after(700));
        assert!(!trim.after(600), "once per burst");
        assert!(trim.after(0), "and again once the rest left");
        assert!(!trim.after(0));
        trim.seen(100);
        assert!(!trim.after(0), "a peak of 100 is too small to matter");
    }

    #[test]
    fn a_connection_that_ended_early_is_no_reason_to_pause() {
        let mut pauses = AcceptPauses::new();
        assert_eq!(
            pauses.failed(&error(std::io::ErrorKind::ConnectionAborted)),
            (None, false)
        );
        assert_eq!(pauses.accepted(), None);
    }

    #[test]
    fn the_shared_arguments_are_split_off_and_the_port_defaults_to_the_inputs_own() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Own {
            delimiter: String,
        }
        let arguments = Arguments::from_yaml("{delimiter: ';', max_connections: 3}").unwrap();
        let (listening, own) = Listening::split(&arguments, 2514).unwrap();
        let address = listening.address();
        assert_eq!((address.host.as_str(), address.port), ("0.0.0.0", 2514));
        assert_eq!(listening.max_connections, 3);
        assert!(listening.acceptor.is_none());
        assert_eq!(own.deserialize::<Own>().unwrap().delimiter, ";");
        let given = Arguments::from_yaml("{address: 127.0.0.1, port: 0, delimiter: x}").unwrap();
        assert_eq!(Listening::split(&given, 2514).unwrap().0.address().port, 0);
        let bad = Arguments::from_yaml("{address: 'not a host!'}").unwrap();
        assert!(Listening::split(&bad, 1).is_err());
        let unknown = Arguments::from_yaml("{delimiter: x, prot: 1}").unwrap();
        let error = Listening::split(&unknown, 1)
            .unwrap()
            .1
            .deserialize::<Own>();
        let error = error.unwrap_err().to_string();
        assert!(
            error.contains("unknown field `prot`") && error.contains("`port`"),
            "{error}"
        );
    }

    #[test]
    fn the_default_limit_leaves_room_under_the_open_file_limit() {
        let limit = default_connection_limit();
        let mut rlimit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlimit) };
        assert!(limit >= 1);
        assert!((limit as u64) < rlimit.rlim_cur.max(2));
    }
}
