//! What a connection over a [`CountingSocket`](super::CountingSocket)
//! hears of its peer's acknowledgements, as one stream of positions.

use tokio::time::Interval;

use super::{Progress, ack_ticks};

/// The peer's acknowledgements on a counting socket: the kernel's reports
/// as they come and, where there are none (and as a safety net should they
/// stop), its count every [`ACK_INTERVAL`](super::ACK_INTERVAL) while something is
/// unacknowledged. A connection's [`heard`](crate::Connection::heard)
/// waits on [`Acknowledgements::next`] beside its own reads.
pub struct Acknowledgements {
    progress: Progress,
    /// The furthest position told.
    told: u64,
    tick: Interval,
}

impl Acknowledgements {
    /// Follows the socket `progress` watches.
    pub fn new(progress: Progress) -> Self {
        Self {
            progress,
            told: 0,
            tick: ack_ticks(),
        }
    }

    /// The socket's count of what was written.
    #[inline]
    pub fn written(&self) -> u64 {
        self.progress.written()
    }

    /// Waits for the peer to acknowledge further than the last position
    /// told, and tells it. Cancel-safe; an error is the connection's.
    pub async fn next(&mut self) -> Result<u64, String> {
        loop {
            if let Some(position) = self.progress.acknowledged_now()
                && position > self.told
            {
                self.told = position;
                return Ok(position);
            }
            let outstanding = self.progress.written() > self.told;
            tokio::select! {
                biased;
                reported = self.progress.reported() => {
                    reported?;
                }
                _ = self.tick.tick(), if outstanding => {
                    if let Some(position) = self.progress.kernel_count()
                        && position > self.told
                    {
                        self.told = position;
                        return Ok(position);
                    }
                }
            }
        }
    }

    /// The end of the connection: what the peer acknowledged before it
    /// still counts (once the kernel's count settled, when it died).
    pub async fn finish(&self, lost: bool) -> Option<u64> {
        self.progress.finish(lost).await
    }
}
