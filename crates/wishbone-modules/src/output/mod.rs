//! Modules that take events out of a server, and what the outputs that
//! talk to peers share: the delivery core (what was written, what the peer
//! acknowledged, what to send again or fail over), the reconnecting shell,
//! and the kernel's count of unacknowledged bytes.

mod ack_reports;
mod counted;
mod delivery;
pub mod null;
pub mod relp;
pub mod shell;
pub(crate) mod socket;
pub mod stdout;
pub mod tcp;
mod tcp_tls;
mod unacknowledged;
pub mod websocket;

pub use delivery::{Delivery, Lost, Released, Stall};

/// How often an output that learns of acknowledgements by asking the
/// kernel (tcp, tcp with TLS, websocket) asks, while something is
/// unacknowledged.
pub(crate) const ACK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);
pub use unacknowledged::unacknowledged_bytes;

use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::time::Instant;

/// How long the unacknowledged count must hold still before a dead
/// connection's events are settled.
const SETTLE_STABLE: Duration = Duration::from_millis(100);
/// The longest a dead connection's settlement waits.
const SETTLE_LONGEST: Duration = Duration::from_secs(1);

/// After a connection ended, waits until the kernel's count of
/// unacknowledged bytes stops changing (or is zero): an acknowledgement the
/// peer delayed may still be on its way, and taking its bytes for lost would
/// send them twice.
pub(crate) async fn settle(socket: &impl AsRawFd) {
    let Ok(mut last) = unacknowledged_bytes(socket) else {
        return;
    };
    let deadline = Instant::now() + SETTLE_LONGEST;
    let mut stable_since = Instant::now();
    while last > 0 && stable_since.elapsed() < SETTLE_STABLE && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
        match unacknowledged_bytes(socket) {
            Ok(now) if now != last => {
                last = now;
                stable_since = Instant::now();
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}
