//! The reconnecting shell every output that talks to a peer shares: connect
//! with backoff, say so once per outage, lock the inbox while down (so a
//! round robin routes around the output), set aside what arrives meanwhile,
//! hand a connection to the output's pump, and drain or abort on stop.
//!
//! What to do with each event is decided by the output's [`Delivery`]; how
//! to connect and move bytes is the output's [`Transport`]. The shell holds
//! the queues, the counters and the backoff.

use std::future::Future;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wishbone_runtime::queue::{Receiver, Sender};
use wishbone_runtime::{
    ArgumentError, Arguments, Batch, Module, ModuleContext, ModuleError, Parcel,
};

use super::{Delivery, Released, Stall};
use crate::backoff::Backoff;
pub use crate::config::OwnArguments;
use crate::config::{default_reconnect_initial, default_reconnect_max, default_timeout, seconds};
use crate::metric::module_counter;

/// How long a connection made during an outage must hold before it is
/// logged as connected.
const HELD: Duration = Duration::from_secs(1);

/// How one kind of output reaches its peer.
pub trait Transport {
    /// A live connection.
    type Connection;

    /// Where it connects, for logs.
    fn target(&self) -> String;

    /// One attempt to connect; the shell bounds it with the timeout.
    fn connect(&mut self) -> impl Future<Output = Result<Self::Connection, String>>;

    /// Moves events from the inbox to the peer until the inbox closes and
    /// everything is acknowledged, the shell aborts, or the connection
    /// dies. Before returning it reports, through `state`, every
    /// acknowledgement it could still learn of.
    fn pump(
        &mut self,
        connection: Self::Connection,
        state: &mut OutputState,
        abort: &CancellationToken,
    ) -> impl Future<Output = Ended>;
}

/// An output module: the shell around one kind of transport. Every output
/// that reaches a peer is this module with its own [`Transport`].
pub struct Output<T> {
    pub settings: Settings,
    pub transport: T,
}

impl<T: Transport + Send + 'static> Module for Output<T> {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let state = OutputState::new(&mut context, self.settings);
        Box::pin(state.run(self.transport, context.aborting()))
    }
}

/// How a connection's pump ended.
pub enum Ended {
    /// Everything was delivered and the inbox is closed.
    Drained,
    /// The connection died or was given up on.
    Lost(String),
    /// The server aborted the drain.
    Aborted,
}

/// The arguments every output that reaches a peer takes besides its own,
/// described once here and in [`ARGUMENTS_DOCS`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryArguments {
    /// Seconds to wait for a connection, and for a peer that stopped
    /// acknowledging, before it counts as down.
    #[serde(default = "default_timeout")]
    timeout: f64,
    /// Undeliverable events go to `failed` instead of waiting.
    #[serde(default)]
    failed: bool,
    /// Acknowledged events go to `success`.
    #[serde(default)]
    success: bool,
    /// First wait before reconnecting, seconds.
    #[serde(default = "default_reconnect_initial")]
    reconnect_initial: f64,
    /// Longest wait between attempts, seconds.
    #[serde(default = "default_reconnect_max")]
    reconnect_max: f64,
}

/// Their names, to split them off a module's arguments.
const SHARED: [&str; 5] = [
    "timeout",
    "failed",
    "success",
    "reconnect_initial",
    "reconnect_max",
];

/// What `show --docs` of each such output says of them, for `concat!`
/// (`wishbone_modules::shared_arguments_docs!()` in other crates).
#[macro_export]
macro_rules! shared_arguments_docs {
    () => {
        "  timeout            seconds to wait for a connection, and for a peer that
                     stopped acknowledging, before it counts as down (10)
  failed             send undeliverable events to `failed` instead of keeping
                     them for the next connection (false)
  success            send acknowledged events to `success` (false)
  reconnect_initial  first wait in seconds before reconnecting (0.1)
  reconnect_max      longest wait between attempts; waits double up to it (1)
"
    };
}
pub use shared_arguments_docs;

/// The shared settings, from the arguments every such output takes.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a connection attempt, or a peer that stopped acknowledging,
    /// may take before the peer counts as down.
    pub timeout: Duration,
    pub backoff: Backoff,
    /// Undeliverable events go to `failed`.
    pub failover: bool,
    /// Acknowledged events go to `success`.
    pub success: bool,
}

impl Settings {
    /// The shared settings and the module's own arguments, whose `Config`
    /// is deserialized by the module (an unknown field there names these
    /// shared ones too).
    pub fn split(arguments: &Arguments) -> Result<(Self, OwnArguments), ArgumentError> {
        let (shared, own) = OwnArguments::split(arguments, &SHARED);
        let shared: DeliveryArguments = shared.deserialize()?;
        let settings = Self {
            timeout: seconds("timeout", shared.timeout)?,
            backoff: Backoff::new(
                seconds("reconnect_initial", shared.reconnect_initial)?,
                seconds("reconnect_max", shared.reconnect_max)?,
            ),
            failover: shared.failed,
            success: shared.success,
        };
        Ok((settings, own))
    }
}

/// An output's side of everything: its queues, its delivery decisions,
/// its counters.
pub struct OutputState {
    pub module: String,
    pub inbox: Receiver,
    /// False once the inbox closed: every sender is gone.
    pub inbox_open: bool,
    pub delivery: Delivery,
    pub timeout: Duration,
    failed: Sender,
    success: Sender,
    backoff: Backoff,
    counters: Counters,
    /// Rejections not logged yet, and when one last was: one line a
    /// second at most.
    rejections: (u64, Option<Instant>),
}

impl OutputState {
    /// Takes the output's queues from its context.
    pub fn new(context: &mut ModuleContext, settings: Settings) -> Self {
        let failed = context.outgoing("failed");
        if settings.failover && !failed.is_connected() {
            tracing::warn!(module = %context.name(), "failed: true but no route takes the failed queue: undeliverable events will be dropped and counted");
        }
        Self {
            module: context.name().to_string(),
            inbox: context.take_incoming("inbox"),
            inbox_open: true,
            delivery: Delivery::new(settings.failover, settings.success),
            timeout: settings.timeout,
            failed,
            success: context.outgoing("success"),
            backoff: settings.backoff,
            counters: Counters::new(context.name()),
            rejections: (0, None),
        }
    }

    /// Runs the output until its inbox closed and everything was
    /// delivered (or failed over), or an abort.
    async fn run(
        mut self,
        mut transport: impl Transport,
        abort: CancellationToken,
    ) -> Result<(), ModuleError> {
        let target = transport.target();
        let outcome = loop {
            self.inbox.lock();
            if !self.inbox_open && self.delivery.undelivered() == 0 {
                break Ok(());
            }
            let attempt = tokio::time::timeout(self.timeout, transport.connect());
            let failure = match self.while_down(attempt, &abort).await {
                None => break Err(self.undelivered()),
                Some(Ok(Ok(connection))) => {
                    self.counters.connected(true);
                    self.inbox.unlock();
                    let began = Instant::now();
                    let ended = self
                        .pump_reporting_health(&mut transport, connection, &target, &abort)
                        .await;
                    self.counters.connected(false);
                    let lost = self.delivery.end();
                    if !lost.failed.is_empty() && !self.fail(lost.failed, &abort).await {
                        break Err(self.undelivered());
                    }
                    match ended {
                        Ended::Drained => break Ok(()),
                        Ended::Aborted => break Err(self.undelivered()),
                        Ended::Lost(reason) => {
                            self.backoff.connection_ended(began.elapsed());
                            format!("disconnected: {reason}")
                        }
                    }
                }
                Some(Ok(Err(error))) => format!("cannot connect: {error}"),
                Some(Err(_)) => format!("cannot connect: no answer within {:?}", self.timeout),
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
            if self
                .while_down(tokio::time::sleep(wait), &abort)
                .await
                .is_none()
            {
                break Err(self.undelivered());
            }
        };
        let Totals {
            connects,
            delivered,
            bytes,
            failed_over,
            resent,
        } = self.counters.totals;
        tracing::info!(module = %self.module, connects, delivered, bytes, failed_over, resent, "output totals");
        outcome
    }

    /// Runs the transport's pump on a new connection. Outside an outage
    /// the connection is logged at once; during one, only once it has held
    /// for [`HELD`] (or the longest backoff wait, if shorter), so that a
    /// peer that accepts and then drops every connection never looks
    /// healthy in the logs.
    async fn pump_reporting_health<T: Transport>(
        &mut self,
        transport: &mut T,
        connection: T::Connection,
        target: &str,
        abort: &CancellationToken,
    ) -> Ended {
        let module = self.module.clone();
        if !self.backoff.in_outage() {
            tracing::info!(%module, %target, "connected");
            return transport.pump(connection, self, abort).await;
        }
        tracing::debug!(%module, %target, "connected; reported once the connection holds");
        let held = self.backoff.healthy_after().min(HELD);
        let pump = transport.pump(connection, self, abort);
        let mut pump = std::pin::pin!(pump);
        tokio::select! {
            ended = &mut pump => ended,
            () = tokio::time::sleep(held) => {
                tracing::info!(%module, %target, "connected");
                pump.await
            }
        }
    }

    /// Runs `work` while taking what the inbox holds: to `failed`, or held
    /// (up to a queue's worth) for the next connection. `None` on abort.
    async fn while_down<T>(
        &mut self,
        work: impl Future<Output = T>,
        abort: &CancellationToken,
    ) -> Option<T> {
        let mut work = std::pin::pin!(work);
        loop {
            let room = self.delivery.has_room(self.inbox.capacity());
            tokio::select! {
                biased;
                _ = abort.cancelled() => return None,
                done = &mut work => return Some(done),
                parcel = self.inbox.recv_parcel(), if self.inbox_open && room => match parcel {
                    None => self.inbox_open = false,
                    Some(parcel) => {
                        let failed = self.delivery.set_aside_parcel(parcel);
                        if !failed.is_empty() && !self.fail(failed, abort).await {
                            return None;
                        }
                    }
                },
            }
        }
    }

    /// Hands events to `failed`; false on abort (they are then counted as
    /// undelivered).
    pub async fn fail(&mut self, batch: Batch, abort: &CancellationToken) -> bool {
        let count = batch.len();
        tokio::select! {
            biased;
            sent = self.failed.send(batch) => {
                match sent {
                    Ok(()) => self.counters.failed_over(count),
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
    pub async fn reject(
        &mut self,
        event: wishbone_runtime::Event,
        reason: &str,
        abort: &CancellationToken,
    ) -> bool {
        self.counters.rejected.increment(1);
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
    pub async fn gather(&mut self, mut take: impl FnMut(&mut Self, Parcel) -> bool) {
        let mut yielded = false;
        loop {
            match self.inbox.try_recv_parcel() {
                Some(parcel) => {
                    if !take(self, parcel) {
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
    pub fn resending(&mut self, events: usize) {
        self.counters.resent(events);
    }

    /// The peer acknowledged up to `position`: counts what was released
    /// and hands it to `success` if asked.
    pub async fn acknowledge(&mut self, position: u64) {
        let Released {
            events,
            bytes,
            success,
        } = self
            .delivery
            .acknowledge(position, std::time::Instant::now());
        self.counters.delivered(events, bytes);
        if !success.is_empty() && self.success.send(success).await.is_err() {
            tracing::debug!(module = %self.module, "success queue closed");
        }
    }

    /// Notices a peer that stopped acknowledging (locks the inbox, so a
    /// round robin routes around it) and one that started again.
    pub fn check_stall(&mut self) {
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
    fn undelivered(&mut self) -> ModuleError {
        let mut count = self.delivery.undelivered();
        while let Some(batch) = self.inbox.try_recv() {
            count += batch.len();
        }
        ModuleError::Aborted { undelivered: count }
    }
}

/// What an output did: recorded as metrics `module.<name>.<counter>`, and
/// logged when it stops.
struct Counters {
    connected: metrics::Gauge,
    connects: metrics::Counter,
    delivered: metrics::Counter,
    bytes: metrics::Counter,
    failed_over: metrics::Counter,
    resent: metrics::Counter,
    rejected: metrics::Counter,
    totals: Totals,
}

#[derive(Debug, Default)]
struct Totals {
    connects: u64,
    delivered: u64,
    bytes: u64,
    failed_over: u64,
    resent: u64,
}

impl Counters {
    fn new(module: &str) -> Self {
        let name = |counter: &str| module_counter(module, counter);
        Self {
            connected: metrics::gauge!(name("connected")),
            connects: metrics::counter!(name("connects")),
            delivered: metrics::counter!(name("delivered")),
            bytes: metrics::counter!(name("bytes")),
            failed_over: metrics::counter!(name("failed_over")),
            resent: metrics::counter!(name("resent")),
            rejected: metrics::counter!(name("rejected")),
            totals: Totals::default(),
        }
    }

    fn connected(&mut self, up: bool) {
        self.connected.set(if up { 1.0 } else { 0.0 });
        if up {
            self.connects.increment(1);
            self.totals.connects += 1;
        }
    }

    fn delivered(&mut self, events: usize, bytes: u64) {
        self.delivered.increment(events as u64);
        self.bytes.increment(bytes);
        self.totals.delivered += events as u64;
        self.totals.bytes += bytes;
    }

    fn failed_over(&mut self, events: usize) {
        self.failed_over.increment(events as u64);
        self.totals.failed_over += events as u64;
    }

    fn resent(&mut self, events: usize) {
        self.resent.increment(events as u64);
        self.totals.resent += events as u64;
    }
}
