//! Supervising a running server: every module waited for, stop requests
//! turned into the stop and then the abort, reload requests into reloads
//! (one file read at a time), and the server stopped when a module fails.

use std::pin::{Pin, pin};
use std::time::{Duration, Instant};

use futures::stream::{Stream, StreamExt};
use tokio::task::JoinHandle;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{ABORT_GRACE, Finished, Pipeline};
use crate::server::{Reloading, drain_deadline_of};
use crate::{Loaded, ModuleError, RuntimeOptions};

/// Long enough to mean never, short enough to add to now.
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What supervision keeps between its turns.
struct Supervision<'a> {
    stop: &'a CancellationToken,
    abort: &'a CancellationToken,
    drain_timeout: Duration,
    /// When a stop's drain gives up and aborts.
    drain_deadline: Pin<Box<Sleep>>,
    /// How long modules get to finish after an abort.
    abort_grace: Pin<Box<Sleep>>,
    /// A reload whose file is being read, and since when.
    reading: Option<(JoinHandle<Option<Loaded>>, Instant)>,
    /// Another request came while a file was read: read it again after.
    reload_again: bool,
    failures: Vec<(String, ModuleError)>,
}

/// Waits for every module, turning stop requests into the stop and abort
/// signals, reload requests into reloads, and stopping the server when a
/// module fails. Returns the modules that failed.
pub(crate) async fn supervise(
    pipeline: &mut Pipeline,
    stop_requests: impl Stream<Item = ()>,
    reload_requests: impl Stream<Item = ()>,
    reloading: &Reloading,
    stop: &CancellationToken,
    abort: &CancellationToken,
    options: &RuntimeOptions,
) -> Vec<(String, ModuleError)> {
    let mut stop_requests = pin!(stop_requests.fuse());
    let mut reload_requests = pin!(reload_requests.fuse());
    let mut supervision = Supervision {
        stop,
        abort,
        drain_timeout: options.drain_timeout,
        drain_deadline: Box::pin(tokio::time::sleep(NEVER)),
        abort_grace: Box::pin(tokio::time::sleep(NEVER)),
        reading: None,
        reload_again: false,
        failures: Vec::new(),
    };
    let mut finished: Vec<Finished> = Vec::new();
    while !pipeline.is_empty() || !finished.is_empty() {
        supervision.keep_grace();
        let removed_due = drain_deadline_of(pipeline);
        let next = match finished.pop() {
            Some(done) => Some(done),
            None => tokio::select! {
                () = &mut supervision.abort_grace, if abort.is_cancelled() => {
                    supervision.give_up(pipeline.len());
                    break;
                }
                done = pipeline.next_finished() => done,
                () = crate::resend::until(removed_due) => {
                    pipeline.abort_overdue(tokio::time::Instant::now());
                    None
                }
                Some(()) = stop_requests.next() => {
                    supervision.stop_requested();
                    None
                }
                Some(()) = reload_requests.next(), if !stop.is_cancelled() => {
                    supervision.reload_requested(reloading);
                    None
                }
                read = read(&mut supervision.reading), if supervision.reading.is_some() && !stop.is_cancelled() => {
                    finished = supervision.reload(read, reloading, pipeline).await;
                    None
                }
                () = &mut supervision.drain_deadline, if stop.is_cancelled() && !abort.is_cancelled() => {
                    tracing::warn!(drain_timeout = ?supervision.drain_timeout, "queues did not drain in time: aborting");
                    abort.cancel();
                    None
                }
            },
        };
        if let Some(done) = next {
            supervision.finished(done);
        }
    }
    supervision.failures
}

impl Supervision<'_> {
    /// Once aborted, modules get [`ABORT_GRACE`] to finish.
    fn keep_grace(&mut self) {
        let now = tokio::time::Instant::now();
        if self.abort.is_cancelled() && self.abort_grace.deadline() > now + ABORT_GRACE {
            self.abort_grace.as_mut().reset(now + ABORT_GRACE);
        }
    }

    /// Modules that did not finish after the abort are given up on.
    fn give_up(&mut self, modules: usize) {
        tracing::error!(modules, grace = ?ABORT_GRACE, "modules did not finish after the abort; giving up on them");
        let error = ModuleError::Other(format!("{modules} modules did not finish after the abort"));
        self.failures.push(("server".to_string(), error));
    }

    /// The first stop: inputs close and queues drain, within the drain
    /// timeout.
    fn begin_stop(&mut self, reason: &str) {
        if self.stop.is_cancelled() {
            return;
        }
        tracing::info!(reason, drain_timeout = ?self.drain_timeout, "stopping: inputs close, queues drain into outputs");
        self.stop.cancel();
        let deadline = tokio::time::Instant::now() + self.drain_timeout;
        self.drain_deadline.as_mut().reset(deadline);
    }

    /// A stop request: the stop, or during one, the abort.
    fn stop_requested(&mut self) {
        if self.stop.is_cancelled() {
            tracing::warn!("second stop request: aborting the drain");
            self.abort.cancel();
        } else {
            self.begin_stop("stop requested");
        }
    }

    /// A reload request: the file is read, unless it is being read now.
    fn reload_requested(&mut self, reloading: &Reloading) {
        if self.reading.is_some() {
            tracing::info!(
                "a reload is being read already; this request is covered by it once it is done"
            );
            self.reload_again = true;
        } else {
            self.reading = reloading.read().map(|read| (read, Instant::now()));
        }
    }

    /// The file read: the reload carried out (or refused); what it stopped
    /// is returned as finished.
    async fn reload(
        &mut self,
        read: Option<Loaded>,
        reloading: &Reloading,
        pipeline: &mut Pipeline,
    ) -> Vec<Finished> {
        let began = self
            .reading
            .take()
            .map_or_else(Instant::now, |(_, began)| began);
        let finished = reloading.apply(read, began, pipeline).await;
        if std::mem::take(&mut self.reload_again) {
            self.reading = reloading.read().map(|read| (read, Instant::now()));
        }
        finished
    }

    /// A module finished: a failure stops the server.
    fn finished(&mut self, done: Finished) {
        let Finished { name, outcome, .. } = done;
        match outcome {
            Ok(()) => tracing::debug!(module = %name, "module finished"),
            Err(error) => {
                tracing::error!(module = %name, %error, "module failed");
                self.failures.push((name, error));
                self.begin_stop("a module failed");
            }
        }
    }
}

/// Waits for the file being read (only while one is).
async fn read(reading: &mut Option<(JoinHandle<Option<Loaded>>, Instant)>) -> Option<Loaded> {
    let Some((reading, _)) = reading else {
        return std::future::pending().await;
    };
    reading.await.unwrap_or_else(|error| {
        tracing::error!(%error, "reading the bootstrap file failed");
        None
    })
}
