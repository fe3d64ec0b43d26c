use std::pin::pin;

use futures::stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use wishbone_bootstrap::Bootstrap;

use crate::pipeline::{ABORT_GRACE, Changed, Finished, Pipeline};
use crate::publish::Publisher;
use crate::{ModuleError, ModuleSet, QueueTable, RuntimeOptions};

/// Why a server did not end cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A module could not be built from its arguments.
    #[error("module `{module}`: {message}")]
    Build {
        /// The module's instance name.
        module: String,
        /// What the kind said of its arguments.
        message: String,
    },
    /// Modules failed while running, or were aborted still holding events
    /// (each error says how many).
    #[error("{}", .0.iter().map(|(module, error)| format!("module `{module}`: {error}")).collect::<Vec<_>>().join("; "))]
    Modules(Vec<(String, ModuleError)>),
}

/// Reads the bootstrap file again for a reload: the new bootstrap,
/// validated, or `None` once every problem is logged.
///
/// It runs on a thread of its own: reading and checking a file (a huge
/// or hostile one included) never holds up delivery, signals or a stop.
pub type Reloader = std::sync::Arc<dyn Fn() -> Option<Bootstrap> + Send + Sync>;

/// Hears of each bootstrap a reload put in place.
pub type Reloaded = Box<dyn Fn(&Bootstrap)>;

/// A wishbone server: the modules of one bootstrap, wired and running.
pub struct Server {
    bootstrap: Bootstrap,
    modules: ModuleSet,
    options: RuntimeOptions,
    table: QueueTable,
    reloader: Option<Reloader>,
    reloaded: Option<Reloaded>,
}

impl Server {
    /// A server for a validated bootstrap.
    pub fn new(bootstrap: Bootstrap, modules: ModuleSet, options: RuntimeOptions) -> Self {
        Self {
            bootstrap,
            modules,
            options,
            table: QueueTable::default(),
            reloader: None,
            reloaded: None,
        }
    }

    /// Reloads on SIGHUP with what `reloader` reads; `reloaded` hears of
    /// each new bootstrap once it runs (for the graph page). Without a
    /// reloader SIGHUP stops the server.
    pub fn with_reloads(mut self, reloader: Reloader, reloaded: Reloaded) -> Self {
        self.reloader = Some(reloader);
        self.reloaded = Some(reloaded);
        self
    }

    /// The table every queue of this server is listed in once it runs: what
    /// an observer such as the `--graph` page reads, from any thread.
    pub fn queues(&self) -> QueueTable {
        self.table.clone()
    }

    /// Runs in a new actix system until SIGINT or SIGTERM (a second signal
    /// aborts the drain), or until every module has finished; SIGHUP
    /// reloads when the server has a reloader, else stops.
    pub fn run(self) -> Result<QueueTable, ServerError> {
        actix::System::new().block_on(async {
            let reloads = self.reloader.is_some();
            let (stops, hangups) = signals(reloads);
            self.serve_with_reloads(stops, hangups).await
        })
    }

    /// Runs on the current actix system; each item of `stop_requests` is a
    /// request to stop: the first drains, the second aborts.
    pub async fn serve(
        self,
        stop_requests: impl Stream<Item = ()>,
    ) -> Result<QueueTable, ServerError> {
        self.serve_with_reloads(stop_requests, futures::stream::pending())
            .await
    }

    /// [`Server::serve`], with each item of `reload_requests` a request to
    /// reload (with the reloader of [`Server::with_reloads`]).
    pub async fn serve_with_reloads(
        mut self,
        stop_requests: impl Stream<Item = ()>,
        reload_requests: impl Stream<Item = ()>,
    ) -> Result<QueueTable, ServerError> {
        let table = self.table.clone();
        let stop = CancellationToken::new();
        let abort = CancellationToken::new();
        let reloader = self.reloader.take();
        let reloaded = self.reloaded.take();
        let mut pipeline = Pipeline::new(
            self.bootstrap,
            self.modules,
            self.options.clone(),
            table.clone(),
            stop.clone(),
            abort.clone(),
        );
        pipeline
            .start_all()
            .map_err(|(module, message)| ServerError::Build { module, message })?;
        let publishing = actix_rt::spawn(publish_every(table.clone(), self.options.frequency));
        metrics::gauge!("server.started_at").set(unix_seconds());
        let build = env!("CARGO_PKG_VERSION").replace(['.', '-', '+'], "_");
        metrics::gauge!(format!("server.build_info.v{build}")).set(1.0);
        let last_reload = metrics::gauge!("server.last_reload_at");
        last_reload.set(0.0);
        let reloading = Reloading {
            reloader,
            reloaded,
            metrics: self.options.metrics.clone(),
            failures: metrics::counter!("server.reload_failures"),
            reloads: metrics::counter!("server.reloads"),
            last_reload,
        };
        let failures = supervise(
            &mut pipeline,
            stop_requests,
            reload_requests,
            &reloading,
            &stop,
            &abort,
            &self.options,
        )
        .await;
        publishing.abort();
        Publisher::default().publish(&table, self.options.frequency);
        report(&table);
        if failures.is_empty() {
            return Ok(table);
        }
        let undelivered: usize = failures.iter().map(|(_, error)| error.undelivered()).sum();
        if undelivered > 0 {
            tracing::error!(undelivered, "events were left undelivered");
        }
        Err(ServerError::Modules(failures))
    }
}

/// What a reload needs besides the pipeline.
struct Reloading {
    reloader: Option<Reloader>,
    reloaded: Option<Reloaded>,
    /// Where the metrics of stopped modules are forgotten.
    metrics: Option<std::sync::Arc<dyn crate::RecordedMetrics>>,
    /// `server.reload_failures`: reloads refused.
    failures: metrics::Counter,
    /// `server.reloads`: reloads carried out.
    reloads: metrics::Counter,
    /// `server.last_reload_at`: when the last one was, in seconds since
    /// the Unix epoch.
    last_reload: metrics::Gauge,
}

/// Now, in seconds since the Unix epoch.
fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64().floor())
}

impl Reloading {
    /// Reads and checks the file again on a thread of its own.
    fn read(&self) -> Option<tokio::task::JoinHandle<Option<Bootstrap>>> {
        let reloader = self.reloader.clone()?;
        Some(tokio::task::spawn_blocking(move || reloader()))
    }

    /// Changes the pipeline to what [`Reloading::read`] read; a file with a
    /// problem changes nothing. Returns the modules that failed meanwhile.
    async fn apply(
        &self,
        read: Option<Bootstrap>,
        began: std::time::Instant,
        pipeline: &mut Pipeline,
    ) -> Vec<Finished> {
        let Some(bootstrap) = read else {
            self.failures.increment(1);
            tracing::error!(
                "reload refused: the bootstrap file has problems (logged above); the running pipeline is unchanged"
            );
            return Vec::new();
        };
        match pipeline.reload(bootstrap).await {
            Err(problem) => {
                self.failures.increment(1);
                tracing::error!(%problem, "reload refused; the running pipeline is unchanged");
                Vec::new()
            }
            Ok(Changed {
                plan,
                finished,
                failures,
            }) => {
                for (module, error) in &failures {
                    tracing::error!(%module, %error, undelivered = error.undelivered(), "a module stopped by the reload ended with an error");
                }
                self.reloads.increment(1);
                self.last_reload.set(unix_seconds());
                if let Some(reloaded) = &self.reloaded {
                    reloaded(pipeline.bootstrap());
                }
                if let Some(metrics) = &self.metrics {
                    plan.stopped
                        .iter()
                        .for_each(|module| metrics.forget_module(module));
                }
                let names = |modules: &[String]| modules.join(" ");
                tracing::info!(
                    started = names(&plan.started),
                    replaced = names(&plan.replaced),
                    updated = names(&plan.updated),
                    rewired = names(&plan.rewired),
                    stopped = names(&plan.stopped),
                    elapsed_ms = format!("{:.1}", began.elapsed().as_secs_f64() * 1000.0),
                    "reloaded: kept {}, started {}, replaced {}, stopped {}",
                    plan.kept.len() + plan.updated.len(),
                    plan.started.len(),
                    plan.replaced.len(),
                    plan.stopped.len()
                );
                finished
            }
        }
    }
}

/// Waits for every module, turning stop requests into the stop and abort
/// signals, reload requests into reloads, and stopping the server when a
/// module fails.
async fn supervise(
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
    let mut failures = Vec::new();
    let drain_deadline = tokio::time::sleep(std::time::Duration::MAX / 4);
    let mut drain_deadline = pin!(drain_deadline);
    let begin_stop = |reason: &str, deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>| {
        if !stop.is_cancelled() {
            tracing::info!(reason, drain_timeout = ?options.drain_timeout, "stopping: inputs close, queues drain into outputs");
            stop.cancel();
            deadline
                .as_mut()
                .reset(tokio::time::Instant::now() + options.drain_timeout);
        }
    };
    let abort_grace = tokio::time::sleep(std::time::Duration::MAX / 4);
    let mut abort_grace = pin!(abort_grace);
    let mut finished: Vec<Finished> = Vec::new();
    // A reload whose file is being read, and since when; another request
    // meanwhile reads again once it is done.
    let mut reading: Option<(
        tokio::task::JoinHandle<Option<Bootstrap>>,
        std::time::Instant,
    )> = None;
    let mut reload_again = false;
    while !pipeline.is_empty() || !finished.is_empty() {
        if abort.is_cancelled()
            && abort_grace.deadline() > tokio::time::Instant::now() + ABORT_GRACE
        {
            abort_grace
                .as_mut()
                .reset(tokio::time::Instant::now() + ABORT_GRACE);
        }
        let removed_due = drain_deadline_of(pipeline);
        let next = match finished.pop() {
            Some(done) => Some(done),
            None => tokio::select! {
                () = &mut abort_grace, if abort.is_cancelled() => {
                    tracing::error!(modules = pipeline.len(), grace = ?ABORT_GRACE, "modules did not finish after the abort; giving up on them");
                    failures.push(("server".to_string(), ModuleError::Other(format!("{} modules did not finish after the abort", pipeline.len()))));
                    break;
                }
                done = pipeline.next_finished() => done,
                () = crate::resend::until(removed_due) => {
                    pipeline.abort_overdue(tokio::time::Instant::now());
                    None
                }
                Some(()) = stop_requests.next() => {
                    if stop.is_cancelled() {
                        tracing::warn!("second stop request: aborting the drain");
                        abort.cancel();
                    } else {
                        begin_stop("stop requested", &mut drain_deadline);
                    }
                    None
                }
                Some(()) = reload_requests.next(), if !stop.is_cancelled() => {
                    if reading.is_some() {
                        tracing::info!("a reload is being read already; this request is covered by it once it is done");
                        reload_again = true;
                    } else {
                        reading = reloading.read().map(|read| (read, std::time::Instant::now()));
                    }
                    None
                }
                read = async { (&mut reading.as_mut().expect("guarded").0).await }, if reading.is_some() && !stop.is_cancelled() => {
                    let began = reading.take().map_or_else(std::time::Instant::now, |(_, began)| began);
                    let read = read.unwrap_or_else(|error| {
                        tracing::error!(%error, "reading the bootstrap file failed");
                        None
                    });
                    finished = reloading.apply(read, began, pipeline).await;
                    if std::mem::take(&mut reload_again) {
                        reading = reloading.read().map(|read| (read, std::time::Instant::now()));
                    }
                    None
                }
                () = &mut drain_deadline, if stop.is_cancelled() && !abort.is_cancelled() => {
                    tracing::warn!(drain_timeout = ?options.drain_timeout, "queues did not drain in time: aborting");
                    abort.cancel();
                    None
                }
            },
        };
        let Some(Finished { name, outcome, .. }) = next else {
            continue;
        };
        match outcome {
            Ok(()) => tracing::debug!(module = %name, "module finished"),
            Err(error) => {
                tracing::error!(module = %name, %error, "module failed");
                failures.push((name, error));
                begin_stop("a module failed", &mut drain_deadline);
            }
        }
    }
    failures
}

/// When a module a reload removed is due to be aborted, as a clock time.
fn drain_deadline_of(pipeline: &Pipeline) -> Option<std::time::Instant> {
    pipeline
        .drain_deadline()
        .map(tokio::time::Instant::into_std)
}

/// Publishes the queue statistics to the metrics recorder every `frequency`.
async fn publish_every(table: QueueTable, frequency: std::time::Duration) {
    let mut publisher = Publisher::default();
    let mut tick = tokio::time::interval(frequency);
    let mut last = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        publisher.publish(&table, last.elapsed());
        last = tokio::time::Instant::now();
    }
}

/// Logs every queue's totals, the record of what this run moved.
fn report(table: &QueueTable) {
    for entry in table.entries() {
        let totals = entry.stats.snapshot();
        if totals.in_total + totals.dropped_total + totals.discarded_total > 0 {
            tracing::info!(
                queue = %format_args!("{}.{}", entry.module, entry.queue),
                in_total = totals.in_total,
                out_total = totals.out_total,
                dropped_total = totals.dropped_total,
                discarded_total = totals.discarded_total,
                size = totals.size,
                "queue totals"
            );
        }
    }
}

/// SIGINT and SIGTERM as stop requests, and SIGHUP as reload requests
/// when the server reloads (else as a stop request too: a closed terminal
/// must not lose what is in memory).
fn signals(
    reloads: bool,
) -> (
    impl Stream<Item = ()> + use<>,
    impl Stream<Item = ()> + use<>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(mut signal) => Some(
            futures::stream::poll_fn(move |cx| signal.poll_recv(cx))
                .map(move |()| tracing::info!(signal = name, "signal received"))
                .boxed_local(),
        ),
        Err(error) => {
            tracing::warn!(%error, signal = name, "cannot listen for a signal");
            None
        }
    };
    let mut stops: Vec<_> = [
        listen(SignalKind::interrupt(), "SIGINT"),
        listen(SignalKind::terminate(), "SIGTERM"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let hangup = listen(SignalKind::hangup(), "SIGHUP");
    let mut hangups = Vec::new();
    match (reloads, hangup) {
        (true, Some(hangup)) => {
            hangups.push(hangup.inspect(|()| crate::reopen::request()).boxed_local())
        }
        (false, Some(hangup)) => stops.push(hangup),
        (_, None) => {}
    }
    (
        futures::stream::select_all(stops),
        futures::stream::select_all(hangups),
    )
}
