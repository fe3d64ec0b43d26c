//! The wal running: its queues, its bookkeeping ([`Retention`]) and, with
//! `path`, its log, turned over in named steps until the inbox closed and
//! everything was delivered, or an abort.

use std::collections::VecDeque;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use wishbone_runtime::ack::{self, AckIssuer, Replies};
use wishbone_runtime::queue::{LockWatch, Receiver, Sender};
use wishbone_runtime::{Counted, ModuleContext, ModuleError, Parcel, resend};

use crate::log::{self, open_log};
use crate::{Command, Config, Pushed, Retention};

/// What a turn came to.
enum Turn {
    Go,
    End(Result<(), ModuleError>),
}

/// A running wal.
pub(crate) struct Running {
    name: String,
    config: Config,
    inbox: Receiver,
    inbox_open: bool,
    outbox: Sender,
    outbox_lock: LockWatch,
    abort: CancellationToken,
    retention: Retention,
    /// With `path`.
    log: Option<log::Log>,
    /// Tokens for the blocks sent, and their outcomes.
    issuer: AckIssuer,
    replies: Replies,
    /// Blocks cut from the inbox that wait for room, oldest first.
    blocked: VecDeque<Parcel>,
    resent: Counted,
    /// Drops counted in the inbox's figures so far.
    reported_drops: u64,
}

impl Running {
    pub(crate) fn new(context: &mut ModuleContext, config: Config) -> Self {
        let outbox = context.outgoing("outbox");
        let (issuer, replies) = ack::issuer();
        let name = context.name().to_string();
        Self {
            inbox: context.take_incoming("inbox"),
            inbox_open: true,
            outbox_lock: outbox.lock_watch(),
            outbox,
            abort: context.aborting(),
            retention: Retention::new(config.clone()),
            log: None,
            issuer,
            replies,
            blocked: VecDeque::new(),
            resent: Counted::new(&name, "resent"),
            reported_drops: 0,
            name,
            config,
        }
    }

    /// Opens the log (with `path`), then turns until the end.
    pub(crate) async fn run(mut self) -> Result<(), ModuleError> {
        if let Some(path) = &self.config.path {
            let (log, retention) = open_log(&self.config, path, &self.name)?;
            self.log = Some(log);
            self.retention = retention;
        }
        loop {
            self.settle_books();
            if !self.inbox_open && self.blocked.is_empty() && self.retention.is_empty() {
                if let Some(log) = &mut self.log {
                    log.writer.finish();
                }
                return Ok(());
            }
            if let Turn::End(ended) = self.turn().await {
                return ended;
            }
        }
    }

    /// What the last turn changed, passed on: blocked blocks kept as room
    /// allows, the log handed its work, resends and drops counted.
    fn settle_books(&mut self) {
        let to_write = keep_blocked(&mut self.blocked, &mut self.retention);
        if let Some(log) = &self.log {
            hand_to_log(log, &mut self.retention, to_write);
        }
        report_resends(&mut self.retention, &self.resent, &self.name);
        let dropped = self.retention.dropped();
        if dropped > self.reported_drops {
            let newly = (dropped - self.reported_drops) as usize;
            self.inbox.stats().record_dropped(newly);
            self.reported_drops = dropped;
        }
    }

    /// Waits for the next thing to happen and takes it in.
    async fn turn(&mut self) -> Turn {
        // A locked outbox (the output down, or every destination of a
        // round robin) holds blocks here, where `when_full` applies.
        let held = self.outbox_lock.is_locked();
        let sendable = if held { 0 } else { self.retention.sendable() };
        let readable = self.inbox_open
            && self.blocked.is_empty()
            && self
                .log
                .as_ref()
                .is_none_or(|log| log.has_room(&self.retention, &self.config));
        let report = async {
            match &mut self.log {
                Some(log) => log.writer.reports.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = self.abort.cancelled() => Turn::End(self.aborted()),
            Some(report) = report => {
                if let Some(log) = &mut self.log {
                    log.apply(report, &mut self.retention);
                }
                Turn::Go
            }
            Some((id, outcome)) = self.replies.recv() => {
                self.retention.resolve(id, outcome, Instant::now());
                while let Ok((id, outcome)) = self.replies.try_recv() {
                    self.retention.resolve(id, outcome, Instant::now());
                }
                Turn::Go
            }
            () = resend::until(self.retention.next_due()) => {
                self.retention.release_due(Instant::now());
                Turn::Go
            }
            () = self.outbox_lock.changed(), if held => Turn::Go,
            permit = self.outbox.reserve(sendable), if sendable > 0 => match permit {
                Ok(permit) => {
                    // `sendable` is the oldest waiting block's size: one block.
                    if let Some((id, block)) = self.retention.take(sendable).pop()
                        && permit.send(with_token(block, self.issuer.issue(id))).is_err()
                    {
                        tracing::error!(module = %self.name, "outbox closed");
                    }
                    Turn::Go
                }
                Err(_) => Turn::End(Err(ModuleError::DownstreamGone {
                    queue: "outbox".into(),
                    undelivered: self.undelivered(),
                })),
            },
            parcel = self.inbox.recv_parcel(), if readable => {
                match parcel {
                    None => self.inbox_open = false,
                    Some(parcel) => self.blocked.extend(self.retention.cut(parcel)),
                }
                Turn::Go
            }
        }
    }

    /// Events taken in and not delivered.
    fn undelivered(&self) -> usize {
        self.retention.len() + self.blocked.iter().map(Parcel::len).sum::<usize>()
    }

    /// The server aborted: in memory, everything not delivered is lost;
    /// with a log, only what it never wrote.
    fn aborted(&mut self) -> Result<(), ModuleError> {
        let undelivered = self.undelivered();
        match &mut self.log {
            Some(log) => aborted_on_disk(log, &mut self.retention, &self.blocked, &self.name),
            None => Err(ModuleError::Aborted { undelivered }),
        }
    }
}

/// A block on its way: its token, split over its events when they travel
/// one by one.
pub(crate) fn with_token(block: Parcel, token: ack::Ack) -> Parcel {
    match block {
        Parcel::Lines(lines) => Parcel::Lines(lines.with_ack(token)),
        Parcel::Events(batch) => {
            let shares = token.each(batch.len());
            Parcel::Events(
                batch
                    .into_iter()
                    .zip(shares)
                    .map(|(event, share)| event.with_ack(share))
                    .collect(),
            )
        }
    }
}

/// Keeps the blocks that wait for room, oldest first, as `when_full`
/// allows; those the log must write, returned.
fn keep_blocked(blocked: &mut VecDeque<Parcel>, retention: &mut Retention) -> Vec<(u64, Parcel)> {
    let mut to_write = Vec::new();
    while let Some(block) = blocked.pop_front() {
        match retention.push_block(block) {
            Err(block) => {
                blocked.push_front(block);
                break;
            }
            Ok(Pushed::Write(id, parcel)) => to_write.push((id, parcel)),
            Ok(Pushed::Done) => {}
        }
    }
    to_write
}

/// Hands the log what it must write, record as settled and read back.
fn hand_to_log(log: &log::Log, retention: &mut Retention, to_write: Vec<(u64, Parcel)>) {
    if !to_write.is_empty() {
        log.writer.send(Command::Keep(to_write));
    }
    let settlements = retention.take_settlements();
    if !settlements.is_empty() {
        log.writer.send(Command::Settle(settlements));
    }
    let loads = retention.take_loads();
    if !loads.is_empty() {
        log.writer.send(Command::Load(loads));
    }
}

/// An abort with a log: what the log was handed is written before its
/// thread ends (unless writing still fails after `writer::FINAL_TRIES`),
/// so only `blocked` is lost, and what was never written.
fn aborted_on_disk(
    log: &mut log::Log,
    retention: &mut Retention,
    blocked: &VecDeque<Parcel>,
    name: &str,
) -> Result<(), ModuleError> {
    log.writer.finish();
    while let Ok(report) = log.writer.reports.try_recv() {
        log.apply(report, retention);
    }
    tracing::info!(module = %name, events = retention.len().saturating_sub(log.unwritten), "stopping; events not yet delivered stay in the wal for the next start");
    let lost = blocked.iter().map(Parcel::len).sum::<usize>() + log.unwritten;
    match lost {
        0 => Ok(()),
        _ => Err(ModuleError::Aborted { undelivered: lost }),
    }
}

/// Counts what was sent again, and logs when resending starts and ends.
fn report_resends(retention: &mut Retention, resent: &Counted, name: &str) {
    let total = retention.resent();
    if total > resent.total() {
        resent.add(total - resent.total());
    }
    if let Some(change) = retention.take_resend_change() {
        change.log(name, "events");
    }
}
