//! What a transport over TCP needs to know what its peer really received:
//! the kernel's count of unacknowledged bytes ([`unacknowledged_bytes`],
//! `SIOCOUTQ`), its reports of each acknowledgement as it happens
//! ([`ack_reports`], `SO_TIMESTAMPING` TX_ACK), a socket that counts
//! every byte written under a protocol library ([`CountingSocket`]), and
//! what a connection over it hears of acknowledgements
//! ([`Acknowledgements`]).

pub mod ack_reports;
mod acknowledgements;
mod counting;
mod unacknowledged;

use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::time::Instant;

pub use acknowledgements::Acknowledgements;
pub use counting::{CountingSocket, Progress};
pub use unacknowledged::unacknowledged_bytes;

/// How often a connection that learns of acknowledgements by asking the
/// kernel asks, while something is unacknowledged.
pub const ACK_INTERVAL: Duration = Duration::from_millis(1);

/// Ticks every [`ACK_INTERVAL`], late ones delayed rather than bunched:
/// when a connection asks the kernel's count.
pub fn ack_ticks() -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(ACK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// How long the unacknowledged count must hold still before a dead
/// connection's events are settled.
const SETTLE_STABLE: Duration = Duration::from_millis(100);
/// The longest a dead connection's settlement waits.
const SETTLE_LONGEST: Duration = Duration::from_secs(1);

/// How far the peer's TCP stack acknowledged the `written` bytes of
/// `socket`, by the kernel's count of those it did not (`SIOCOUTQ`).
pub fn kernel_acknowledged(socket: &impl AsRawFd, written: u64) -> std::io::Result<u64> {
    let unacknowledged = unacknowledged_bytes(socket)?;
    Ok(written - unacknowledged.min(written))
}

/// After a connection ended, waits until the kernel's count of
/// unacknowledged bytes stops changing (or is zero): an acknowledgement the
/// peer delayed may still be on its way, and taking its bytes for lost would
/// send them twice.
pub async fn settle(socket: &impl AsRawFd) {
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
