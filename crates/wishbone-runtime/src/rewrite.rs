//! The loop of a module that rewrites what passes through it (decode,
//! encode, modify, a jq program): each parcel from `inbox` becomes the
//! events that go on to `outbox` and those refused, which go to `failed`
//! with the reason.
//!
//! A refused event goes to `failed` as `{"error": REASON, "event": TEXT}`,
//! carrying the original's token: it counts as delivered when the output
//! behind `failed` delivers it, and when no route connects `failed` it is
//! dropped (counted in the queue's dropped_total) and settled, so a
//! write-ahead buffer upstream does not send again what can never pass.
//! While the outbox's destination is down, so is the inbox.

use crate::queue::{Receiver, Sender};
use crate::{Batch, Counted, Event, LockRelay, ModuleContext, ModuleError, Parcel};

/// What became of one parcel.
pub struct Rewritten {
    /// The events that go on (lines stay lines where they may).
    pub passed: Parcel,
    /// The events refused, with the reason, as they came.
    pub refused: Vec<(Event, String)>,
    /// The events not rewritten yet, the module's turn being over
    /// ([`crate::turn`]): they are rewritten next, once the other modules
    /// of the thread had their turn.
    pub rest: Parcel,
}

impl Rewritten {
    /// The parcel goes on as it is.
    pub fn unchanged(parcel: Parcel) -> Self {
        Self {
            passed: parcel,
            refused: Vec::new(),
            rest: Parcel::default(),
        }
    }
}

/// The module's queues and name.
pub struct Rewriting {
    inbox: Receiver,
    outbox: Sender,
    failed: Sender,
    name: String,
}

impl Rewriting {
    /// `inbox`, `outbox` and `failed` of the module.
    pub fn of(context: &mut ModuleContext) -> Self {
        Self {
            inbox: context.take_incoming("inbox"),
            outbox: context.outgoing("outbox"),
            failed: context.outgoing("failed"),
            name: context.name().to_string(),
        }
    }

    /// Rewrites every parcel from the inbox until it closes; the first
    /// refusal is logged with its reason, the number refused at the end
    /// (and in `module.<name>.failed`).
    pub async fn run(
        self,
        mut rewrite: impl FnMut(Parcel) -> Rewritten,
    ) -> Result<(), ModuleError> {
        let Rewriting {
            mut inbox,
            outbox,
            failed,
            name,
        } = self;
        let refused_count = Counted::new(&name, "failed");
        let mut relay = LockRelay::new(vec![inbox.locker()], [&outbox]);
        loop {
            let parcel = tokio::select! {
                parcel = inbox.recv_parcel() => parcel,
                () = relay.follow() => continue,
            };
            let Some(mut parcel) = parcel else { break };
            while !parcel.is_empty() {
                let mut rewritten = rewrite(parcel);
                parcel = std::mem::take(&mut rewritten.rest);
                pass_on(rewritten, &name, &refused_count, &outbox, &failed)
                    .await
                    .map_err(|error| error.holding_more(parcel.len()))?;
                if !parcel.is_empty() {
                    // The module's turn ended: the others of its thread run.
                    tokio::task::yield_now().await;
                }
            }
        }
        tracing::info!(module = %name, failed = refused_count.total(), "conversion totals");
        Ok(())
    }
}

/// Sends what passed to `outbox` and what was refused to `failed`; the
/// first refusal is logged with its reason.
async fn pass_on(
    rewritten: Rewritten,
    name: &str,
    refused_count: &Counted,
    outbox: &Sender,
    failed: &Sender,
) -> Result<(), ModuleError> {
    let Rewritten {
        passed, refused, ..
    } = rewritten;
    if let Some((_, reason)) = refused.first().filter(|_| refused_count.total() == 0) {
        tracing::warn!(module = %name, %reason, "an event was refused; it goes to failed (module.{name}.failed counts them)");
    }
    refused_count.add(refused.len() as u64);
    let refused: Batch = refused
        .into_iter()
        .map(|(event, reason)| report(&event, &reason))
        .collect();
    if !failed.is_connected() {
        refused.iter().for_each(Event::acknowledge);
    }
    let refused = (!refused.is_empty()).then_some(Parcel::Events(refused));
    for (queue, sender, parcel) in [
        ("outbox", outbox, Some(passed)),
        ("failed", failed, refused),
    ] {
        // Nothing refused: no parcel for `failed`.
        let Some(parcel) = parcel else { continue };
        if let Err(closed) = sender.send(parcel).await {
            return Err(ModuleError::DownstreamGone {
                queue: queue.into(),
                undelivered: closed.0.len(),
            });
        }
    }
    Ok(())
}

/// What goes to `failed` for a refused event: the reason and the event as
/// it came, with its token.
pub fn report(event: &Event, reason: &str) -> Event {
    let text = String::from_utf8_lossy(event.data());
    let report = serde_json::json!({"error": reason, "event": text}).to_string();
    event.with_data(report)
}
