//! How big the next request is, and what an answer means: plain logic,
//! tested without sockets.
//!
//! What an answer says decides what happens to the batch:
//! - an outage (no answer, a timeout, 408, 429, 502, 503, 504): the same
//!   events again after the backoff (and any `Retry-After`), never split;
//! - the data is bad (any other 4xx, such as 400, 413 or 422): split in
//!   halves at once, each sent on its own without a backoff wait, so that
//!   one bad event ends up alone while the good halves go on; an event
//!   refused alone is given up (to `failed`);
//! - a server error that may be the data (500 and the other 5xx): tried
//!   once more at once, then split as bad data;
//! - the configuration is wrong (3xx, 401, 403, 404, 405, 407): the events
//!   are held and sent again after the backoff, never split and never given
//!   up, until the store or the configuration changes.

/// What an answer (or its absence) means for the batch that was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: every event of the batch is delivered.
    Delivered,
    /// An outage: send the same events again, after the backoff.
    Retry,
    /// A server error that may be the data: send the same events once
    /// more, at once.
    Again,
    /// The configuration is wrong: hold the events, send them again after
    /// the backoff.
    Hold,
    /// Send the events again in halves, at once (the next batches are
    /// smaller).
    Split,
    /// The batch's only event can never be delivered: give it up.
    GiveUp,
}

impl Verdict {
    /// Whether the events go again at once, without a backoff wait.
    pub fn at_once(&self) -> bool {
        matches!(self, Verdict::Again | Verdict::Split | Verdict::GiveUp)
    }
}

/// What an attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status.
    Status(u16),
    /// No answer: the connection failed or the request timed out.
    NoAnswer,
}

/// Answers of a server error a batch gets before it is split.
pub const ATTEMPTS_BEFORE_SPLIT: u32 = 2;

/// The size of the next batch and the count of failed attempts of the one
/// at the head.
#[derive(Clone, Debug)]
pub struct Batching {
    most: usize,
    /// The next batch's size, at most: `most`, or less while isolating.
    limit: usize,
    /// Server error answers the batch at the head got so far.
    errors: u32,
}

impl Batching {
    /// Batches of at most `most` events.
    pub fn new(most: usize) -> Self {
        let most = most.max(1);
        Self {
            most,
            limit: most,
            errors: 0,
        }
    }

    /// Events the next batch may hold.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes in the answer to a batch of `events` events.
    pub fn answered(&mut self, events: usize, answer: Answer) -> Verdict {
        let status = match answer {
            Answer::NoAnswer => return Verdict::Retry,
            Answer::Status(status) => status,
        };
        match status {
            200..=299 => {
                self.errors = 0;
                // Past the bad part, batches grow back.
                self.limit = (self.limit * 2).min(self.most);
                return Verdict::Delivered;
            }
            408 | 429 | 502..=504 => return Verdict::Retry,
            300..=399 | 401 | 403 | 404 | 405 | 407 => return Verdict::Hold,
            500..=599 => {
                self.errors += 1;
                if self.errors < ATTEMPTS_BEFORE_SPLIT {
                    return Verdict::Again;
                }
            }
            _ => {}
        }
        self.errors = 0;
        if events <= 1 {
            return Verdict::GiveUp;
        }
        self.limit = events.div_ceil(2);
        Verdict::Split
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_error_is_tried_once_more_then_split_down_to_the_bad_event() {
        let mut batching = Batching::new(8);
        assert_eq!(batching.answered(8, Answer::Status(500)), Verdict::Again);
        assert!(Verdict::Again.at_once(), "no backoff: the store answered");
        assert_eq!(batching.answered(8, Answer::Status(500)), Verdict::Split);
        assert_eq!(batching.limit(), 4);
        assert_eq!(batching.answered(4, Answer::Status(500)), Verdict::Again);
        assert_eq!(batching.answered(4, Answer::Status(500)), Verdict::Split);
        assert_eq!(batching.limit(), 2);
        assert_eq!(
            batching.answered(2, Answer::Status(200)),
            Verdict::Delivered
        );
        assert_eq!(batching.limit(), 4, "it grows back once past the bad part");
    }

    #[test]
    fn a_client_error_splits_at_once_and_a_lone_event_is_given_up() {
        let mut batching = Batching::new(3);
        assert_eq!(batching.answered(3, Answer::Status(400)), Verdict::Split);
        assert!(Verdict::Split.at_once() && Verdict::GiveUp.at_once());
        assert_eq!(batching.limit(), 2);
        assert_eq!(batching.answered(2, Answer::Status(422)), Verdict::Split);
        assert_eq!(batching.answered(1, Answer::Status(400)), Verdict::GiveUp);
    }

    #[test]
    fn outages_are_retried_and_configuration_faults_held_never_split() {
        let mut batching = Batching::new(10);
        for _ in 0..10 {
            assert_eq!(batching.answered(10, Answer::NoAnswer), Verdict::Retry);
            for outage in [408, 429, 502, 503, 504] {
                assert_eq!(
                    batching.answered(10, Answer::Status(outage)),
                    Verdict::Retry
                );
            }
            for fault in [301, 302, 307, 401, 403, 404, 405] {
                assert_eq!(batching.answered(10, Answer::Status(fault)), Verdict::Hold);
            }
        }
        assert_eq!(
            batching.answered(1, Answer::Status(404)),
            Verdict::Hold,
            "never given up"
        );
        assert!(!Verdict::Retry.at_once() && !Verdict::Hold.at_once());
        assert_eq!(batching.limit(), 10);
    }
}
