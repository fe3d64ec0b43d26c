//! The HTTP side: the page's three files, `/api/pipeline` and
//! `/api/stream` (server-sent events, one pipeline a second). Read-only:
//! every route answers GET only, and the number of open streams is bounded.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::stream::{self, Stream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// Streams served at once; one more is refused with 503.
pub const MAX_VIEWERS: usize = 32;

const INDEX: &str = include_str!("../page/index.html");
const SCRIPT: &str = include_str!("../page/graph.js");
const STYLE: &str = include_str!("../page/graph.css");

/// The page may load only what this server serves.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'";

#[derive(Clone)]
pub(crate) struct Shared {
    /// The latest pipeline as JSON.
    pub latest: watch::Receiver<Arc<str>>,
    pub viewers: Arc<Semaphore>,
}

pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { file("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/graph.js",
            get(|| async { file("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/graph.css",
            get(|| async { file("text/css; charset=utf-8", STYLE) }),
        )
        .route("/api/pipeline", get(pipeline))
        .route("/api/stream", get(stream))
        .with_state(shared)
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn pipeline(State(shared): State<Shared>) -> Response {
    let json = shared.latest.borrow().clone();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        json.to_string(),
    )
        .into_response()
}

async fn stream(State(shared): State<Shared>) -> Response {
    let Ok(permit) = shared.viewers.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("at most {MAX_VIEWERS} pages at once\n"),
        )
            .into_response();
    };
    let mut latest = shared.latest.clone();
    latest.mark_changed();
    Sse::new(updates(latest, permit))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Each new pipeline as one event; the permit is held while the page listens.
fn updates(
    latest: watch::Receiver<Arc<str>>,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold((latest, permit), |(mut latest, permit)| async move {
        latest.changed().await.ok()?;
        let json = latest.borrow_and_update().clone();
        Some((Ok(Event::default().data(json.as_ref())), (latest, permit)))
    })
}
