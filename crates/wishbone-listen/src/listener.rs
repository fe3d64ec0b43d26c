//! The listening side every input that serves TCP clients shares: bind
//! (or take the launcher's socket), accept up to `max_connections` clients
//! at once (when all are taken and one more waits, the client idle longest
//! makes room: [`crate::presence`]), pause accepting when descriptors or
//! memory run out, serve each client in a task of its own, and on a stop
//! wait for them to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use wishbone_runtime::{ArgumentError, Arguments, ListenAddress, ModuleContext, ModuleError};

use crate::accepting::{HOUSEKEEPING, Serving};
use crate::presence::Presence;
use wishbone_runtime::seconds;
use wishbone_runtime::{OwnArguments, host_name};
use wishbone_tls::Socket;
use wishbone_tls::TlsArguments;

/// The docs of where a listening input that serves with
/// [`Listening::serve_spread`] serves its clients, for its `show --docs`.
#[macro_export]
macro_rules! threads_docs {
    () => {
        "
Threads
  With --threads above 1, each client is served (its TLS handshake and
  decryption, its reading and framing) on the thread where this input has
  the fewest clients, its own first among equals: one client is served
  beside the pipeline, several on every thread. A client stays on one
  thread from start to end, so its events keep their order.
"
    };
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
    pub(crate) max_connections: usize,
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
    pub(crate) address: ListenAddress,
    /// The input's own port, when `port` is not given.
    default_port: u16,
    pub(crate) max_connections: usize,
    /// With `tls`: every client's handshake, before it is served.
    pub(crate) acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// How long a frame begun may take; none: no limit.
    pub(crate) frame_timeout: Option<Duration>,
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

impl std::fmt::Debug for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening")
            .field("address", &self.address)
            .field("max_connections", &self.max_connections)
            .field("tls", &self.acceptor.is_some())
            .field("frame_timeout", &self.frame_timeout)
            .finish()
    }
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
    /// Every client is served on the module's own thread.
    pub async fn serve<F, Start, Served>(
        &self,
        context: &mut ModuleContext,
        prepare: F,
    ) -> Result<AcceptTotals, ModuleError>
    where
        F: FnMut(SocketAddr, &ModuleContext) -> Start,
        Start: FnOnce(Socket<TcpStream>, Presence) -> Served + 'static,
        Served: Future<Output = ()> + 'static,
    {
        self.accept(context, prepare, Serving::spawn).await
    }

    /// As [`Listening::serve`], with each client served on the thread
    /// where the module has the fewest clients, its own first among equals
    /// ([`ModuleContext::spread`]; with `--threads 1` all on its own): one
    /// client stays where the module's queues are, and several share the
    /// cores. A client's TLS handshake and its future run on its thread, so
    /// what `prepare` returns must be `Send`; the future it builds need not
    /// be. A client's order is its own: each is read on one thread.
    pub async fn serve_spread<F, Start, Served>(
        &self,
        context: &mut ModuleContext,
        prepare: F,
    ) -> Result<AcceptTotals, ModuleError>
    where
        F: FnMut(SocketAddr, &ModuleContext) -> Start,
        Start: FnOnce(Socket<TcpStream>, Presence) -> Served + Send + 'static,
        Served: Future<Output = ()> + 'static,
    {
        let spread = context.spread();
        self.accept(
            context,
            prepare,
            move |serving, stream, peer, slot, start| match &spread {
                Some(spread) => serving.spawn_on(spread, stream, peer, slot, start),
                None => serving.spawn(stream, peer, slot, start),
            },
        )
        .await
    }

    /// The accept loop, `place` serving each client accepted.
    async fn accept<F, Start>(
        &self,
        context: &mut ModuleContext,
        mut prepare: F,
        mut place: impl FnMut(&mut Serving, TcpStream, SocketAddr, OwnedSemaphorePermit, Start),
    ) -> Result<AcceptTotals, ModuleError>
    where
        F: FnMut(SocketAddr, &ModuleContext) -> Start,
    {
        let wanted = &self.address;
        let listener = context
            .listener(wanted)
            .map_err(|error| ModuleError::io(format!("cannot listen on {wanted}"), error))?;
        let address = listener
            .local_addr()
            .map_err(|error| ModuleError::io("cannot read the listening address", error))?;
        let mut serving = Serving::new(context.name(), self);
        let mut updates = context.updates();
        tracing::info!(module = %context.name(), %address, max_connections = serving.limit(), "listening");
        let stop = context.stopping();
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
                Ok(()) = updates.changed() => {
                    let arguments = updates.borrow_and_update().clone();
                    match Self::split(&arguments, self.default_port) {
                        Ok((new, _)) => serving.take_settings(new),
                        Err(error) => tracing::error!(module = %context.name(), %error, "reloaded listening arguments not taken"),
                    }
                    continue;
                }
                _ = housekeeping.tick() => {
                    serving.housekeep();
                    continue;
                }
            };
            serving.reap();
            match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = serving.slot(&stop).await? else {
                        break;
                    };
                    let start = prepare(peer, context);
                    place(&mut serving, stream, peer, slot, start);
                }
                Err(error) => {
                    if !serving.accept_failed(error, &stop).await {
                        break;
                    }
                }
            }
        }
        context.release_listener(listener);
        Ok(serving.finish().await)
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

#[cfg(test)]
mod tests {
    use super::*;

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
