//! Acknowledgement that travels with an event.
//!
//! A write-ahead buffer gives each event it sends an [`Ack`]; whichever
//! output finally handles the event resolves it: [`Ack::acknowledge`] once
//! the peer has it, [`Ack::fail`] when it cannot be delivered (the buffer
//! then sends it again, perhaps to another output). No route back has to be
//! wired, and one event's fate never settles another's. A token dropped
//! unresolved counts as failed, so an event lost by mistake is replayed,
//! never forgotten.
//!
//! A block that travels in parts (a round robin deals it, a selector sorts
//! it) splits its token into shares that know which of the block's events
//! they carry ([`Positions`]); a block that is copied (a fanout's) splits it
//! into shares that each carry every event ([`Ack::copies`]). The block is
//! settled once every share is, and a failure names exactly the events that
//! were not delivered ([`Outcome::Partly`]): the buffer sends those again,
//! never the parts that a healthy destination already has.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::Positions;

/// How an event, or a block of them, ended, as its buffer learns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The peer has every event.
    Acknowledged,
    /// No event can be said delivered: send them all again.
    Failed,
    /// The events at these positions (in the block as the token was
    /// issued with) were not delivered; every other one was. Send only
    /// these again.
    Partly(Positions),
}

/// The token one event, or one block of events, carries back to the buffer
/// that issued it. Clones share it: the first resolution wins.
#[derive(Clone, Debug)]
pub struct Ack {
    inner: Arc<Token>,
}

#[derive(Debug)]
struct Token {
    resolved: AtomicBool,
    target: Target,
}

/// Where a token's resolution goes.
#[derive(Debug)]
enum Target {
    /// To the buffer that issued it, as the block it knows as `id`.
    Buffer {
        id: u64,
        reply: mpsc::UnboundedSender<(u64, Outcome)>,
    },
    /// To a token split into shares ([`Ack::parts`], [`Ack::each`],
    /// [`Ack::copies`]); the share carries the events at `covers`.
    Share { shares: Arc<Shares>, covers: Covers },
}

/// Which events of the whole a share carries.
#[derive(Debug)]
enum Covers {
    /// Every one (a copy).
    All,
    /// The one at this position.
    One(usize),
    /// These, in order.
    Some(Positions),
}

/// The shares of one split token: how many are still unresolved, and what
/// the resolved ones failed.
#[derive(Debug)]
struct Shares {
    whole: Ack,
    remaining: AtomicUsize,
    failed: Mutex<Failed>,
}

/// What the resolved shares of a token failed, in the whole's positions.
#[derive(Debug, Default)]
struct Failed {
    every: bool,
    positions: Positions,
}

/// Where a buffer hears back about the events it issued.
pub type Replies = mpsc::UnboundedReceiver<(u64, Outcome)>;

/// What a buffer issues tokens from.
#[derive(Clone, Debug)]
pub struct AckIssuer {
    reply: mpsc::UnboundedSender<(u64, Outcome)>,
}

/// An issuer and the receiver of its tokens' outcomes.
pub fn issuer() -> (AckIssuer, Replies) {
    let (reply, replies) = mpsc::unbounded_channel();
    (AckIssuer { reply }, replies)
}

impl AckIssuer {
    /// A token for the block the buffer knows as `id`.
    pub fn issue(&self, id: u64) -> Ack {
        Ack::to(Target::Buffer {
            id,
            reply: self.reply.clone(),
        })
    }
}

impl Ack {
    fn to(target: Target) -> Ack {
        Ack {
            inner: Arc::new(Token {
                resolved: AtomicBool::new(false),
                target,
            }),
        }
    }

    fn shares(&self, covers: impl ExactSizeIterator<Item = Covers>) -> Vec<Ack> {
        if covers.len() == 0 {
            self.acknowledge();
            return Vec::new();
        }
        let shares = Arc::new(Shares {
            whole: self.clone(),
            remaining: AtomicUsize::new(covers.len()),
            failed: Mutex::new(Failed::default()),
        });
        covers
            .map(|covers| {
                Ack::to(Target::Share {
                    shares: shares.clone(),
                    covers,
                })
            })
            .collect()
    }

    /// Splits the token of a block into shares for parts that travel on
    /// their own, each carrying the block's events at its positions (a
    /// round robin's shares, a selector's destinations, a parcel cut to
    /// fit). Once every share is resolved the whole is: acknowledged when
    /// every share was, otherwise failed for exactly the events that
    /// failed ([`Outcome::Partly`]). A share dropped unresolved fails its
    /// events. No parts at all acknowledge the whole at once.
    pub fn parts(&self, parts: Vec<Positions>) -> Vec<Ack> {
        self.shares(parts.into_iter().map(Covers::Some))
    }

    /// One share per event of the block, in order: the block's events
    /// taken one by one.
    pub fn each(&self, events: usize) -> Vec<Ack> {
        self.shares((0..events).map(Covers::One))
    }

    /// `count` shares that each carry every event of the block, for
    /// destinations that each deliver a copy (a fanout's): an event fails
    /// when any copy of it fails.
    pub fn copies(&self, count: usize) -> Vec<Ack> {
        self.shares((0..count).map(|_| Covers::All))
    }

    /// The peer has every event.
    pub fn acknowledge(&self) {
        self.inner.resolve(Outcome::Acknowledged);
    }

    /// No event could be delivered; its buffer will send them again.
    pub fn fail(&self) {
        self.inner.resolve(Outcome::Failed);
    }

    /// The events at `positions` (in what this token carries) could not be
    /// delivered, every other one was; none at all acknowledges.
    pub fn fail_only(&self, positions: Positions) {
        self.inner.resolve(match positions.is_empty() {
            true => Outcome::Acknowledged,
            false => Outcome::Partly(positions),
        });
    }
}

impl Token {
    fn resolve(&self, outcome: Outcome) {
        if self.resolved.swap(true, Ordering::AcqRel) {
            return;
        }
        match &self.target {
            Target::Buffer { id, reply } => {
                let _ = reply.send((*id, outcome));
            }
            Target::Share { shares, covers } => shares.resolve_one(covers, outcome),
        }
    }
}

impl Shares {
    /// One share ended: what it failed is noted in the whole's positions,
    /// and the last share resolves the whole.
    fn resolve_one(&self, covers: &Covers, outcome: Outcome) {
        if outcome != Outcome::Acknowledged
            && let Ok(mut failed) = self.failed.lock()
        {
            match (covers, outcome) {
                (Covers::All, Outcome::Failed) => failed.every = true,
                (Covers::All, Outcome::Partly(local)) => failed.positions.union(&local),
                (Covers::One(position), _) => failed.positions.push_range(*position..*position + 1),
                (Covers::Some(positions), Outcome::Failed) => failed.positions.union(positions),
                (Covers::Some(positions), Outcome::Partly(local)) => {
                    failed.positions.union(&positions.pick(&local))
                }
                (_, Outcome::Acknowledged) => {}
            }
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let failed = self
            .failed
            .lock()
            .map(|mut failed| std::mem::take(&mut *failed))
            .unwrap_or(Failed {
                every: true,
                positions: Positions::new(),
            });
        match failed.every {
            true => self.whole.fail(),
            false => self.whole.fail_only(failed.positions),
        }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.resolve(Outcome::Failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_resolution_wins_and_a_dropped_token_fails() {
        let (issuer, mut replies) = issuer();
        let first = issuer.issue(1);
        let copy = first.clone();
        first.acknowledge();
        copy.fail();
        drop((first, copy));
        drop(issuer.issue(2));
        assert_eq!(replies.try_recv().unwrap(), (1, Outcome::Acknowledged));
        assert_eq!(replies.try_recv().unwrap(), (2, Outcome::Failed));
        assert!(replies.try_recv().is_err());
    }

    #[test]
    fn a_split_token_is_acknowledged_when_every_share_is() {
        let (issuer, mut replies) = issuer();
        let shares = issuer.issue(7).each(3);
        shares[0].acknowledge();
        shares[2].acknowledge();
        assert!(replies.try_recv().is_err(), "one share is still out");
        shares[1].acknowledge();
        assert_eq!(replies.try_recv().unwrap(), (7, Outcome::Acknowledged));
        issuer.issue(10).parts(Vec::new());
        assert_eq!(replies.try_recv().unwrap(), (10, Outcome::Acknowledged));
    }

    #[test]
    fn a_failed_share_fails_only_its_events_once_every_share_is_settled() {
        let (issuer, mut replies) = issuer();
        // A round robin's two shares of six events: 0, 2, 4 and 1, 3, 5.
        let odd_even = vec![
            [0, 2, 4].into_iter().collect(),
            [1, 3, 5].into_iter().collect(),
        ];
        let mut shares = issuer.issue(8).parts(odd_even);
        drop(shares.pop());
        assert!(replies.try_recv().is_err(), "the other share is still out");
        shares[0].acknowledge();
        let failed: Positions = [1, 3, 5].into_iter().collect();
        assert_eq!(replies.try_recv().unwrap(), (8, Outcome::Partly(failed)));

        let shares = issuer.issue(9).each(4);
        shares[1].fail();
        shares[3].fail();
        shares[0].acknowledge();
        drop(shares);
        let failed: Positions = [1, 2, 3].into_iter().collect();
        assert_eq!(replies.try_recv().unwrap(), (9, Outcome::Partly(failed)));
        assert!(replies.try_recv().is_err(), "resolved once");
    }

    #[test]
    fn shares_of_shares_name_the_failed_events_of_the_first_block() {
        let (issuer, mut replies) = issuer();
        let halves = issuer
            .issue(1)
            .parts(vec![Positions::range(0..10), Positions::range(10..20)]);
        halves[0].acknowledge();
        // The second half dealt again over two destinations, one of which
        // copies it to two outputs, one of which fails a part of it.
        let dealt = halves[1].parts(vec![
            [0, 2, 4, 6, 8].into_iter().collect(),
            [1, 3, 5, 7, 9].into_iter().collect(),
        ]);
        dealt[0].acknowledge();
        let copies = dealt[1].copies(2);
        copies[0].acknowledge();
        assert!(replies.try_recv().is_err());
        copies[1].fail_only(Positions::range(3..5));
        let failed: Positions = [17, 19].into_iter().collect();
        assert_eq!(replies.try_recv().unwrap(), (1, Outcome::Partly(failed)));

        let copies = issuer.issue(2).copies(2);
        copies[0].acknowledge();
        copies[1].fail();
        assert_eq!(
            replies.try_recv().unwrap(),
            (2, Outcome::Failed),
            "a failed copy fails all"
        );
    }
}
