//! `wishbone.metrics.prometheus`: what the server records (queue
//! statistics, module counters), served over HTTP in the Prometheus text
//! format for a Prometheus to scrape. In a crate of its own because it
//! brings an HTTP server.
//!
//! The page is rendered at each scrape from the one `metrics` recorder the
//! server installs, the same one `wishbone.metrics.graphite` reads, so both
//! report the same totals ([`render`]). `metrics-exporter-prometheus` is not
//! used: it would be a second recorder beside that one (through a fanout),
//! keeping every value twice and naming them by the recorder's dotted
//! paths, which would still need turning into labels here.

mod render;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_runtime::{
    ArgumentError, Arguments, ListenAddress, Module, ModuleContext, ModuleError, ModuleKind,
    QueueSpec, RecordedMetrics,
};

pub use render::render;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.metrics.prometheus: queue statistics and module counters for Prometheus to scrape.

Queues
  none

Arguments (default)
  address   interface to listen on, an IP address or host name ("127.0.0.1")
  port      port to listen on (9288); 0 picks a free port, logged at start
  path      where the page is served ("/metrics")

GET on `path` answers the Prometheus text format (0.0.4): every family with
# HELP and # TYPE, identities in labels, counters ending in _total:
  wishbone_queue_in_total{module,queue}       events put on a queue
  wishbone_queue_out_total{module,queue}      events taken off it
  wishbone_queue_dropped_total{module,queue}  events dropped
  wishbone_queue_size{module,queue}           events waiting (gauge)
  wishbone_module_<counter>_total{module}     a module's counter, such as
                                              delivered, resent, failed_over
  wishbone_module_<gauge>{module}             a module's gauge, such as
                                              connected, disk_bytes
Under `start --instances N`, instance k (from 0) serves port + k: scrape
all N (`sum()` over them gives the server's totals). Rates are left to PromQL (`rate(wishbone_queue_in_total[1m])`). Queue
figures are as of the last --frequency report (1 s by default). Another
method answers 405, another path 404. At most 64 connections are held, and
one that sends no whole request within 3 s is closed.

Example
  modules:
    prometheus:
      module: wishbone.metrics.prometheus
      arguments: {port: 9288}
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.metrics.prometheus",
    aliases: &[],
    description: "queue statistics and module counters for Prometheus to scrape",
    docs: DOCS,
    queues: QueueSpec {
        incoming: &[],
        outgoing: &[],
        any_incoming: false,
        any_outgoing: false,
    },
    build,
};

/// The kinds this crate adds, for the one list of builtin modules.
pub const KINDS: [ModuleKind; 1] = [KIND];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Interface to listen on.
    #[serde(default = "default_address")]
    pub address: String,
    /// Port to listen on; 0 lets the system pick one.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Where the page is served.
    #[serde(default = "default_path")]
    pub path: String,
}

fn default_address() -> String {
    "127.0.0.1".to_string()
}

/// The default port, documented in [`DOCS`].
fn default_port() -> u16 {
    9288
}

fn default_path() -> String {
    "/metrics".to_string()
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    if !config.path.starts_with('/') || config.path.contains(char::is_whitespace) {
        return Err(ArgumentError::field(
            "path",
            "must start with `/` and hold no spaces",
        ));
    }
    if config.address.is_empty() {
        return Err(ArgumentError::field("address", "must name an interface"));
    }
    Ok(Box::new(Prometheus { config }))
}

/// The module.
pub struct Prometheus {
    config: Config,
}

impl Module for Prometheus {
    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let name = context.name().to_string();
        let stop = context.stopping();
        let metrics = context.options().metrics.clone();
        // Under `start --instances N`, instance k serves port + k.
        let instance = context.options().instance;
        let port = match self.config.port {
            0 => Some(0),
            port => u16::try_from(instance)
                .ok()
                .and_then(|instance| port.checked_add(instance)),
        };
        let wanted = ListenAddress {
            host: self.config.address.clone(),
            port: port.unwrap_or(0),
            reuse_port: false,
        };
        let listener = match port {
            Some(_) => context.listener(&wanted),
            None => Err(std::io::Error::other(format!(
                "instance {instance} of port {} is past 65535",
                self.config.port
            ))),
        };
        let path = self.config.path;
        Box::pin(async move {
            let listener = listener
                .map_err(|error| ModuleError::io(format!("cannot listen on {wanted}"), error))?;
            let address = listener
                .local_addr()
                .map_err(|error| ModuleError::io("cannot read the listening address", error))?;
            let Some(metrics) = metrics else {
                tracing::warn!(module = %name, "no metrics recorder is installed: nothing to serve");
                return Ok(());
            };
            tracing::info!(module = %name, %address, url = %format_args!("http://{address}{path}"), "serving metrics for Prometheus");
            let router = Router::new().route(&path, get(page)).with_state(metrics);
            let listener =
                wishbone_graph::BoundedListener::new(listener, wishbone_graph::MAX_CONNECTIONS);
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .map_err(|error| ModuleError::io("cannot serve the metrics page", error))
        })
    }
}

/// The page, rendered now.
async fn page(State(metrics): State<Arc<dyn RecordedMetrics>>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        render(&metrics.values()),
    )
}
