//! A request's events on their way downstream, and what became of them:
//! plain logic over a queue, tested without sockets.
//!
//! The events go as lines carrying one acknowledgement token, in parts no
//! larger than the outbox (each part with a share of the token), and the
//! answer waits for the token: acknowledged once every part is, failed as
//! soon as one part fails or is dropped.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wishbone_runtime::ack::{self, Outcome};
use wishbone_runtime::queue::Sender;
use wishbone_runtime::{Lines, Parcel, Positions};

/// What became of a request's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// Every event was acknowledged downstream.
    Acknowledged,
    /// An event was dropped or could not be delivered.
    Failed,
    /// The outbox had no room for the wait allowed: nothing was taken,
    /// unless the events were more than the outbox holds (then the parts
    /// sent before stay sent).
    Busy,
    /// The server aborted.
    Aborted,
}

/// Sends `lines` on `outbox`, waiting at most `wait` for room, then waits
/// for their token. Also returns how many events were put on the outbox.
pub async fn forward(
    outbox: &Sender,
    mut lines: Lines,
    wait: Duration,
    abort: &CancellationToken,
) -> (Forwarded, u64) {
    let (issuer, mut replies) = ack::issuer();
    let size = outbox.capacity().max(1);
    let total = lines.len();
    let parts = (0..total.div_ceil(size))
        .map(|part| Positions::range(part * size..((part + 1) * size).min(total)))
        .collect();
    let mut shares = issuer.issue(0).parts(parts).into_iter();
    drop(issuer);
    let deadline = tokio::time::Instant::now() + wait;
    let mut sent = 0u64;
    while !lines.is_empty() {
        let rest = lines.split_off(lines.len().min(size));
        let part = std::mem::replace(&mut lines, rest);
        let count = part.len();
        let permit = tokio::select! {
            biased;
            _ = abort.cancelled() => return (Forwarded::Aborted, sent),
            permit = tokio::time::timeout_at(deadline, outbox.reserve(count)) => permit,
        };
        match (permit, shares.next()) {
            (Ok(Ok(permit)), Some(share)) => {
                // A closed outbox drops the part, and its share fails.
                let _ = permit.send(Parcel::Lines(part.with_ack(share)));
                sent += count as u64;
            }
            (Err(_), _) => return (Forwarded::Busy, sent),
            // The outbox is gone: the shares left fail the token.
            _ => break,
        }
    }
    drop(shares);
    let outcome = tokio::select! {
        biased;
        _ = abort.cancelled() => Forwarded::Aborted,
        reply = replies.recv() => match reply {
            Some((_, Outcome::Acknowledged)) => Forwarded::Acknowledged,
            _ => Forwarded::Failed,
        },
    };
    (outcome, sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use wishbone_runtime::ack::Ack;
    use wishbone_runtime::queue;

    fn lines(count: usize) -> Lines {
        let body: String = (0..count).map(|n| format!("line {n}\n")).collect();
        wishbone_codecs::ndjson::decode(Bytes::from(body))
    }

    const WAIT: Duration = Duration::from_secs(1);

    /// Takes `parts` parts off `receiver`, settling each part's share with
    /// `settle` (its index and the share); their sizes.
    async fn take_parts(
        receiver: &mut queue::Receiver,
        parts: usize,
        settle: impl Fn(usize, Ack),
    ) -> Vec<usize> {
        let mut sizes = Vec::new();
        for index in 0..parts {
            let parcel = std::future::poll_fn(|context| receiver.poll_recv_parcel(context)).await;
            let Some(Parcel::Lines(mut part)) = parcel else {
                panic!("a part of lines expected");
            };
            sizes.push(part.len());
            settle(index, part.take_ack().expect("a share of the token"));
        }
        sizes
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_body_larger_than_the_outbox_goes_in_parts_acknowledged_once_all_are() {
        let (outbox, mut receiver) = queue::channel(4);
        let abort = CancellationToken::new();
        let (forwarded, sizes) = tokio::join!(
            forward(&outbox, lines(10), WAIT, &abort),
            take_parts(&mut receiver, 3, |_, share| share.acknowledge()),
        );
        assert_eq!(sizes, [4, 4, 2]);
        assert_eq!(forwarded, (Forwarded::Acknowledged, 10));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn one_part_failed_or_dropped_fails_the_request() {
        for drop_it in [false, true] {
            let (outbox, mut receiver) = queue::channel(4);
            let abort = CancellationToken::new();
            let (forwarded, _) = tokio::join!(
                forward(&outbox, lines(10), WAIT, &abort),
                take_parts(&mut receiver, 3, |index, share| match index {
                    1 if drop_it => drop(share),
                    1 => share.fail(),
                    _ => share.acknowledge(),
                }),
            );
            assert_eq!(forwarded, (Forwarded::Failed, 10), "dropped: {drop_it}");
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_full_outbox_takes_nothing_after_the_wait() {
        let (outbox, mut receiver) = queue::channel(2);
        outbox.send(Parcel::Lines(lines(2))).await.unwrap();
        let abort = CancellationToken::new();
        let started = tokio::time::Instant::now();
        assert_eq!(
            forward(&outbox, lines(2), WAIT, &abort).await,
            (Forwarded::Busy, 0)
        );
        assert_eq!(started.elapsed(), WAIT);
        assert_eq!(
            receiver.try_recv_parcel().map(|parcel| parcel.len()),
            Some(2)
        );
        assert!(
            receiver.try_recv_parcel().is_none(),
            "nothing of the request"
        );
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn an_abort_ends_the_wait_for_the_token() {
        let (outbox, _receiver) = queue::channel(8);
        let abort = CancellationToken::new();
        let aborting = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            abort.cancel();
        };
        let (forwarded, ()) = tokio::join!(forward(&outbox, lines(3), WAIT, &abort), aborting);
        assert_eq!(forwarded, (Forwarded::Aborted, 3));
    }
}
