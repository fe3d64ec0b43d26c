//! An output's side of everything, whatever its transport: its queues, its
//! delivery decisions, its counters; and what it does with events that go
//! elsewhere than to the peer (`failed`, `success`, a rejection).

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wishbone_runtime::queue::{Receiver, Sender};
use wishbone_runtime::{Batch, Counted, Event, ModuleContext, ModuleError, Parcel, module_metric};

use crate::arguments::Settings;
use crate::backoff::Backoff;
use crate::delivery::{Delivery, Released, Stall};

/// An output's side of everything: its queues, its delivery decisions,
/// its counters.
pub(crate) struct OutputState {
    pub(crate) module: String,
    pub(crate) inbox: Receiver,
    /// False once the inbox closed: every sender is gone.
    pub(crate) inbox_open: bool,
    pub(crate) delivery: Delivery,
    pub(crate) timeout: Duration,
    failed: Sender,
    success: Sender,
    pub(crate) backoff: Backoff,
    pub(crate) counters: Counters,
    /// Rejections not logged yet, and when one last was: one line a
    /// second at most.
    rejections: (u64, Option<Instant>),
    /// Fires when the server stops, or a reload stops or replaces the
    /// output.
    pub(crate) stopping: CancellationToken,
}

impl OutputState {
    /// Takes the output's queues from its context.
    pub(crate) fn new(context: &mut ModuleContext, settings: Settings) -> Self {
        let failed = context.outgoing("failed");
        if settings.failover && !failed.is_connected() {
            tracing::warn!(module = %context.name(), "failed: true but no route takes the failed queue: undeliverable events will be dropped and counted");
        }
        let inbox = context.take_incoming("inbox");
        // Down until the first connection: flow modules upstream route
        // around the output from the start, not after its first failure.
        inbox.lock();
        Self {
            module: context.name().to_string(),
            inbox,
            inbox_open: true,
            delivery: Delivery::new(settings.failover, settings.success),
            timeout: settings.timeout,
            failed,
            success: context.outgoing("success"),
            backoff: settings.backoff,
            counters: Counters::new(context.name(), context.readiness()),
            rejections: (0, None),
            stopping: context.stopping(),
        }
    }

    /// Hands events to `failed`; false on abort (they are then counted as
    /// undelivered).
    pub(crate) async fn fail(&mut self, batch: Batch, abort: &CancellationToken) -> bool {
        let count = batch.len();
        tokio::select! {
            biased;
            sent = self.failed.send(batch) => {
                match sent {
                    Ok(()) => self.counters.failed_over.add(count as u64),
                    Err(closed) => {
                        tracing::error!(module = %self.module, events = count, "failed queue closed; its events are lost");
                        self.failed.stats().record_dropped(closed.0.len());
                    }
                }
                true
            }
            _ = abort.cancelled() => false,
        }
    }

    /// An event its peer can never take (larger than the peer accepts, or
    /// refused when sent alone), so that sending it again would only block
    /// what follows: it goes to `failed` when a route takes that queue,
    /// whatever `failed: true|false` says; otherwise it is dropped, counted
    /// in `failed`'s dropped_total, and its token settled, so that no buffer
    /// upstream sends it again. Counted in `module.<name>.rejected` and
    /// logged with `reason`, one line a second at most. False on abort.
    pub(crate) async fn reject(
        &mut self,
        event: Event,
        reason: &str,
        abort: &CancellationToken,
    ) -> bool {
        self.counters.rejected.add(1);
        self.rejections.0 += 1;
        let due = self
            .rejections
            .1
            .is_none_or(|last| last.elapsed() >= Duration::from_secs(1));
        let routed = self.failed.is_connected();
        if due {
            let to = if routed { "failed" } else { "dropped" };
            tracing::warn!(module = %self.module, %reason, events = self.rejections.0, bytes = event.len(), "the peer cannot take an event; it goes to {to}");
            self.rejections = (0, Some(Instant::now()));
        }
        if routed {
            return self.fail(vec![event], abort).await;
        }
        event.acknowledge();
        self.failed.stats().record_dropped(1);
        true
    }

    /// Takes what else waits in the inbox, handing each parcel to `take`
    /// until it answers false (no more room). Once, lets the modules
    /// upstream run first: what they send meanwhile goes out in the same
    /// write, and every write wakes the peer, which costs more than the
    /// bytes. With nothing upstream to run, no time is lost.
    #[inline]
    pub(crate) async fn gather(&mut self, mut take: impl FnMut(Parcel) -> bool) {
        let mut yielded = false;
        loop {
            match self.inbox.try_recv_parcel() {
                Some(parcel) => {
                    if !take(parcel) {
                        return;
                    }
                }
                None if yielded => return,
                None => {
                    yielded = true;
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    /// Counts a new connection's resends.
    #[inline]
    pub(crate) fn resending(&mut self, events: usize) {
        self.counters.resent.add(events as u64);
    }

    /// The peer acknowledged up to `position`: counts what was released,
    /// and returns it when `success` wants it ([`OutputState::pass_on`]).
    /// Asked at every turn, so a position already known costs nothing.
    #[inline]
    pub(crate) fn release(&mut self, position: u64) -> Batch {
        if position <= self.delivery.acknowledged() {
            return Batch::new();
        }
        let Released {
            events,
            bytes,
            success,
        } = self
            .delivery
            .acknowledge(position, std::time::Instant::now());
        self.counters.delivered.add(events as u64);
        self.counters.bytes.add(bytes);
        success
    }

    /// The peer refused message `message` and has every one before it:
    /// those are released (and returned for `success`), the refused event
    /// is returned for [`OutputState::reject`].
    pub(crate) fn refuse(&mut self, message: u64) -> (Option<Event>, Batch) {
        let success = self.release(message.saturating_sub(1));
        let refused = self.delivery.refuse(message, std::time::Instant::now());
        (refused, success)
    }

    /// Hands acknowledged events to `success`.
    pub(crate) async fn pass_on(&mut self, success: Batch) {
        if self.success.send(success).await.is_err() {
            tracing::debug!(module = %self.module, "success queue closed");
        }
    }

    /// Whether the peer just stopped acknowledging (for transports where
    /// that ends the connection).
    #[inline]
    pub(crate) fn stalled_now(&mut self) -> bool {
        self.delivery.stall(std::time::Instant::now(), self.timeout) == Some(Stall::Stalled)
    }

    /// Notices a peer that stopped acknowledging (locks the inbox, so a
    /// round robin routes around it) and one that started again.
    #[inline]
    pub(crate) fn check_stall(&mut self) {
        match self.delivery.stall(std::time::Instant::now(), self.timeout) {
            Some(Stall::Stalled) => {
                self.inbox.lock();
                tracing::warn!(module = %self.module, timeout = ?self.timeout, "peer stopped reading; routing around it");
            }
            Some(Stall::Resumed) => {
                self.inbox.unlock();
                tracing::info!(module = %self.module, "peer reads again");
            }
            None => {}
        }
    }

    /// An abort: what this output still holds, for the error report.
    pub(crate) fn undelivered(&mut self) -> ModuleError {
        let mut count = self.delivery.undelivered();
        while let Some(batch) = self.inbox.try_recv() {
            count += batch.len();
        }
        ModuleError::Aborted { undelivered: count }
    }
}

/// What an output did: recorded as metrics `module.<name>.<counter>`, and
/// totalled for the log when it stops.
pub(crate) struct Counters {
    connected: metrics::Gauge,
    /// Not ready for `/ready` until the first connection.
    readiness: wishbone_runtime::ModuleReadiness,
    pub(crate) connects: Counted,
    pub(crate) delivered: Counted,
    pub(crate) bytes: Counted,
    pub(crate) failed_over: Counted,
    pub(crate) resent: Counted,
    rejected: Counted,
}

impl Counters {
    fn new(module: &str, readiness: wishbone_runtime::ModuleReadiness) -> Self {
        readiness.waiting("not connected to its peer yet");
        Self {
            connected: metrics::gauge!(module_metric(module, "connected")),
            readiness,
            connects: Counted::new(module, "connects"),
            delivered: Counted::new(module, "delivered"),
            bytes: Counted::new(module, "bytes"),
            failed_over: Counted::new(module, "failed_over"),
            resent: Counted::new(module, "resent"),
            rejected: Counted::new(module, "rejected"),
        }
    }

    pub(crate) fn connected(&self, up: bool) {
        self.connected.set(if up { 1.0 } else { 0.0 });
        if up {
            self.connects.add(1);
            self.readiness.ready();
        }
    }
}
