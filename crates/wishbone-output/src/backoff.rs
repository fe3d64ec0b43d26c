//! Exponential backoff between reconnection attempts, and the outage it
//! belongs to.

use std::time::{Duration, Instant};

use wishbone_runtime::random::Random;

/// A reason logged in this outage is logged again, after another one, once
/// this long has passed: a peer whose failures alternate (a reset, then a
/// close) costs a line per reason this often, not a line per retry.
const AGAIN_AFTER: Duration = Duration::from_secs(30);

/// Reasons of one outage remembered, at most.
const REMEMBERED: usize = 8;

/// The wait before the next attempt: `initial`, doubling up to `max`. Every
/// failure waits, whether the connection could not be made or died soon
/// after it was made; only a connection that held for at least `max` ends
/// the outage and brings short waits back. Within an outage, what to log
/// is its first failure and each change of reason.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    /// The current outage's reasons logged, the last one last, with when.
    announced: Vec<(String, Instant)>,
    /// With jitter: each wait shortened by a random part of up to half
    /// of it.
    jitter: Option<Random>,
}

impl Backoff {
    /// Waits that start at `initial` and double up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let max = max.max(initial);
        Self {
            initial,
            max,
            next: initial,
            announced: Vec::new(),
            jitter: None,
        }
    }

    /// The same waits, each shortened by a random part of up to half of
    /// it: many clients of one server that failed together (every output
    /// of a fleet to one store) do not all come back at the same instant.
    /// `seed` picks the sequence; 0 takes one from the clock.
    pub fn with_jitter(mut self, seed: u64) -> Self {
        let seed = match seed {
            0 => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |elapsed| elapsed.as_nanos() as u64),
            seed => seed,
        };
        self.jitter = Some(Random(seed.max(1)));
        self
    }

    /// The wait before the next attempt; each call doubles the one after.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        match &mut self.jitter {
            Some(random) => wait - wait.mul_f64(random.below(1_000) as f64 / 2_000.0),
            None => wait,
        }
    }

    /// True for the first failure of an outage and for a failure whose
    /// reason differs from the one last logged (unless that reason was
    /// logged in this outage less than `AGAIN_AFTER` (30 s) ago): the ones to log
    /// as a warning. Others are logged at debug level.
    pub fn announce(&mut self, reason: &str, now: Instant) -> bool {
        if self
            .announced
            .last()
            .is_some_and(|(last, _)| last == reason)
        {
            return false;
        }
        if let Some(at) = self.announced.iter().position(|(seen, _)| seen == reason) {
            let (_, when) = self.announced.remove(at);
            if now.duration_since(when) < AGAIN_AFTER {
                self.announced.push((reason.to_string(), when));
                return false;
            }
        }
        if self.announced.len() == REMEMBERED {
            self.announced.remove(0);
        }
        self.announced.push((reason.to_string(), now));
        true
    }

    /// Whether an outage is under way: a failure was logged and no
    /// connection has held since. A connection made now is not yet a sign
    /// of health.
    pub fn in_outage(&self) -> bool {
        !self.announced.is_empty()
    }

    /// How long a connection must hold to end an outage.
    pub fn healthy_after(&self) -> Duration {
        self.max
    }

    /// A connection ended after `lasted`: if it held for at least the
    /// longest wait, the outage was over and the next one starts afresh.
    pub fn connection_ended(&mut self, lasted: Duration) {
        if lasted >= self.max {
            self.next = self.initial;
            self.announced.clear();
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
    fn jitter_shortens_each_wait_by_up_to_half_and_varies() {
        let mut backoff =
            Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).with_jitter(42);
        let waits: Vec<Duration> = (0..40).map(|_| backoff.next_wait()).collect();
        let plain = [100, 200, 400, 800]
            .into_iter()
            .chain(std::iter::repeat(1_000));
        for (wait, plain) in waits.iter().zip(plain) {
            let plain = Duration::from_millis(plain);
            assert!(
                *wait <= plain && *wait >= plain / 2,
                "{wait:?} of {plain:?}"
            );
        }
        let ceiling = &waits[4..];
        assert!(
            ceiling.iter().any(|wait| *wait != ceiling[0]),
            "not all the same"
        );
    }

    #[test]
    fn a_connection_that_dies_at_once_keeps_the_waits_growing() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let now = Instant::now();
        assert!(!backoff.in_outage());
        assert!(
            backoff.announce("refused", now),
            "the first failure is logged"
        );
        assert!(backoff.in_outage());
        backoff.next_wait();
        backoff.connection_ended(Duration::from_millis(5));
        assert_eq!(backoff.next_wait().as_millis(), 200);
        assert!(
            backoff.in_outage(),
            "a connection that died at once ends nothing"
        );
        assert!(
            !backoff.announce("refused", now),
            "the same outage is not logged again"
        );
        backoff.connection_ended(Duration::from_secs(2));
        assert!(!backoff.in_outage());
        assert!(backoff.announce("refused", now), "a new outage is");
    }

    #[test]
    fn each_change_of_reason_is_announced_and_alternating_ones_not_each_time() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let start = Instant::now();
        let reasons = [
            (0, "refused"),
            (1, "refused"),
            (2, "500"),
            (3, "500"),
            (4, "unknown issuer"),
            // Back to one logged a moment ago, and alternating: quiet.
            (5, "500"),
            (6, "unknown issuer"),
            (7, "500"),
            // Long after it was logged, a reason is news again.
            (40, "refused"),
            (41, "500"),
        ];
        let announced: Vec<bool> = reasons
            .iter()
            .map(|(second, reason)| backoff.announce(reason, start + Duration::from_secs(*second)))
            .collect();
        assert_eq!(
            announced,
            [
                true, false, true, false, true, false, false, false, true, true
            ]
        );
    }
}
