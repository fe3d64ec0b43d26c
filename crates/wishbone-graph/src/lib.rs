//! The operator listener of a running server, `wishbone debug|start
//! --admin [ADDR]` (`--graph` is another name for it): the live page,
//! `/health`, `/ready` and taps on queues.
//!
//! Once a second a [`Sampler`] reads every queue's counters from the
//! server's [`QueueTable`] and every module's counters from the metrics
//! recorder, and turns them into a [`Snapshot`]: the modules with their
//! places on the page, their queues with sizes and rates, and the routes.
//! The page (`page/`: HTML, one stylesheet and a script drawing plain SVG,
//! all compiled into the binary) follows it over server-sent events;
//! `/api/pipeline` returns the latest one as JSON.
//!
//! The page runs on a thread of its own with its own small runtime, so a
//! slow browser never touches the event flow: all it shares with the
//! modules are the counters they already keep.

mod admin;
mod http;
mod layout;
mod listener;
mod snapshot;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Semaphore, watch};
use wishbone_runtime::{QueueTable, Readiness, RecordedMetrics};

pub use http::MAX_VIEWERS;
pub use layout::{Position, layout};
pub use listener::{Bounded as BoundedListener, MAX_CONNECTIONS};
pub use snapshot::{
    Direction, ModuleFigures, QueueFigures, RouteFigures, Sampler, Snapshot, Topology,
};

/// How often the figures are read and sent to the pages.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What the page shows, and where it reads the figures.
pub struct Source {
    /// The pipeline's modules and routes, new after each reload.
    pub topology: watch::Receiver<Topology>,
    pub host: String,
    pub queues: QueueTable,
    pub metrics: Option<Arc<dyn RecordedMetrics>>,
    /// What the modules say of their readiness, for `/ready`.
    pub readiness: Readiness,
}

/// Serves the page on `listener` from a thread of its own, for the life of
/// the process. The listener is bound by the caller, so that an address in
/// use is reported before the server starts.
pub fn spawn(listener: std::net::TcpListener, source: Source) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("graph".into())
        .spawn(move || {
            runtime.block_on(async move {
                if let Err(error) = serve(listener, source).await {
                    tracing::error!(%error, "the graph page stopped");
                }
            })
        })?;
    Ok(())
}

async fn serve(listener: std::net::TcpListener, source: Source) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let Source {
        mut topology,
        host,
        queues,
        metrics,
        readiness,
    } = source;
    let admin = admin::Admin {
        queues: queues.clone(),
        readiness,
    };
    let mut sampler = Sampler::new(topology.borrow_and_update().clone(), host.clone());
    // The JSON of the pipeline now, and whether the server has wired its
    // queues yet (the page starts before the modules do). A new topology
    // (a reload) starts the sampler afresh.
    let mut sample = move |sampler: &mut Sampler| -> (Arc<str>, bool) {
        if topology.has_changed().unwrap_or(false) {
            *sampler = Sampler::new(topology.borrow_and_update().clone(), host.clone());
        }
        let entries = queues.entries();
        let values = metrics.as_ref().map(|m| m.values()).unwrap_or_default();
        let pipeline = sampler.sample(&entries, &values, Instant::now(), SystemTime::now());
        let json = serde_json::to_string(&pipeline)
            .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"));
        (json.into(), !entries.is_empty())
    };
    let (first, mut wired) = sample(&mut sampler);
    let (publish, latest) = watch::channel(first);
    tokio::spawn(async move {
        let mut next = tokio::time::Instant::now();
        loop {
            // Until the queues are wired, look again soon; then every
            // INTERVAL, without drifting.
            next = (next + if wired { INTERVAL } else { INTERVAL / 20 })
                .max(tokio::time::Instant::now()); // no burst after a stall
            tokio::time::sleep_until(next).await;
            let (json, now_wired) = sample(&mut sampler);
            wired = now_wired;
            publish.send_replace(json);
        }
    });
    let shared = http::Shared {
        latest,
        viewers: Arc::new(Semaphore::new(MAX_VIEWERS)),
        admin,
    };
    let listener = listener::Bounded::new(listener, MAX_CONNECTIONS);
    axum::serve(listener, http::router(shared)).await
}
