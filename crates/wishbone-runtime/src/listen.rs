//! Listening sockets: how an input binds its port, and how the instances of
//! `wishbone start --instances N` share the sockets their launcher bound.
//!
//! The launcher binds every listening socket once, without `SO_REUSEPORT`
//! unless a module asked for it, and its instances inherit them: all of them
//! accept from the same socket, and a second, unrelated server on the same
//! port fails with "address in use" instead of silently joining.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::{Arc, Mutex};

/// The environment variable through which a launcher tells its instances
/// which inherited descriptor belongs to which module: `input=3,relp=4`.
pub const LISTENERS_VARIABLE: &str = "WISHBONE_LISTENERS";

/// The environment variable in which the launcher of `--instances` tells
/// each instance which it is, from 0.
pub const INSTANCE_VARIABLE: &str = "WISHBONE_INSTANCE";

/// Which instance this process is ([`INSTANCE_VARIABLE`]; 0 when unset).
pub fn instance_from_environment() -> usize {
    std::env::var(INSTANCE_VARIABLE)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

/// Where a module listens, as its arguments say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenAddress {
    /// An IP address or a host name.
    pub host: String,
    /// The port; 0 lets the system pick one.
    pub port: u16,
    /// Share the port with other sockets (`SO_REUSEPORT`), as the user chose.
    pub reuse_port: bool,
}

impl std::fmt::Display for ListenAddress {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}:{}", self.host, self.port)
    }
}

/// Binds a listening TCP socket with `SO_REUSEADDR` (a restarted server gets
/// its port back at once), `SO_REUSEPORT` only when asked, non-blocking.
pub fn bind(address: &ListenAddress) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let resolved: SocketAddr = (address.host.as_str(), address.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::AddrNotAvailable,
                "address resolves to nothing",
            )
        })?;
    let socket = Socket::new(Domain::for_address(resolved), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if address.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&resolved.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Listening sockets bound by a launcher, by module name, each taken once.
#[derive(Clone, Debug, Default)]
pub struct InheritedListeners(Arc<Mutex<HashMap<String, TcpListener>>>);

impl InheritedListeners {
    /// Sockets already bound in this process (a launcher's, or a test's).
    pub fn new(listeners: impl IntoIterator<Item = (String, TcpListener)>) -> Self {
        Self(Arc::new(Mutex::new(listeners.into_iter().collect())))
    }

    /// The sockets named by [`LISTENERS_VARIABLE`], if it is set.
    pub fn from_environment() -> Result<Self, String> {
        let Ok(text) = std::env::var(LISTENERS_VARIABLE) else {
            return Ok(Self::default());
        };
        let mut listeners = Vec::new();
        for entry in text.split(',').filter(|entry| !entry.is_empty()) {
            let parsed = entry
                .split_once('=')
                .and_then(|(module, fd)| Some((module, fd.parse::<RawFd>().ok()?)));
            let Some((module, fd)) = parsed else {
                return Err(format!(
                    "{LISTENERS_VARIABLE}: `{entry}` is not module=descriptor"
                ));
            };
            if !is_listening_socket(fd) {
                return Err(format!(
                    "{LISTENERS_VARIABLE}: descriptor {fd} of `{module}` is not a listening socket"
                ));
            }
            // SAFETY: the launcher opened this descriptor for `module` and
            // left it open across exec; it was just checked to be a listening
            // socket, and nothing else in this process owns it.
            let listener = unsafe { TcpListener::from_raw_fd(fd) };
            listeners.push((module.to_string(), listener));
        }
        Ok(Self::new(listeners))
    }

    /// Takes the socket bound for `module`, if there is one.
    pub fn take(&self, module: &str) -> Option<TcpListener> {
        self.0.lock().ok()?.remove(module)
    }

    /// Keeps a socket for the next module of this name to take (a
    /// replacement at a reload).
    pub fn put(&self, module: &str, listener: TcpListener) {
        if let Ok(mut listeners) = self.0.lock() {
            listeners.insert(module.to_string(), listener);
        }
    }

    /// `module=descriptor` pairs for [`LISTENERS_VARIABLE`], and the
    /// descriptors a child must inherit.
    pub fn describe(listeners: &[(String, TcpListener)]) -> (String, Vec<RawFd>) {
        let text = listeners
            .iter()
            .map(|(module, listener)| format!("{module}={}", listener.as_raw_fd()))
            .collect::<Vec<_>>()
            .join(",");
        let descriptors = listeners
            .iter()
            .map(|(_, listener)| listener.as_raw_fd())
            .collect();
        (text, descriptors)
    }
}

fn is_listening_socket(fd: RawFd) -> bool {
    let mut accepting: libc::c_int = 0;
    let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt with a valid pointer to an int and its length; a
    // descriptor that is not open or not a socket makes it fail, nothing more.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut accepting as *mut libc::c_int).cast(),
            &mut length,
        )
    };
    result == 0 && accepting == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback(reuse_port: bool) -> ListenAddress {
        ListenAddress {
            host: "127.0.0.1".into(),
            port: 0,
            reuse_port,
        }
    }

    #[test]
    fn a_second_socket_on_a_bound_port_is_refused_unless_both_share() {
        let first = bind(&loopback(false)).unwrap();
        let port = first.local_addr().unwrap().port();
        let again = ListenAddress {
            port,
            ..loopback(false)
        };
        let error = bind(&again).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
        let sharing = bind(&loopback(true)).unwrap();
        let port = sharing.local_addr().unwrap().port();
        bind(&ListenAddress {
            port,
            ..loopback(true)
        })
        .expect("two SO_REUSEPORT sockets share a port");
    }

    #[test]
    fn listeners_are_described_and_taken_once() {
        let listener = bind(&loopback(false)).unwrap();
        let fd = listener.as_raw_fd();
        let listeners = vec![("input".to_string(), listener)];
        let (text, descriptors) = InheritedListeners::describe(&listeners);
        assert_eq!(text, format!("input={fd}"));
        assert_eq!(descriptors, vec![fd]);
        assert!(is_listening_socket(fd));
        let inherited = InheritedListeners::new(listeners);
        assert!(inherited.take("input").is_some());
        assert!(inherited.take("input").is_none());
        assert!(!is_listening_socket(-1));
    }
}
