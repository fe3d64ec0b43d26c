//! The builtin outputs. Those that reach a peer (tcp, tcp with TLS,
//! websocket, RELP) are each a transport on the one pump and shell of
//! `wishbone-output`: what they hold here is only how to connect, write and
//! learn what the peer acknowledged.

pub mod null;
pub mod relp;
pub mod stdout;
pub mod tcp;
mod tcp_tls;
pub mod websocket;
