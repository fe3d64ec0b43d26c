use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;

use actix::Actor;
use futures::stream::{FuturesUnordered, Stream, StreamExt};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use wishbone_bootstrap::{Bootstrap, ModuleDecl};
use wishbone_event::{RESERVED_QUEUES, queue};

use crate::order::downstream_first;
use crate::publish::Publisher;
use crate::{
    Module, ModuleActor, ModuleContext, ModuleError, ModuleSet, QueueTable, RuntimeOptions,
};

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

/// A wishbone server: the modules of one bootstrap, wired and running.
pub struct Server {
    bootstrap: Bootstrap,
    modules: ModuleSet,
    options: RuntimeOptions,
    table: QueueTable,
}

impl Server {
    /// A server for a validated bootstrap.
    pub fn new(bootstrap: Bootstrap, modules: ModuleSet, options: RuntimeOptions) -> Self {
        Self {
            bootstrap,
            modules,
            options,
            table: QueueTable::default(),
        }
    }

    /// The table every queue of this server is listed in once it runs: what
    /// an observer such as the `--graph` page reads, from any thread.
    pub fn queues(&self) -> QueueTable {
        self.table.clone()
    }

    /// Runs in a new actix system until SIGINT or SIGTERM (a second signal
    /// aborts the drain), or until every module has finished.
    pub fn run(self) -> Result<QueueTable, ServerError> {
        actix::System::new().block_on(async { self.serve(stop_signals()).await })
    }

    /// Runs on the current actix system; each item of `stop_requests` is a
    /// request to stop: the first drains, the second aborts.
    pub async fn serve(
        self,
        stop_requests: impl Stream<Item = ()>,
    ) -> Result<QueueTable, ServerError> {
        let table = self.table.clone();
        let stop = CancellationToken::new();
        let abort = CancellationToken::new();
        let mut contexts = self.wire(&table, &stop, &abort);
        let mut built: HashMap<String, Box<dyn Module>> = HashMap::new();
        for decl in &self.bootstrap.modules {
            built.insert(decl.name.clone(), self.build(decl)?);
        }
        let names: Vec<&str> = self
            .bootstrap
            .modules
            .iter()
            .map(|decl| decl.name.as_str())
            .collect();
        let links: Vec<(&str, &str)> = self
            .bootstrap
            .routes
            .iter()
            .map(|route| (route.from.module.as_str(), route.to.module.as_str()))
            .collect();
        let running = FuturesUnordered::new();
        for name in downstream_first(&names, &links) {
            let (Some(module), Some(context)) = (built.remove(name), contexts.remove(name)) else {
                continue;
            };
            let (done, outcome) = oneshot::channel();
            ModuleActor::new(module, context, done).start();
            let name = name.to_string();
            running.push(async move {
                let outcome = outcome
                    .await
                    .unwrap_or_else(|_| Err(ModuleError::Other("the module vanished".into())));
                (name, outcome)
            });
        }
        for route in &self.bootstrap.routes {
            tracing::info!(route = %route, "queue connected");
        }
        let publishing = actix_rt::spawn(publish_every(table.clone(), self.options.frequency));
        let failures = supervise(running, stop_requests, &stop, &abort, &self.options).await;
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

    fn build(&self, decl: &ModuleDecl) -> Result<Box<dyn Module>, ServerError> {
        let build_error = |message: String| ServerError::Build {
            module: decl.name.clone(),
            message,
        };
        self.modules
            .build(decl.kind, &decl.arguments)
            .map_err(|error| build_error(error.to_string()))
    }

    /// Creates one queue per route and hands its ends to the two modules.
    fn wire(
        &self,
        table: &QueueTable,
        stop: &CancellationToken,
        abort: &CancellationToken,
    ) -> HashMap<String, ModuleContext> {
        let options = Arc::new(self.options.clone());
        let mut contexts: HashMap<String, ModuleContext> = self
            .bootstrap
            .modules
            .iter()
            .map(|decl| {
                let context = ModuleContext::new(
                    decl.name.clone(),
                    stop.clone(),
                    abort.clone(),
                    options.clone(),
                    table.clone(),
                );
                (decl.name.clone(), context)
            })
            .collect();
        for route in &self.bootstrap.routes {
            let (sender, receiver) = queue::channel(self.options.queue_size);
            if let Some(context) = contexts.get_mut(&route.from.module) {
                context.connect_outgoing(&route.from.queue, sender);
            }
            if let Some(context) = contexts.get_mut(&route.to.module) {
                context.connect_incoming(&route.to.queue, receiver);
            }
        }
        for decl in &self.bootstrap.modules {
            let declared = self
                .modules
                .find(decl.kind)
                .map(|kind| kind.queues.outgoing)
                .unwrap_or_default();
            if let Some(context) = contexts.get_mut(&decl.name) {
                for queue in declared.iter().chain(RESERVED_QUEUES.iter()) {
                    context.outgoing(queue);
                }
            }
        }
        contexts
    }
}

/// How long modules get to return once aborted.
const ABORT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits for every module, turning stop requests into the stop and abort
/// signals, and stopping the server when a module fails.
async fn supervise(
    mut running: FuturesUnordered<impl Future<Output = (String, Result<(), ModuleError>)>>,
    stop_requests: impl Stream<Item = ()>,
    stop: &CancellationToken,
    abort: &CancellationToken,
    options: &RuntimeOptions,
) -> Vec<(String, ModuleError)> {
    let mut stop_requests = pin!(stop_requests.fuse());
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
    while !running.is_empty() {
        if abort.is_cancelled()
            && abort_grace.deadline() > tokio::time::Instant::now() + ABORT_GRACE
        {
            abort_grace
                .as_mut()
                .reset(tokio::time::Instant::now() + ABORT_GRACE);
        }
        tokio::select! {
            () = &mut abort_grace, if abort.is_cancelled() => {
                tracing::error!(modules = running.len(), grace = ?ABORT_GRACE, "modules did not finish after the abort; giving up on them");
                failures.push(("server".to_string(), ModuleError::Other(format!("{} modules did not finish after the abort", running.len()))));
                break;
            }
            Some((name, outcome)) = running.next() => match outcome {
                Ok(()) => tracing::debug!(module = %name, "module finished"),
                Err(error) => {
                    tracing::error!(module = %name, %error, "module failed");
                    failures.push((name, error));
                    begin_stop("a module failed", &mut drain_deadline);
                }
            },
            Some(()) = stop_requests.next() => {
                if stop.is_cancelled() {
                    tracing::warn!("second stop request: aborting the drain");
                    abort.cancel();
                } else {
                    begin_stop("stop requested", &mut drain_deadline);
                }
            }
            () = &mut drain_deadline, if stop.is_cancelled() && !abort.is_cancelled() => {
                tracing::warn!(drain_timeout = ?options.drain_timeout, "queues did not drain in time: aborting");
                abort.cancel();
            }
        }
    }
    failures
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
        if totals.in_total + totals.dropped_total > 0 {
            tracing::info!(
                queue = %format_args!("{}.{}", entry.module, entry.queue),
                in_total = totals.in_total,
                out_total = totals.out_total,
                dropped_total = totals.dropped_total,
                size = totals.size,
                "queue totals"
            );
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP, as a stream of stop requests. SIGHUP stops
/// the way SIGTERM does: a closed terminal must not lose what is in memory,
/// and there is no reload for it to mean.
fn stop_signals() -> impl Stream<Item = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
    ];
    let streams = kinds
        .into_iter()
        .filter_map(|(kind, name)| match signal(kind) {
            Ok(mut signal) => Some(
                futures::stream::poll_fn(move |cx| signal.poll_recv(cx))
                    .map(move |()| tracing::info!(signal = name, "signal received"))
                    .boxed_local(),
            ),
            Err(error) => {
                tracing::warn!(%error, signal = name, "cannot listen for a stop signal");
                None
            }
        });
    futures::stream::select_all(streams)
}
