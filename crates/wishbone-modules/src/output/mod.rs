//! Modules that take events out of a server, and what the outputs that
//! talk to peers over TCP share: the record of events in flight, the
//! kernel's count of unacknowledged bytes, and the rule for events a
//! write-ahead buffer sent.

mod inflight;
pub mod null;
mod segments;
pub mod stdout;
pub mod tcp;
mod unacknowledged;
pub mod websocket;

pub use inflight::InFlight;
pub use segments::Segments;
pub use unacknowledged::unacknowledged_bytes;

use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::time::Instant;
use wishbone_runtime::Batch;

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

/// Events that carry a write-ahead buffer's token are failed back to it (it
/// sends them again, perhaps through another output); the rest stay.
pub(crate) fn release_buffered(batch: Batch) -> Batch {
    batch.into_iter().filter(|event| !event.fail()).collect()
}
