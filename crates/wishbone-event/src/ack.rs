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
use std::sync::atomic::{AtomicBool, Ordering};

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
    id: u64,
    resolved: AtomicBool,
    reply: mpsc::UnboundedSender<(u64, Outcome)>,
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
        Ack {
            inner: Arc::new(Token {
                id,
                resolved: AtomicBool::new(false),
                reply: self.reply.clone(),
            }),
        }
    }
}

impl Ack {
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
        if !self.resolved.swap(true, Ordering::AcqRel) {
            let _ = self.reply.send((self.id, outcome));
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
}
