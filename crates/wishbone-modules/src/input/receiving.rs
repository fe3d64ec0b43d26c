//! The loop of an input that receives datagrams (`wishbone.input.udp`, and
//! `wishbone.input.unix` with `type: datagram`): it waits for datagrams,
//! takes what waits in a few `recvmmsg` calls, and puts them on the outbox
//! as one parcel. A datagram socket cannot push back: while the outbox is
//! full the loop waits, the socket's receive buffer fills, and the kernel
//! drops what does not fit; those drops are counted in
//! `module.<name>.dropped_by_kernel` and in the totals at stop.

use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio_util::sync::CancellationToken;
use wishbone_runtime::queue::Sender;
use wishbone_runtime::{Counted, Parcel};

use super::datagrams::{Datagrams, Received, kernel_drops_now, lines_builder};

/// `recvmmsg` calls gathered into one parcel, at most, when datagrams keep
/// coming.
const CALLS_PER_PARCEL: usize = 16;

/// What the input counts.
pub(crate) struct Counters {
    events: Counted,
    truncated: Counted,
    dropped_by_kernel: Counted,
    /// The kernel's count when last heard.
    kernel_count: u32,
}

impl Counters {
    pub(crate) fn new(module: &str) -> Self {
        Self {
            events: Counted::new(module, "events"),
            truncated: Counted::new(module, "truncated"),
            dropped_by_kernel: Counted::new(module, "dropped_by_kernel"),
            kernel_count: 0,
        }
    }

    /// Takes in what a read said.
    fn received(&mut self, received: &Received) {
        self.truncated.add(received.truncated);
        if let Some(count) = received.kernel_drops {
            self.kernel_dropped(count);
        }
    }

    /// The kernel's count of drops (it only grows, wrapping at 2^32).
    fn kernel_dropped(&mut self, count: u32) {
        let new = count.wrapping_sub(self.kernel_count);
        if new > 0 && new < u32::MAX / 2 {
            self.dropped_by_kernel.add(u64::from(new));
            self.kernel_count = count;
        }
    }
}

/// Receives from `socket` until `stop`, then logs the totals.
pub(crate) async fn receive_all<S: AsRawFd>(
    socket: AsyncFd<S>,
    module: &str,
    max_datagram: usize,
    outbox: Sender,
    stop: CancellationToken,
    abort: CancellationToken,
) {
    let mut datagrams = Datagrams::new(max_datagram);
    let mut counters = Counters::new(module);
    let mut failing = false;
    loop {
        let mut lines = lines_builder(max_datagram);
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            first = datagrams.receive(&socket, &mut lines) => first,
        };
        let mut count = match first {
            Ok((count, received)) => {
                counters.received(&received);
                failing = false;
                count
            }
            Err(error) => {
                if !failing {
                    tracing::error!(module = %module, %error, "cannot receive; trying again every 100 ms");
                    failing = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        for _ in 1..CALLS_PER_PARCEL {
            match datagrams.read(socket.get_ref().as_raw_fd(), &mut lines) {
                Ok((more, received)) => {
                    counters.received(&received);
                    count += more;
                }
                // Nothing more waits (WouldBlock), or an error the next
                // wait reports.
                Err(_) => break,
            }
        }
        let parcel = Parcel::Lines(lines.finish());
        let sent = tokio::select! {
            biased;
            sent = outbox.send(parcel) => sent.is_ok(),
            _ = abort.cancelled() => false,
        };
        if !sent {
            tracing::error!(module = %module, events = count, "aborted with events not yet queued");
            break;
        }
        counters.events.add(count as u64);
    }
    if let Ok(count) = kernel_drops_now(socket.get_ref()) {
        counters.kernel_dropped(count);
    }
    tracing::info!(
        module = %module,
        events = counters.events.total(),
        truncated = counters.truncated.total(),
        dropped_by_kernel = counters.dropped_by_kernel.total(),
        "input totals"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_count_is_taken_as_it_grows_and_wraps() {
        let mut counters = Counters::new("udp");
        counters.kernel_dropped(5);
        counters.kernel_dropped(5);
        counters.kernel_dropped(3);
        assert_eq!(
            counters.dropped_by_kernel.total(),
            5,
            "a count never goes back"
        );
        counters.kernel_dropped(12);
        assert_eq!(counters.dropped_by_kernel.total(), 12);
        counters.kernel_count = u32::MAX - 1;
        counters.kernel_dropped(2);
        assert_eq!(counters.dropped_by_kernel.total(), 16, "wrapped past 2^32");
    }
}
