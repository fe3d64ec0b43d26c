//! The reconnecting shell every output that talks to a peer shares: connect
//! with backoff, say so once per outage, lock the inbox while down (so a
//! round robin routes around the output), set aside what arrives meanwhile,
//! hand a connection to the output's pump, and drain or abort on stop.
//!
//! What to do with each event is decided by the output's
//! [`Delivery`](crate::Delivery); how to connect and move bytes is the
//! output's [`Transport`]; a connection's turns are the pump's
//! (`pump.rs`). The shell holds the queues, the counters and the backoff
//! (`state.rs`).

use std::future::Future;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wishbone_runtime::{Module, ModuleContext, ModuleError, Parcel};

use crate::arguments::Settings;
use crate::pump::{Ended, pump};
use crate::state::OutputState;
use crate::transport::Transport;

/// How long a connection made during an outage must hold before it is
/// logged as connected.
const HELD: Duration = Duration::from_secs(1);

/// An output module: the shell around one kind of transport. Every output
/// that reaches a peer is this module with its own [`Transport`].
pub struct Output<T> {
    /// The shared arguments ([`Settings::split`]).
    pub settings: Settings,
    /// How this kind of output reaches its peer.
    pub transport: T,
}

impl<T: Transport + Send + 'static> Module for Output<T> {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let state = OutputState::new(&mut context, self.settings);
        let mut transport = self.transport;
        transport.named(context.name());
        Box::pin(state.run(transport, context.aborting()))
    }
}

/// How a wait while the peer is down ended.
enum Down<T> {
    /// The work finished.
    Done(T),
    /// The inbox closed and nothing is left to deliver.
    Drained,
    /// The server aborted.
    Aborted,
}

impl OutputState {
    /// Runs the output until its inbox closed and everything was
    /// delivered (or failed over), or an abort.
    async fn run<T: Transport>(
        mut self,
        mut transport: T,
        abort: CancellationToken,
    ) -> Result<(), ModuleError> {
        let target = transport.target();
        // The last connection ended to send again at once: the next one is
        // no news for the log.
        let mut again = false;
        let outcome = loop {
            self.inbox.lock();
            if !self.inbox_open && self.delivery.undelivered() == 0 {
                break Ok(());
            }
            let attempt = tokio::time::timeout(self.timeout, transport.connect());
            let failure = match self.while_down(attempt, &abort).await {
                Down::Aborted => break Err(self.undelivered()),
                Down::Drained => break Ok(()),
                Down::Done(Ok(Ok(mut connection))) => {
                    self.counters.connected(true);
                    self.inbox.unlock();
                    let began = Instant::now();
                    let ended = self
                        .pump_reporting_health::<T>(&mut connection, &target, again, &abort)
                        .await;
                    transport.ended(connection);
                    again = matches!(ended, Ended::Again(_));
                    self.counters.connected(false);
                    let lost = self.delivery.end();
                    if !lost.failed.is_empty() && !self.fail(lost.failed, &abort).await {
                        break Err(self.undelivered());
                    }
                    match ended {
                        Ended::Drained => break Ok(()),
                        Ended::Aborted => break Err(self.undelivered()),
                        Ended::Again(reason) => {
                            tracing::debug!(module = %self.module, %target, %reason, "sending again at once");
                            continue;
                        }
                        Ended::Lost(reason) => {
                            self.backoff.connection_ended(began.elapsed());
                            format!("disconnected: {reason}")
                        }
                    }
                }
                Down::Done(Ok(Err(error))) => format!("cannot connect: {error}"),
                Down::Done(Err(_)) => {
                    format!("cannot connect: no answer within {:?}", self.timeout)
                }
            };
            // Every failure, before or after a handshake, waits its turn,
            // with the inbox locked so a round robin routes around it.
            self.inbox.lock();
            let wait = self.backoff.next_wait();
            if self.backoff.announce(&failure, std::time::Instant::now()) {
                tracing::warn!(module = %self.module, %target, %failure, held = self.delivery.held(), "peer unavailable; retrying with backoff");
            } else {
                tracing::debug!(module = %self.module, %target, %failure, ?wait, "still unavailable");
            }
            match self.while_down(tokio::time::sleep(wait), &abort).await {
                Down::Aborted => break Err(self.undelivered()),
                Down::Drained => break Ok(()),
                Down::Done(()) => {}
            }
        };
        let counters = &self.counters;
        let (connects, delivered, bytes, failed_over, resent) = (
            counters.connects.total(),
            counters.delivered.total(),
            counters.bytes.total(),
            counters.failed_over.total(),
            counters.resent.total(),
        );
        tracing::info!(module = %self.module, connects, delivered, bytes, failed_over, resent, "output totals");
        outcome
    }

    /// Runs the transport's pump on a new connection. After a connection
    /// that ended to send again at once, it is logged at debug only;
    /// outside an outage the connection is logged at once; during one, only once it has held
    /// for [`HELD`] (or the longest backoff wait, if shorter), so that a
    /// peer that accepts and then drops every connection never looks
    /// healthy in the logs.
    async fn pump_reporting_health<T: Transport>(
        &mut self,
        connection: &mut T::Connection,
        target: &str,
        again: bool,
        abort: &CancellationToken,
    ) -> Ended {
        let module = self.module.clone();
        if again {
            tracing::debug!(%module, %target, "connected again");
            return pump(connection, self, abort).await;
        }
        if !self.backoff.in_outage() {
            tracing::info!(%module, %target, "connected");
            return pump(connection, self, abort).await;
        }
        tracing::debug!(%module, %target, "connected; reported once the connection holds");
        let held = self.backoff.healthy_after().min(HELD);
        let pump = pump(connection, self, abort);
        let mut pump = std::pin::pin!(pump);
        tokio::select! {
            ended = &mut pump => ended,
            () = tokio::time::sleep(held) => {
                tracing::info!(%module, %target, "connected");
                pump.await
            }
        }
    }

    /// Replaced by a reload while the peer is down: what the output held
    /// for the next connection goes back on the queue, first, for the
    /// module that replaces it, instead of waiting out the drain.
    fn hand_on_held(&mut self) {
        let held = self.delivery.take_held();
        if held.is_empty() {
            return;
        }
        tracing::info!(module = %self.module, events = held.len(), "replaced while the peer is down: what it held goes to its replacement");
        self.inbox.give_back(Parcel::Events(held));
    }

    /// Runs `work` while taking what the inbox holds: to `failed`, or held
    /// (up to a queue's worth) for the next connection. Ends early on an
    /// abort, and once the inbox closed with nothing left to deliver (a
    /// stop, or a reload that replaces the output: no backoff to sit out).
    async fn while_down<T>(
        &mut self,
        work: impl Future<Output = T>,
        abort: &CancellationToken,
    ) -> Down<T> {
        let mut work = std::pin::pin!(work);
        loop {
            if self.stopping.is_cancelled() && self.inbox.is_handed_over() {
                // Replaced: the replacement gets what this one held, then
                // the queue, without waiting for this one's peer.
                self.hand_on_held();
                return Down::Drained;
            }
            if !self.inbox_open && self.delivery.undelivered() == 0 {
                return Down::Drained;
            }
            let room = self.delivery.has_room(self.inbox.capacity());
            tokio::select! {
                biased;
                _ = abort.cancelled() => return Down::Aborted,
                _ = self.stopping.cancelled(), if !self.stopping.is_cancelled() => {}
                done = &mut work => return Down::Done(done),
                parcel = self.inbox.recv_parcel(), if self.inbox_open && room => match parcel {
                    None => self.inbox_open = false,
                    Some(parcel) => {
                        let failed = self.delivery.set_aside_parcel(parcel);
                        if !failed.is_empty() && !self.fail(failed, abort).await {
                            return Down::Aborted;
                        }
                    }
                },
            }
        }
    }
}
