//! `debug` and `start`: run a server.

use std::net::SocketAddr;

use std::process::ExitCode;
use std::time::Duration;

use std::sync::Arc;

use metrics_exporter_graphite::GraphiteBuilder;
use wishbone_bootstrap::{Bootstrap, QueueRef};
use wishbone_modules::metrics::graphite::RecordedByGraphite;
use wishbone_runtime::{
    InheritedListeners, Loaded, ModuleSet, RecordedMetrics, RuntimeOptions, Server,
};

use crate::carbon::Carbon;
use crate::cli::{RunOptions, StartOptions};
use crate::logging::{self, Format};
use crate::{EXIT_FAILED, EXIT_INVALID, catalog, instances, pidfile};

pub fn debug(options: &RunOptions, modules: &ModuleSet) -> ExitCode {
    if let Err(error) = logging::init(&options.log_level, Format::Text, true) {
        eprintln!("error: {error}");
        return ExitCode::from(EXIT_INVALID);
    }
    serve(options, modules, Format::Text)
}

pub fn start(options: &StartOptions, modules: &ModuleSet) -> ExitCode {
    if let Err(error) = logging::init(&options.run.log_level, options.log_format, false) {
        eprintln!("error: {error}");
        return ExitCode::from(EXIT_INVALID);
    }
    if let Some(path) = &options.pid
        && let Some(pid) = pidfile::running(path)
    {
        tracing::error!(file = %path.display(), pid, "a server of this pid file is running; stop it first");
        return ExitCode::from(EXIT_FAILED);
    }
    if options.instances > 1 && options.run.graph.is_some() {
        eprintln!(
            "error: --graph draws one server, and each of --instances is its own: \
             leave out --graph or run one instance"
        );
        return ExitCode::from(EXIT_INVALID);
    }
    if options.instances > 1 {
        return match catalog::load_as(&options.run.config, modules, options.log_format) {
            Ok(loaded) => instances::launch(options, &loaded),
            Err(code) => code,
        };
    }
    let pid_file = options.pid.as_deref();
    if let Some(path) = pid_file
        && let Err(error) = pidfile::write(path, &[std::process::id()])
    {
        eprintln!("error: cannot write pid file {}: {error}", path.display());
        return ExitCode::from(EXIT_FAILED);
    }
    let code = serve(&options.run, modules, options.log_format);
    pidfile::remove(pid_file);
    code
}

fn serve(options: &RunOptions, modules: &ModuleSet, format: Format) -> ExitCode {
    // A SIGHUP before the server listens for it (while the file is read)
    // would end the process by default; until then it is ignored.
    // SAFETY: setting a signal's disposition to "ignore" touches no Rust state.
    unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
    let loaded = match load(options, modules, format) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let (Some(frequency), Some(drain_timeout)) =
        (seconds(options.frequency), seconds(options.drain_timeout))
    else {
        eprintln!("error: --frequency and --drain-timeout take a number of seconds above 0");
        return ExitCode::from(EXIT_INVALID);
    };
    let listeners = match InheritedListeners::from_environment() {
        Ok(listeners) => listeners,
        Err(error) => {
            tracing::error!(%error, "cannot use the listening sockets of the launcher");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let hostname = hostname::get()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    let runtime_options = RuntimeOptions {
        queue_size: options.queue_size as usize,
        frequency,
        drain_timeout,
        listeners,
        metrics: install_metrics(frequency),
        hostname,
        instance: wishbone_runtime::instance_from_environment(),
        readiness: wishbone_runtime::Readiness::default(),
        threads: options.threads.map_or_else(cores, usize::from),
    };
    // A write past a file size limit (`ulimit -f`) then fails with EFBIG,
    // which the wal handles as a full disk, instead of killing the process.
    // SAFETY: setting a signal's disposition to "ignore" touches no Rust state.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    tracing::info!(config = %options.config.display(), modules = loaded.bootstrap.modules.len(), pid = std::process::id(), "starting");
    let metrics = runtime_options.metrics.clone();
    let readiness = runtime_options.readiness.clone();
    let host = runtime_options.hostname.clone();
    let (topologies, topology) = tokio::sync::watch::channel(topology(&loaded.bootstrap));
    let reloader = {
        let (options, modules) = (options.clone(), modules.clone());
        std::sync::Arc::new(move || load(&options, &modules, format).ok())
    };
    let reloaded = Box::new(move |bootstrap: &Bootstrap| {
        topologies.send_replace(self::topology(bootstrap));
    });
    let server = Server::new(loaded, runtime_options).with_reloads(reloader, reloaded);
    if let Some(address) = options.graph {
        let source = wishbone_graph::Source {
            topology,
            host,
            queues: server.queues(),
            metrics,
            readiness,
        };
        if let Err(error) = serve_graph(address, source) {
            tracing::error!(%address, %error, "cannot serve the graph page");
            return ExitCode::from(EXIT_FAILED);
        }
    }
    match server.run() {
        Ok(_) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "stopped with errors");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The cores this process may run on: the default of `--threads`.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Loads the bootstrap file, with the metrics route `--graphite` adds.
fn load(options: &RunOptions, modules: &ModuleSet, format: Format) -> Result<Loaded, ExitCode> {
    let mut loaded = catalog::load_as(&options.config, modules, format)?;
    if let Some(address) = &options.graphite {
        let carbon = Carbon {
            address,
            prefix: &options.graphite_prefix,
        };
        if let Err(problem) = carbon.add_to(&mut loaded, modules) {
            tracing::error!(config = %options.config.display(), %problem, "cannot use the bootstrap file");
            return Err(ExitCode::from(EXIT_INVALID));
        }
        tracing::info!(%address, "sending metrics to carbon through the modules wishbone_metrics and wishbone_carbon");
    }
    Ok(loaded)
}

/// The modules and routes the graph page draws.
fn topology(bootstrap: &Bootstrap) -> wishbone_graph::Topology {
    let end = |queue: &QueueRef| (queue.module.clone(), queue.queue.clone());
    wishbone_graph::Topology {
        modules: bootstrap
            .modules
            .iter()
            .map(|decl| (decl.name.clone(), decl.kind.to_string()))
            .collect(),
        routes: bootstrap
            .routes
            .iter()
            .map(|route| (end(&route.from), end(&route.to)))
            .collect(),
    }
}

/// Binds the graph page's address now, so that one in use stops the start.
fn serve_graph(address: SocketAddr, source: wishbone_graph::Source) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind(address)?;
    let bound = listener.local_addr()?;
    wishbone_graph::spawn(listener, source)?;
    tracing::info!(address = %bound, url = %format_args!("http://{bound}/"), "graph page (the operator listener: /health, /ready, /api/tap)");
    Ok(())
}

/// Installs the recorder every module's counters go to; `wishbone.metrics.graphite`
/// reads it back (the one way to carbon, which `--graphite` adds).
fn install_metrics(frequency: Duration) -> Option<Arc<dyn RecordedMetrics>> {
    let builder = GraphiteBuilder::new().with_interval(frequency);
    match builder.install() {
        Ok(handle) => Some(Arc::new(RecordedByGraphite(handle))),
        Err(error) => {
            tracing::warn!(%error, "metrics are not recorded");
            None
        }
    }
}

fn seconds(value: f64) -> Option<Duration> {
    (value > 0.0)
        .then(|| Duration::try_from_secs_f64(value).ok())
        .flatten()
}
