//! Acknowledgement that travels with an event.
//!
//! A write-ahead buffer gives each event it sends an [`Ack`]; whichever
//! output finally handles the event resolves it: [`Ack::acknowledge`] once
//! the peer has it, [`Ack::fail`] when it cannot be delivered (the buffer
//! then sends it again, perhaps to another output). No route back has to be
//! wired, and one event's fate never settles another's. A token dropped
//! unresolved counts as failed, so an event lost by mistake is replayed,
//! never forgotten.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// How an event ended, as its buffer learns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The peer has the event.
    Acknowledged,
    /// The event could not be delivered: send it again.
    Failed,
}

/// The token one event carries back to the buffer that issued it. Clones
/// (a fanout's copies) share it: the first resolution wins.
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
    /// To the buffer that issued it, as the event it knows as `id`.
    Buffer {
        id: u64,
        reply: mpsc::UnboundedSender<(u64, Outcome)>,
    },
    /// To a token split into shares ([`Ack::split`]).
    Share(Arc<Shares>),
}

/// The shares of one split token that are still unresolved.
#[derive(Debug)]
struct Shares {
    whole: Ack,
    remaining: AtomicUsize,
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
    /// A token for the event the buffer knows as `id`.
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

    /// Splits the token of a block of events into `parts` shares, one per
    /// part of the block that travels on its own (a round robin's shares,
    /// the events of a block taken one by one): the whole is acknowledged
    /// once every share is, and failed as soon as one fails (or is dropped
    /// unresolved). No parts at all acknowledge the whole at once.
    pub fn split(&self, parts: usize) -> Vec<Ack> {
        if parts == 0 {
            self.acknowledge();
            return Vec::new();
        }
        let shares = Arc::new(Shares {
            whole: self.clone(),
            remaining: AtomicUsize::new(parts),
        });
        (0..parts)
            .map(|_| Ack::to(Target::Share(shares.clone())))
            .collect()
    }

    /// The peer has the event.
    pub fn acknowledge(&self) {
        self.inner.resolve(Outcome::Acknowledged);
    }

    /// The event could not be delivered; its buffer will send it again.
    pub fn fail(&self) {
        self.inner.resolve(Outcome::Failed);
    }
}

impl Token {
    fn resolve(&self, outcome: Outcome) {
        if self.resolved.swap(true, Ordering::AcqRel) {
            return;
        }
        match (&self.target, outcome) {
            (Target::Buffer { id, reply }, _) => {
                let _ = reply.send((*id, outcome));
            }
            (Target::Share(shares), Outcome::Failed) => shares.whole.fail(),
            (Target::Share(shares), Outcome::Acknowledged) => {
                if shares.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    shares.whole.acknowledge();
                }
            }
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
        let shares = issuer.issue(7).split(3);
        shares[0].acknowledge();
        shares[2].acknowledge();
        assert!(replies.try_recv().is_err(), "one share is still out");
        shares[1].acknowledge();
        assert_eq!(replies.try_recv().unwrap(), (7, Outcome::Acknowledged));
    }

    #[test]
    fn one_failed_or_dropped_share_fails_the_whole() {
        let (issuer, mut replies) = issuer();
        let mut shares = issuer.issue(8).split(2);
        shares[0].acknowledge();
        drop(shares.pop());
        assert_eq!(replies.try_recv().unwrap(), (8, Outcome::Failed));
        let shares = issuer.issue(9).split(2);
        shares[1].fail();
        shares[0].acknowledge();
        drop(shares);
        assert_eq!(replies.try_recv().unwrap(), (9, Outcome::Failed));
        assert!(replies.try_recv().is_err(), "resolved once");
        issuer.issue(10).split(0);
        assert_eq!(replies.try_recv().unwrap(), (10, Outcome::Acknowledged));
    }
}
