//! The accept loop's state: a slot per client (`max_connections`, the
//! idlest client evicted for a new one), each client's task with its TLS
//! handshake, pauses when accepting fails, memory given back after a
//! burst, and the totals.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wishbone_output::backoff::Backoff;
use wishbone_runtime::{Counted, ModuleError, Spread};
use wishbone_tls::Socket;

use crate::listener::{AcceptTotals, Listening, default_connection_limit};
use crate::presence::{MIN_IDLE, Presence, Registry};

/// A listener's clients and what it counts of them.
pub(crate) struct Serving {
    module: String,
    connections: Counted,
    accept_failures: Counted,
    handshake_failures: Arc<Counted>,
    /// Clients served at once, at most.
    limit: usize,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    slots: Arc<Semaphore>,
    pauses: AcceptPauses,
    clients: JoinSet<()>,
    registry: Registry,
    trim: Trim,
}

impl Serving {
    pub(crate) fn new(module: &str, listening: &Listening) -> Self {
        let limit = limit_of(listening.max_connections);
        Self {
            module: module.to_string(),
            connections: Counted::new(module, "connections"),
            accept_failures: Counted::new(module, "accept_failures"),
            handshake_failures: Arc::new(Counted::new(module, "handshake_failures")),
            limit,
            acceptor: listening.acceptor.clone(),
            slots: Arc::new(Semaphore::new(limit)),
            pauses: AcceptPauses::new(),
            clients: JoinSet::new(),
            registry: Registry::new(module, listening.frame_timeout),
            trim: Trim::default(),
        }
    }

    /// Clients served at once, at most.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// A reload's settings, for the clients that come next.
    pub(crate) fn take_settings(&mut self, new: Listening) {
        let wanted = limit_of(new.max_connections);
        resize(&self.slots, self.limit, wanted);
        self.limit = wanted;
        self.acceptor = new.acceptor;
        self.registry.set_frame_timeout(new.frame_timeout);
        tracing::info!(module = %self.module, max_connections = self.limit, "new listening settings for new clients");
    }

    /// Forgets the clients that ended.
    pub(crate) fn reap(&mut self) {
        while self.clients.try_join_next().is_some() {}
    }

    /// Every [`HOUSEKEEPING`]: ended clients forgotten, and memory given
    /// back once a burst is over.
    pub(crate) fn housekeep(&mut self) {
        self.reap();
        if self.trim.after(self.clients.len()) {
            wishbone_runtime::memory::give_back();
        }
    }

    /// A slot for a client just accepted ([`take_slot`]); none when the
    /// server stops.
    pub(crate) async fn slot(
        &mut self,
        stop: &CancellationToken,
    ) -> Result<Option<OwnedSemaphorePermit>, ModuleError> {
        let Some(slot) = take_slot(&self.slots, &self.registry, stop).await? else {
            return Ok(None);
        };
        self.trim.seen(self.clients.len() + 1);
        if let Some(failures) = self.pauses.accepted() {
            tracing::info!(module = %self.module, failed_accepts = failures, "accepting connections again");
        }
        self.connections.add(1);
        Ok(Some(slot))
    }

    /// Serves a client in a task of its own on this thread: its TLS
    /// handshake (which its eviction may cut short), then `start`; its
    /// slot is given back at the end.
    pub(crate) fn spawn<Start, Served>(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        slot: OwnedSemaphorePermit,
        start: Start,
    ) where
        Start: FnOnce(Socket<TcpStream>, Presence) -> Served + 'static,
        Served: Future<Output = ()> + 'static,
    {
        let arrival = self.arrival(peer, slot);
        self.clients.spawn_local(arrival.serve(stream, start));
    }

    /// As [`Serving::spawn`], on the thread `spread` chooses: the
    /// connection leaves this thread's event loop for that one's, and this
    /// thread keeps a task that ends when the client's does, so that a
    /// stop waits for it as for any other.
    pub(crate) fn spawn_on<Start, Served>(
        &mut self,
        spread: &Spread,
        stream: TcpStream,
        peer: SocketAddr,
        slot: OwnedSemaphorePermit,
        start: Start,
    ) where
        Start: FnOnce(Socket<TcpStream>, Presence) -> Served + Send + 'static,
        Served: Future<Output = ()> + 'static,
    {
        let arrival = self.arrival(peer, slot);
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(module = %self.module, %peer, %error, "cannot hand a client to another thread; closed");
                return;
            }
        };
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        // When the thread has stopped, the client is dropped unserved
        // (closed), which ends the wait too.
        spread.run(move |placed| {
            tokio::task::spawn_local(async move {
                let _held = (placed, done);
                match TcpStream::from_std(stream) {
                    Ok(stream) => arrival.serve(stream, start).await,
                    Err(error) => {
                        tracing::warn!(module = %arrival.module, %peer, %error, "cannot serve a client handed to this thread; closed");
                    }
                }
            });
        });
        self.clients.spawn_local(async move {
            let _ = finished.await;
        });
    }

    /// What serving a client just accepted takes from here.
    fn arrival(&self, peer: SocketAddr, slot: OwnedSemaphorePermit) -> Arrival {
        Arrival {
            module: self.module.clone(),
            peer,
            slot,
            presence: self.registry.join(),
            acceptor: self.acceptor.clone(),
            failures: self.handshake_failures.clone(),
        }
    }

    /// An accept failed: pauses as [`AcceptPauses`] says. False when the
    /// server stopped meanwhile.
    pub(crate) async fn accept_failed(
        &mut self,
        error: std::io::Error,
        stop: &CancellationToken,
    ) -> bool {
        let (pause, first) = self.pauses.failed(&error);
        let Some(pause) = pause else {
            tracing::debug!(module = %self.module, %error, "a connection ended before it was accepted");
            return true;
        };
        self.accept_failures.add(1);
        if first {
            tracing::warn!(module = %self.module, %error, clients = self.clients.len(), "cannot accept connections; pausing accepts until they work again");
        }
        tokio::select! {
            _ = stop.cancelled() => false,
            () = tokio::time::sleep(pause) => true,
        }
    }

    /// Waits for every client's task, and says what was counted.
    pub(crate) async fn finish(mut self) -> AcceptTotals {
        while self.clients.join_next().await.is_some() {}
        AcceptTotals {
            connections: self.connections.total(),
            accept_failures: self.accept_failures.total(),
            handshake_failures: self.handshake_failures.total(),
            evicted: self.registry.evicted(),
            timed_out: self.registry.timed_out(),
        }
    }
}

/// A client accepted, not yet served: what its task needs, on whichever
/// thread it runs.
struct Arrival {
    module: String,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    presence: Presence,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    failures: Arc<Counted>,
}

impl Arrival {
    /// The TLS handshake (which eviction may cut short), then `start`; the
    /// slot is given back at the end.
    async fn serve<Start, Served>(self, stream: TcpStream, start: Start)
    where
        Start: FnOnce(Socket<TcpStream>, Presence) -> Served,
        Served: Future<Output = ()>,
    {
        let Arrival {
            module,
            peer,
            slot,
            presence,
            acceptor,
            failures,
        } = self;
        let socket = tokio::select! {
            socket = handshake(acceptor, stream, &module, peer, &failures) => socket,
            _ = presence.closing() => None,
        };
        if let Some(socket) = socket {
            start(socket, presence).await;
        }
        drop(slot);
    }
}

/// Clients served at once for `max_connections` (0: the default).
fn limit_of(max_connections: usize) -> usize {
    match max_connections {
        0 => default_connection_limit(),
        max => max.min(Semaphore::MAX_PERMITS),
    }
}

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
pub(crate) const HOUSEKEEPING: Duration = Duration::from_secs(1);

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
}
