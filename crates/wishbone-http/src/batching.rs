//! How big the next request is, and what an answer means: plain logic,
//! tested without sockets.
//!
//! A batch that keeps failing with an HTTP error answer is split in halves,
//! each sent on its own, so that one bad event ends up alone; an event that
//! fails alone is given up (to `failed`). Connection failures, timeouts,
//! 408, 429 and 5xx are retried as they are; other 4xx split at once.

/// What an answer (or its absence) means for the batch that was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: every event of the batch is delivered.
    Delivered,
    /// Send the same events again, after the backoff.
    Retry,
    /// Send the events again in halves (the next batches are smaller).
    Split,
    /// The batch's only event can never be delivered: give it up.
    GiveUp,
}

/// What an attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP status.
    Status(u16),
    /// No answer: the connection failed or the request timed out.
    NoAnswer,
}

/// HTTP error answers a batch gets before it is split.
pub const ATTEMPTS_BEFORE_SPLIT: u32 = 3;

/// The size of the next batch and the count of failed attempts of the one
/// at the head.
#[derive(Clone, Debug)]
pub struct Batching {
    most: usize,
    /// The next batch's size, at most: `most`, or less while isolating.
    limit: usize,
    /// HTTP error answers the batch at the head got so far.
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
        let retryable = match answer {
            Answer::Status(200..=299) => {
                self.errors = 0;
                // Past the bad part, batches grow back.
                self.limit = (self.limit * 2).min(self.most);
                return Verdict::Delivered;
            }
            Answer::NoAnswer => return Verdict::Retry,
            Answer::Status(408 | 429 | 500..=599) => true,
            Answer::Status(_) => false,
        };
        self.errors += 1;
        if retryable && self.errors < ATTEMPTS_BEFORE_SPLIT {
            return Verdict::Retry;
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
    fn a_server_error_is_retried_then_split_down_to_the_bad_event() {
        let mut batching = Batching::new(8);
        assert_eq!(batching.answered(8, Answer::Status(500)), Verdict::Retry);
        assert_eq!(batching.answered(8, Answer::Status(500)), Verdict::Retry);
        assert_eq!(batching.answered(8, Answer::Status(500)), Verdict::Split);
        assert_eq!(batching.limit(), 4);
        for _ in 0..2 {
            assert_eq!(batching.answered(4, Answer::Status(500)), Verdict::Retry);
        }
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
        assert_eq!(batching.limit(), 2);
        assert_eq!(batching.answered(2, Answer::Status(400)), Verdict::Split);
        assert_eq!(batching.answered(1, Answer::Status(400)), Verdict::GiveUp);
    }

    #[test]
    fn no_answer_and_throttling_are_retried_without_splitting() {
        let mut batching = Batching::new(10);
        for _ in 0..10 {
            assert_eq!(batching.answered(10, Answer::NoAnswer), Verdict::Retry);
        }
        assert_eq!(batching.answered(10, Answer::Status(429)), Verdict::Retry);
        assert_eq!(batching.answered(10, Answer::Status(408)), Verdict::Retry);
        assert_eq!(batching.limit(), 10);
    }
}
