//! The answers of one RELP session, in the order the protocol requires:
//! the frames a client sent are answered in the order it sent them, and a
//! batch of `syslog` frames can only be answered once its events' fate
//! downstream is known. A plain struct, tested without sockets.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use wishbone_runtime::ack::Outcome;

use wishbone_codecs::relp;

/// What the next answers are.
#[derive(Debug)]
enum Answer {
    /// `syslog` frames sent on as one batch (`id`), waiting for its fate.
    Batch {
        id: u64,
        txnrs: Vec<u32>,
        outcome: Option<Outcome>,
    },
    /// An answer known at once (to `open`, `close`, an unknown command).
    Ready { txnr: u32, data: Bytes },
}

/// The answers owed, oldest first.
#[derive(Debug, Default)]
pub struct Answers {
    owed: VecDeque<Answer>,
    /// `syslog` frames not answered yet: what the window bounds.
    unanswered: usize,
}

/// What was written out by one [`Answers::take_ready`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answered {
    pub accepted: usize,
    pub refused: usize,
}

/// The answer to a frame taken: `200 OK`.
pub const OK: &[u8] = b"200 OK";
/// The answer to an event that was dropped or could not be delivered.
pub const REFUSED: &[u8] = b"500 not delivered, send it again";

impl Answers {
    /// `syslog` frames `txnrs` went downstream as batch `id`.
    pub fn batch(&mut self, id: u64, txnrs: Vec<u32>) {
        self.unanswered += txnrs.len();
        self.owed.push_back(Answer::Batch {
            id,
            txnrs,
            outcome: None,
        });
    }

    /// Frame `txnr` is answered with `data` as soon as everything before it is.
    pub fn ready(&mut self, txnr: u32, data: impl Into<Bytes>) {
        self.owed.push_back(Answer::Ready {
            txnr,
            data: data.into(),
        });
    }

    /// Batch `id`'s fate is known.
    pub fn resolve(&mut self, id: u64, outcome: Outcome) {
        for answer in &mut self.owed {
            if let Answer::Batch {
                id: batch,
                outcome: known,
                ..
            } = answer
                && *batch == id
            {
                known.get_or_insert(outcome);
                return;
            }
        }
    }

    /// Appends to `out` every answer that may go now, in order.
    pub fn take_ready(&mut self, out: &mut BytesMut) -> Answered {
        let mut answered = Answered::default();
        loop {
            match self.owed.front() {
                Some(Answer::Batch { outcome: None, .. }) | None => return answered,
                Some(Answer::Ready { txnr, data }) => {
                    relp::encode(out, *txnr, "rsp", data);
                }
                Some(Answer::Batch {
                    txnrs,
                    outcome: Some(outcome),
                    ..
                }) => {
                    // Frame i carried event i of the batch: with a part
                    // refused, only its frames are answered 500.
                    for (index, txnr) in txnrs.iter().enumerate() {
                        let refused = match outcome {
                            Outcome::Acknowledged => false,
                            Outcome::Failed => true,
                            Outcome::Partly(failed) => failed.contains(index),
                        };
                        relp::encode(out, *txnr, "rsp", if refused { REFUSED } else { OK });
                        match refused {
                            true => answered.refused += 1,
                            false => answered.accepted += 1,
                        }
                    }
                    self.unanswered -= txnrs.len();
                }
            }
            self.owed.pop_front();
        }
    }

    /// `syslog` frames not answered yet.
    pub fn unanswered(&self) -> usize {
        self.unanswered
    }

    /// Whether nothing is owed.
    pub fn is_empty(&self) -> bool {
        self.owed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(answers: &mut Answers) -> (String, Answered) {
        let mut out = BytesMut::new();
        let answered = answers.take_ready(&mut out);
        (String::from_utf8(out.to_vec()).unwrap(), answered)
    }

    #[test]
    fn answers_go_out_in_the_order_of_the_frames() {
        let mut answers = Answers::default();
        answers.ready(1, "200 OK");
        answers.batch(7, vec![2, 3]);
        answers.batch(8, vec![4]);
        answers.ready(5, "");
        assert_eq!(answers.unanswered(), 3);
        answers.resolve(8, Outcome::Acknowledged);
        assert_eq!(
            written(&mut answers).0,
            "1 rsp 6 200 OK\n",
            "2 and 3 come first"
        );
        answers.resolve(7, Outcome::Failed);
        let (text, answered) = written(&mut answers);
        let refused = String::from_utf8(REFUSED.to_vec()).unwrap();
        assert_eq!(
            text,
            format!(
                "2 rsp {len} {refused}\n3 rsp {len} {refused}\n4 rsp 6 200 OK\n5 rsp 0\n",
                len = refused.len()
            )
        );
        assert_eq!(
            answered,
            Answered {
                accepted: 1,
                refused: 2
            }
        );
        assert!(answers.is_empty());
        assert_eq!(answers.unanswered(), 0);
    }

    #[test]
    fn the_first_outcome_of_a_batch_stands() {
        let mut answers = Answers::default();
        answers.batch(1, vec![9]);
        answers.resolve(1, Outcome::Acknowledged);
        answers.resolve(1, Outcome::Failed);
        answers.resolve(2, Outcome::Failed);
        assert_eq!(written(&mut answers).0, "9 rsp 6 200 OK\n");
    }

    #[test]
    fn a_batch_failed_in_part_refuses_only_the_frames_of_its_failed_events() {
        let mut answers = Answers::default();
        answers.batch(1, vec![10, 11, 12]);
        answers.resolve(1, Outcome::Partly([1].into_iter().collect()));
        let refused = String::from_utf8(REFUSED.to_vec()).unwrap();
        let (text, answered) = written(&mut answers);
        assert_eq!(
            text,
            format!(
                "10 rsp 6 200 OK\n11 rsp {len} {refused}\n12 rsp 6 200 OK\n",
                len = refused.len()
            )
        );
        assert_eq!(
            answered,
            Answered {
                accepted: 2,
                refused: 1
            }
        );
    }
}
