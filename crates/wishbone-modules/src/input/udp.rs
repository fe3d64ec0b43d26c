//! `wishbone.input.udp`: one event per UDP datagram, read many at a time,
//! with what the kernel dropped counted. The text `wishbone show --docs`
//! prints is [`DOCS`].

use std::net::{SocketAddr, ToSocketAddrs};

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use socket2::{Domain, Socket, Type};
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

use super::datagrams::{count_kernel_drops, registered, set_int_option};
use super::receiving::receive_all;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.input.udp: events from UDP datagrams, one per datagram.

Queues
  outbox     every datagram received, a trailing newline dropped

Arguments (default)
  address               interface to listen on, an IP address or host name
                        ("0.0.0.0")
  port                  port to listen on (514, which takes root or
                        CAP_NET_BIND_SERVICE); 0 picks a free port, logged
                        at start
  max_datagram          longest datagram in bytes, 1 to 65535 (65535); a
                        longer one is cut to it and counted in truncated
  receive_buffer_bytes  the socket's receive buffer, SO_RCVBUF (0: the
                        system's default, net.core.rmem_default); past
                        net.core.rmem_max it is forced (SO_RCVBUFFORCE)
                        where the process may (root); the size the kernel
                        gives is logged at start
  reuse_port            share the port with other processes, SO_REUSEPORT
                        (false)

Delivery
  UDP promises nothing: a sender learns of no loss. While the outbox is
  full the input waits, the socket's receive buffer fills and the kernel
  drops what does not fit. Those drops are counted, not guessed: the kernel
  says with each datagram how many it dropped before it (SO_RXQ_OVFL),
  and at stop the count is read once more (SO_MEMINFO). Datagrams are read
  up to 64 per system call (recvmmsg), and up to 1,024 go on the outbox
  as one parcel.

Metrics (module.<name>.<counter>)
  events             datagrams put on outbox
  truncated          datagrams longer than max_datagram, cut
  dropped_by_kernel  datagrams the kernel dropped for want of room in the
                     receive buffer (also in the totals logged at stop)

Example
  modules:
    syslog_udp:
      module: wishbone.input.udp
      arguments: {port: 514, receive_buffer_bytes: 8388608}
    decode: {module: wishbone.process.decode, arguments: {format: syslog}}
  routingtable:
    - syslog_udp.outbox -> decode.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.input.udp",
    aliases: &[],
    description: "events from UDP datagrams, one per datagram",
    docs: DOCS,
    queues: QueueSpec::SOURCE,
    build,
};

/// The arguments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Interface to listen on.
    #[serde(default = "default_address")]
    pub address: String,
    /// Port to listen on.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Longest datagram in bytes.
    #[serde(default = "default_max_datagram")]
    pub max_datagram: usize,
    /// SO_RCVBUF; 0 keeps the system's default.
    #[serde(default)]
    pub receive_buffer_bytes: usize,
    /// SO_REUSEPORT.
    #[serde(default)]
    pub reuse_port: bool,
}

fn default_address() -> String {
    "0.0.0.0".into()
}

fn default_port() -> u16 {
    514
}

/// The largest datagram, and the default.
pub(crate) fn default_max_datagram() -> usize {
    65_535
}

/// Checks `max_datagram`, shared with the unix input.
pub(crate) fn checked_max_datagram(max_datagram: usize) -> Result<usize, ArgumentError> {
    match max_datagram {
        1..=65_535 => Ok(max_datagram),
        _ => Err(ArgumentError::field(
            "max_datagram",
            "must be from 1 to 65535",
        )),
    }
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    checked_max_datagram(config.max_datagram)?;
    wishbone_runtime::host_name("address", &config.address)?;
    Ok(Box::new(UdpInput { config }))
}

/// The module.
pub struct UdpInput {
    config: Config,
}

impl UdpInput {
    /// The socket, bound and ready.
    fn bind(&self) -> Result<Socket, String> {
        let config = &self.config;
        let address: SocketAddr = (config.address.as_str(), config.port)
            .to_socket_addrs()
            .map_err(|error| format!("cannot resolve `{}`: {error}", config.address))?
            .next()
            .ok_or_else(|| format!("`{}` resolves to no address", config.address))?;
        let socket = Socket::new(Domain::for_address(address), Type::DGRAM, None)
            .map_err(|error| error.to_string())?;
        if config.reuse_port {
            socket
                .set_reuse_port(true)
                .map_err(|error| format!("SO_REUSEPORT: {error}"))?;
        }
        if config.receive_buffer_bytes > 0 {
            receive_buffer(&socket, config.receive_buffer_bytes)?;
        }
        count_kernel_drops(&socket).map_err(|error| format!("SO_RXQ_OVFL: {error}"))?;
        socket
            .bind(&address.into())
            .map_err(|error| format!("cannot listen on {address}: {error}"))?;
        socket
            .set_nonblocking(true)
            .map_err(|error| error.to_string())?;
        Ok(socket)
    }

    async fn serve(self, mut context: ModuleContext) -> Result<(), ModuleError> {
        let module = context.name().to_string();
        let socket = self.bind().map_err(ModuleError::Other)?;
        let address = socket
            .local_addr()
            .ok()
            .and_then(|address| address.as_socket())
            .map_or_else(String::new, |address| address.to_string());
        let buffer = socket.recv_buffer_size().unwrap_or_default();
        tracing::info!(module = %module, %address, receive_buffer_bytes = buffer, "listening");
        let socket = registered(socket).map_err(|error| ModuleError::Other(error.to_string()))?;
        let outbox = context.outgoing("outbox");
        let (stop, abort) = (context.stopping(), context.aborting());
        drop(context);
        receive_all(
            socket,
            &module,
            self.config.max_datagram,
            outbox,
            stop,
            abort,
        )
        .await;
        Ok(())
    }
}

/// Asks for a receive buffer of `bytes`: SO_RCVBUF, capped by the kernel
/// at net.core.rmem_max, then SO_RCVBUFFORCE past that cap where the
/// process may (root, or CAP_NET_ADMIN), as rsyslog's imudp does.
fn receive_buffer(socket: &Socket, bytes: usize) -> Result<(), String> {
    socket
        .set_recv_buffer_size(bytes)
        .map_err(|error| format!("SO_RCVBUF: {error}"))?;
    // The kernel doubles what it is asked for, for its own bookkeeping.
    if socket.recv_buffer_size().unwrap_or(0) >= bytes.saturating_mul(2) {
        return Ok(());
    }
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // Refused without the privilege: the buffer stays as SO_RCVBUF left it.
    let _ = set_int_option(socket, libc::SO_RCVBUFFORCE, bytes);
    Ok(())
}

impl Module for UdpInput {
    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        Box::pin((*self).serve(context))
    }
}
