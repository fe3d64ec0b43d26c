//! Exponential backoff between reconnection attempts, and the outage it
//! belongs to.

use std::time::Duration;

/// The wait before the next attempt: `initial`, doubling up to `max`. Every
/// failure waits, whether the connection could not be made or died soon
/// after it was made; only a connection that held for at least `max` ends
/// the outage and brings short waits back.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    /// Whether the current outage was already logged.
    announced: bool,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let max = max.max(initial);
        Self {
            initial,
            max,
            next: initial,
            announced: false,
        }
    }

    /// The wait before the next attempt; each call doubles the one after.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// True for the first failure of an outage, the one to log as a warning.
    pub fn announce(&mut self) -> bool {
        !std::mem::replace(&mut self.announced, true)
    }

    /// A connection ended after `lasted`: if it held for at least the
    /// longest wait, the outage was over and the next one starts afresh.
    pub fn connection_ended(&mut self, lasted: Duration) {
        if lasted >= self.max {
            self.next = self.initial;
            self.announced = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_ceiling_and_a_lasting_connection_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let waits: Vec<u128> = (0..4).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        backoff.connection_ended(Duration::from_millis(350));
        assert_eq!(backoff.next_wait().as_millis(), 100);
    }

    #[test]
    fn a_connection_that_dies_at_once_keeps_the_waits_growing() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert!(backoff.announce(), "the first failure is logged");
        backoff.next_wait();
        backoff.connection_ended(Duration::from_millis(5));
        assert_eq!(backoff.next_wait().as_millis(), 200);
        assert!(!backoff.announce(), "the same outage is not logged again");
        backoff.connection_ended(Duration::from_secs(2));
        assert!(backoff.announce(), "a new outage is");
    }
}
