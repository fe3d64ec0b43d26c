use futures::stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use wishbone_bootstrap::Bootstrap;

use crate::pipeline::{Changed, Finished, Pipeline};
use crate::publish::Publisher;
use crate::{Loaded, ModuleError, QueueTable, RuntimeOptions};

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
pub type Reloader = std::sync::Arc<dyn Fn() -> Option<Loaded> + Send + Sync>;

/// Hears of each bootstrap a reload put in place.
pub type Reloaded = Box<dyn Fn(&Bootstrap)>;

/// A wishbone server: the modules of one bootstrap, wired and running.
pub struct Server {
    loaded: Loaded,
    options: RuntimeOptions,
    table: QueueTable,
    reloader: Option<Reloader>,
    reloaded: Option<Reloaded>,
}

impl Server {
    /// A server for a bootstrap file loaded: checked, with its modules
    /// built by the checking, which are the ones that run.
    pub fn new(loaded: Loaded, options: RuntimeOptions) -> Self {
        Self {
            loaded,
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
            self.loaded.bootstrap,
            self.options.clone(),
            table.clone(),
            stop.clone(),
            abort.clone(),
        );
        pipeline
            .start_all(self.loaded.built)
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
        let failures = crate::supervision::supervise(
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
pub(crate) struct Reloading {
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
    pub(crate) fn read(&self) -> Option<tokio::task::JoinHandle<Option<Loaded>>> {
        let reloader = self.reloader.clone()?;
        Some(tokio::task::spawn_blocking(move || reloader()))
    }

    /// Changes the pipeline to what [`Reloading::read`] read; a file with a
    /// problem changes nothing. Returns the modules that failed meanwhile.
    pub(crate) async fn apply(
        &self,
        read: Option<Loaded>,
        began: std::time::Instant,
        pipeline: &mut Pipeline,
    ) -> Vec<Finished> {
        let Some(loaded) = read else {
            self.failures.increment(1);
            tracing::error!(
                "reload refused: the bootstrap file has problems (logged above); the running pipeline is unchanged"
            );
            return Vec::new();
        };
        match pipeline.reload(loaded).await {
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

/// When a module a reload removed is due to be aborted, as a clock time.
pub(crate) fn drain_deadline_of(pipeline: &Pipeline) -> Option<std::time::Instant> {
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
