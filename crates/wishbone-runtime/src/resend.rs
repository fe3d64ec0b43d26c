//! When a source offers again what failed downstream: never at once. A
//! source that resends (a write-ahead buffer, the file input) notes each
//! failed block here; the block is due again after a pause that doubles
//! with each failure of that block, from `resend_initial` up to
//! `resend_max`, so a path that keeps failing costs no CPU and sends no
//! copies elsewhere. It also says when resending starts and ends, so the
//! module logs once per change, as the outputs log outages. Plain logic:
//! the module passes the time in.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// The arguments of a source's pauses, `resend_initial` and `resend_max`
/// in seconds (defaults as the outputs' `reconnect_initial` and
/// `reconnect_max`). A module's `Config` has both fields, with
/// [`default_resend_initial`] and [`default_resend_max`] as defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResendArguments {
    /// First pause, seconds.
    pub resend_initial: f64,
    /// Longest pause, seconds.
    pub resend_max: f64,
}

impl Default for ResendArguments {
    fn default() -> Self {
        Self {
            resend_initial: default_resend_initial(),
            resend_max: default_resend_max(),
        }
    }
}

/// The default of `resend_initial`.
pub fn default_resend_initial() -> f64 {
    0.1
}

/// The default of `resend_max`.
pub fn default_resend_max() -> f64 {
    1.0
}

impl ResendArguments {
    /// The pauses; the defaults stand in for values [`ResendArguments::pauses`]
    /// refuses (a module checks them when it is built).
    pub fn pauses_or_default(&self) -> (Duration, Duration) {
        self.pauses()
            .or_else(|_| Self::default().pauses())
            .unwrap_or_default()
    }

    /// The pauses, or what is wrong with the arguments.
    pub fn pauses(&self) -> Result<(Duration, Duration), String> {
        let valid = |seconds: f64| seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0;
        if !valid(self.resend_initial) || !valid(self.resend_max) {
            return Err(
                "`resend_initial` and `resend_max` must be seconds above 0, at most 3600".into(),
            );
        }
        if self.resend_initial > self.resend_max {
            return Err("`resend_initial` must not exceed `resend_max`".into());
        }
        Ok((
            Duration::from_secs_f64(self.resend_initial),
            Duration::from_secs_f64(self.resend_max),
        ))
    }
}

/// A change worth one log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResendChange {
    /// Events failed downstream after a quiet time: they will be sent again
    /// after a pause.
    Started {
        /// Events of the failure that started it.
        events: usize,
    },
    /// Nothing waits to be sent again and deliveries go through.
    Ended {
        /// Events sent again meanwhile.
        resent: u64,
        /// How long it lasted.
        lasted: Duration,
    },
}

impl ResendChange {
    /// Logs the change for `module`, whose units are `what` (events,
    /// lines): once when resending starts, once when it ends.
    pub fn log(self, module: &str, what: &str) {
        match self {
            ResendChange::Started { events } => {
                tracing::warn!(
                    module,
                    events,
                    "{what} failed downstream; only those are sent again, after a pause"
                );
            }
            ResendChange::Ended { resent, lasted } => {
                tracing::info!(
                    module,
                    resent,
                    ?lasted,
                    "{what} failed downstream are delivered again"
                );
            }
        }
    }
}

/// The blocks of one source that wait to be sent again, and when.
#[derive(Debug)]
pub struct Resends {
    initial: Duration,
    most: Duration,
    /// Due times, earliest first.
    due: BTreeSet<(Instant, u64)>,
    /// Per block: failures so far, and its due time while it waits.
    blocks: HashMap<u64, (u32, Option<Instant>)>,
    /// Since when resending goes on, and how many events were sent again.
    resending: Option<(Instant, u64)>,
    change: Option<ResendChange>,
}

impl Resends {
    /// Pauses from `initial`, doubling up to `most`.
    pub fn new(initial: Duration, most: Duration) -> Self {
        Self {
            initial,
            most: most.max(initial),
            due: BTreeSet::new(),
            blocks: HashMap::new(),
            resending: None,
            change: None,
        }
    }

    /// Block `id`, of `events` events, failed: it is due again after its
    /// pause. Returns when.
    pub fn failed(&mut self, id: u64, events: usize, now: Instant) -> Instant {
        let (failures, due) = self.blocks.entry(id).or_insert((0, None));
        if let Some(old) = due.take() {
            self.due.remove(&(old, id));
        }
        let pause = self
            .initial
            .saturating_mul(1 << (*failures).min(20))
            .min(self.most);
        *failures += 1;
        let when = now + pause;
        *due = Some(when);
        self.due.insert((when, id));
        if self.resending.is_none() {
            self.resending = Some((now, 0));
            self.change = Some(ResendChange::Started { events });
        }
        when
    }

    /// When the next block is due, if any waits.
    pub fn next_due(&self) -> Option<Instant> {
        self.due.first().map(|(when, _)| *when)
    }

    /// The blocks due by `now`, earliest first; they no longer wait (their
    /// failures are remembered until [`Resends::delivered`]).
    pub fn take_due(&mut self, now: Instant) -> Vec<u64> {
        let mut taken = Vec::new();
        while let Some(&(when, id)) = self.due.first() {
            if when > now {
                break;
            }
            self.due.pop_first();
            if let Some((_, due)) = self.blocks.get_mut(&id) {
                *due = None;
            }
            taken.push(id);
        }
        taken
    }

    /// Every block waiting out its pause, now: a stop.
    pub fn take_all(&mut self) -> Vec<u64> {
        let ids: Vec<u64> = self.due.iter().map(|(_, id)| *id).collect();
        for id in &ids {
            self.forget(*id);
        }
        ids
    }

    /// `events` were sent again.
    pub fn resent(&mut self, events: usize) {
        if let Some((_, resent)) = &mut self.resending {
            *resent += events as u64;
        }
    }

    /// Block `id` was delivered (or dropped): forgotten. Resending ends
    /// when nothing failed is left.
    pub fn delivered(&mut self, id: u64, now: Instant) {
        self.forget(id);
        if self.blocks.is_empty()
            && let Some((since, resent)) = self.resending.take()
        {
            self.change = Some(ResendChange::Ended {
                resent,
                lasted: now.saturating_duration_since(since),
            });
        }
    }

    /// Block `id` is gone without being delivered (dropped, or left for
    /// the next start).
    pub fn forget(&mut self, id: u64) {
        if let Some((_, Some(when))) = self.blocks.remove(&id) {
            self.due.remove(&(when, id));
        }
    }

    /// Block `old` goes on as `new` (a source that numbers each sending).
    pub fn renumber(&mut self, old: u64, new: u64) {
        if let Some((failures, due)) = self.blocks.remove(&old) {
            if let Some(when) = due {
                self.due.remove(&(when, old));
                self.due.insert((when, new));
            }
            self.blocks.insert(new, (failures, due));
        }
    }

    /// Whether block `id` failed before and is not delivered yet.
    pub fn has(&self, id: u64) -> bool {
        self.blocks.contains_key(&id)
    }

    /// Blocks that failed and are not delivered yet.
    pub fn failing(&self) -> usize {
        self.blocks.len()
    }

    /// The last change, once.
    pub fn take_change(&mut self) -> Option<ResendChange> {
        self.change.take()
    }
}

/// Sleeps until `when`, or forever without one: a `select!` arm for the
/// next due resend.
pub async fn until(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_block_that_keeps_failing_waits_longer_each_time_up_to_the_longest_pause() {
        let start = Instant::now();
        let mut resends = Resends::new(100 * MS, 400 * MS);
        let mut now = start;
        let mut pauses = Vec::new();
        for _ in 0..5 {
            let due = resends.failed(7, 10, now);
            pauses.push(due - now);
            assert!(resends.take_due(due - MS).is_empty(), "not before its time");
            assert_eq!(resends.take_due(due), [7]);
            now = due;
        }
        assert_eq!(pauses, [100 * MS, 200 * MS, 400 * MS, 400 * MS, 400 * MS]);
        resends.delivered(7, now);
        resends.failed(7, 10, now);
        assert_eq!(
            resends.next_due(),
            Some(now + 100 * MS),
            "a delivered block starts over"
        );
    }

    #[test]
    fn resending_is_reported_when_it_starts_and_when_nothing_failed_is_left() {
        let start = Instant::now();
        let mut resends = Resends::new(100 * MS, 1000 * MS);
        resends.failed(1, 5, start);
        resends.failed(2, 3, start + MS);
        assert_eq!(
            resends.take_change(),
            Some(ResendChange::Started { events: 5 })
        );
        assert_eq!(resends.take_change(), None, "said once");
        assert_eq!(resends.take_due(start + 200 * MS), [1, 2]);
        resends.resent(8);
        resends.delivered(1, start + 300 * MS);
        assert_eq!(resends.take_change(), None, "block 2 is still out");
        resends.renumber(2, 9);
        resends.delivered(9, start + 500 * MS);
        assert_eq!(
            resends.take_change(),
            Some(ResendChange::Ended {
                resent: 8,
                lasted: 500 * MS
            })
        );
        assert_eq!(resends.failing(), 0);
    }

    #[test]
    fn the_arguments_are_checked() {
        assert_eq!(
            ResendArguments::default().pauses(),
            Ok((100 * MS, 1000 * MS))
        );
        let backwards = ResendArguments {
            resend_initial: 2.0,
            resend_max: 1.0,
        };
        assert!(backwards.pauses().is_err());
        let zero = ResendArguments {
            resend_initial: 0.0,
            resend_max: 1.0,
        };
        assert!(zero.pauses().is_err());
    }
}
