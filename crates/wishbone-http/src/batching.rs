//! How big the next request is, and what an answer means: plain logic,
//! tested without sockets.
//!
//! What an answer says decides what happens to the batch:
//! - an outage (no answer, a timeout, 408, 429, 502, 503, 504): the same
//!   events again after the backoff (and any `Retry-After`), never split;
//! - the data is bad (any other 4xx, such as 400, 413 or 422): isolated at
//!   once, without a backoff wait, so that one bad event ends up alone
//!   while the good ones go on; an event refused alone is given up (to
//!   `failed`);
//! - a server error that may be the data (500 and the other 5xx): tried
//!   once more at once, then isolated as bad data;
//! - the configuration is wrong (3xx, 401, 403, 404, 405, 407): the events
//!   are held and sent again after the backoff, never split and never given
//!   up, until the store or the configuration changes.
//!
//! Isolating: when the answer names the bad row (ClickHouse says `(at row
//! 1234)`), the rows before it go as one batch and the named row alone
//! next, then batches are full again: one refused request and one more
//! insert per bad row. Otherwise the batch is halved; once a first half
//! is delivered the bad row is known to be in the other half, which is
//! halved at once rather than sent whole. The store's word is a hint, never
//! trusted blindly: the named row is given up only when the store refuses
//! it alone, and once a named row is accepted alone, names are ignored
//! until the next row is given up.

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
    /// The data is bad: send the events again at once, in the smaller
    /// batches [`Batching::limit`] says.
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
    /// An HTTP status, and the row of the request the answer names as bad
    /// (counted from 1), if it names one.
    Status(u16, Option<usize>),
    /// No answer: the connection failed or the request timed out.
    NoAnswer,
}

/// Answers of a server error a batch gets before it is split.
pub const ATTEMPTS_BEFORE_SPLIT: u32 = 2;

/// Where the search for a bad event stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isolating {
    /// No bad event known: full batches.
    No,
    /// The next `within` events hold a bad one.
    Within(usize),
    /// The store named the event after the next `before` as bad.
    Named { before: usize },
}

/// The size of the next batch and the count of failed attempts of the one
/// at the head.
#[derive(Clone, Debug)]
pub struct Batching {
    most: usize,
    isolating: Isolating,
    /// A named row was accepted alone: names are not followed until the
    /// next event is given up.
    names_wrong: bool,
    /// Server error answers the batch at the head got so far.
    errors: u32,
}

impl Batching {
    /// Batches of at most `most` events.
    pub fn new(most: usize) -> Self {
        Self {
            most: most.max(1),
            isolating: Isolating::No,
            names_wrong: false,
            errors: 0,
        }
    }

    /// Events the next batch may hold.
    pub fn limit(&self) -> usize {
        match self.isolating {
            Isolating::No => self.most,
            Isolating::Within(events) => events.div_ceil(2).clamp(1, self.most),
            Isolating::Named { before: 0 } => 1,
            Isolating::Named { before } => before.min(self.most),
        }
    }

    /// Takes in the answer to a batch of `events` events.
    pub fn answered(&mut self, events: usize, answer: Answer) -> Verdict {
        let (status, named) = match answer {
            Answer::NoAnswer => return Verdict::Retry,
            Answer::Status(status, named) => (status, named),
        };
        let named = named.filter(|row| (1..=events).contains(row) && !self.names_wrong);
        match status {
            200..=299 => {
                self.errors = 0;
                self.delivered(events);
                return Verdict::Delivered;
            }
            408 | 429 | 502..=504 => return Verdict::Retry,
            300..=399 | 401 | 403 | 404 | 405 | 407 => return Verdict::Hold,
            // A server error that names a row is the data's: no second try.
            500..=599 if named.is_none() => {
                self.errors += 1;
                if self.errors < ATTEMPTS_BEFORE_SPLIT {
                    return Verdict::Again;
                }
            }
            _ => {}
        }
        self.errors = 0;
        if events <= 1 {
            self.isolating = Isolating::No;
            self.names_wrong = false;
            return Verdict::GiveUp;
        }
        self.isolating = match named {
            Some(row) => Isolating::Named { before: row - 1 },
            None => Isolating::Within(events),
        };
        Verdict::Split
    }

    /// `events` at the head were delivered.
    fn delivered(&mut self, events: usize) {
        self.isolating = match self.isolating {
            Isolating::No => Isolating::No,
            // The bad event is in what is left: halve that at once.
            Isolating::Within(within) if within > events => Isolating::Within(within - events),
            Isolating::Named { before } if before > events => Isolating::Named {
                before: before - events,
            },
            Isolating::Named { before } if before == events => Isolating::Named { before: 0 },
            Isolating::Named { before: 0 } => {
                self.names_wrong = true;
                Isolating::No
            }
            // The refusal was not the data's after all.
            Isolating::Within(_) | Isolating::Named { .. } => Isolating::No,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Answer {
        Answer::Status(code, None)
    }

    #[test]
    fn a_server_error_is_tried_once_more_then_split_down_to_the_bad_event() {
        let mut batching = Batching::new(8);
        assert_eq!(batching.answered(8, status(500)), Verdict::Again);
        assert!(Verdict::Again.at_once(), "no backoff: the store answered");
        assert_eq!(batching.answered(8, status(500)), Verdict::Split);
        assert_eq!(batching.limit(), 4);
        assert_eq!(batching.answered(4, status(500)), Verdict::Again);
        assert_eq!(batching.answered(4, status(500)), Verdict::Split);
        assert_eq!(batching.limit(), 2);
        assert_eq!(batching.answered(2, status(200)), Verdict::Delivered);
        assert_eq!(batching.limit(), 1, "the bad event is in the other half");
        assert_eq!(batching.answered(1, status(200)), Verdict::Delivered);
        assert_eq!(batching.limit(), 1, "the last one left is the bad one");
        assert_eq!(batching.answered(1, status(500)), Verdict::Again);
        assert_eq!(batching.answered(1, status(500)), Verdict::GiveUp);
        assert_eq!(batching.limit(), 8, "past the bad part, full batches");
    }

    #[test]
    fn a_client_error_splits_at_once_and_a_lone_event_is_given_up() {
        let mut batching = Batching::new(3);
        assert_eq!(batching.answered(3, status(400)), Verdict::Split);
        assert!(Verdict::Split.at_once() && Verdict::GiveUp.at_once());
        assert_eq!(batching.limit(), 2);
        assert_eq!(batching.answered(2, status(422)), Verdict::Split);
        assert_eq!(batching.limit(), 1);
        assert_eq!(batching.answered(1, status(400)), Verdict::GiveUp);
        assert_eq!(batching.limit(), 3, "full batches after the give-up");
    }

    #[test]
    fn one_bad_event_in_a_thousand_costs_about_twenty_requests_when_unnamed() {
        let (mut batching, bad) = (Batching::new(1000), 777);
        let (mut head, mut requests, mut given_up) = (0, 0, Vec::new());
        while head < 1000 {
            let events = batching.limit().min(1000 - head);
            requests += 1;
            let refused = (head..head + events).contains(&bad);
            match batching.answered(events, status(if refused { 400 } else { 200 })) {
                Verdict::Delivered => head += events,
                Verdict::GiveUp => {
                    given_up.push(head);
                    head += 1;
                }
                verdict => assert_eq!(verdict, Verdict::Split),
            }
        }
        assert_eq!(given_up, [bad]);
        assert!(requests <= 21, "{requests} requests");
    }

    #[test]
    fn a_named_row_costs_one_refusal_and_one_more_request() {
        let mut batching = Batching::new(1000);
        let refused = Answer::Status(500, Some(778));
        assert_eq!(batching.answered(1000, refused), Verdict::Split, "no retry");
        assert_eq!(batching.limit(), 777, "the rows before the named one");
        assert_eq!(batching.answered(777, status(200)), Verdict::Delivered);
        assert_eq!(batching.limit(), 1, "the named row alone");
        let alone = Answer::Status(500, Some(1));
        assert_eq!(batching.answered(1, alone), Verdict::GiveUp);
        assert_eq!(batching.limit(), 1000);
        // Named first row: alone at once.
        assert_eq!(
            batching.answered(1000, Answer::Status(400, Some(1))),
            Verdict::Split
        );
        assert_eq!(batching.limit(), 1);
    }

    #[test]
    fn a_wrong_name_is_not_followed_again_until_a_row_is_given_up() {
        let mut batching = Batching::new(100);
        assert_eq!(
            batching.answered(100, Answer::Status(400, Some(10))),
            Verdict::Split
        );
        assert_eq!(batching.answered(9, status(200)), Verdict::Delivered);
        assert_eq!(
            batching.answered(1, status(200)),
            Verdict::Delivered,
            "it was good"
        );
        assert_eq!(
            batching.answered(100, Answer::Status(400, Some(10))),
            Verdict::Split
        );
        assert_eq!(batching.limit(), 50, "halves now");
        assert_eq!(
            batching.answered(50, Answer::Status(400, Some(60))),
            Verdict::Split
        );
        assert_eq!(batching.limit(), 25, "a name outside the batch is no name");
        // Down to one and given up: names are followed again.
        for events in [25, 13, 7, 4, 2] {
            assert_eq!(batching.answered(events, status(400)), Verdict::Split);
        }
        assert_eq!(batching.answered(1, status(400)), Verdict::GiveUp);
        assert_eq!(
            batching.answered(100, Answer::Status(400, Some(3))),
            Verdict::Split
        );
        assert_eq!(batching.limit(), 2);
    }

    #[test]
    fn outages_are_retried_and_configuration_faults_held_never_split() {
        let mut batching = Batching::new(10);
        for _ in 0..10 {
            assert_eq!(batching.answered(10, Answer::NoAnswer), Verdict::Retry);
            for outage in [408, 429, 502, 503, 504] {
                assert_eq!(batching.answered(10, status(outage)), Verdict::Retry);
            }
            for fault in [301, 302, 307, 401, 403, 404, 405] {
                assert_eq!(batching.answered(10, status(fault)), Verdict::Hold);
            }
        }
        assert_eq!(
            batching.answered(1, status(404)),
            Verdict::Hold,
            "never given up"
        );
        assert!(!Verdict::Retry.at_once() && !Verdict::Hold.at_once());
        assert_eq!(batching.limit(), 10);
    }
}
