//! The HTTP side: the page's three files, `/api/pipeline` and
//! `/api/stream` (server-sent events, one pipeline a second), and the
//! operator's routes (`/health`, `/ready`, `/api/tap`: `admin.rs`).
//! Read-only: every route answers GET only, and the number of open
//! streams and taps is bounded.

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
    /// Pages and taps served at once.
    pub viewers: Arc<Semaphore>,
    pub admin: crate::admin::Admin,
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
        .route("/api/tap", get(crate::admin::tap))
        .route("/health", get(crate::admin::health))
        .route("/ready", get(crate::admin::ready))
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::{Method, Request};
    use tower::ServiceExt;

    fn shared(viewers: usize) -> (watch::Sender<Arc<str>>, Shared) {
        let (publish, latest) = watch::channel(Arc::from("{\"modules\":[]}"));
        let shared = Shared {
            latest,
            viewers: Arc::new(Semaphore::new(viewers)),
            admin: crate::admin::Admin {
                queues: wishbone_runtime::QueueTable::default(),
                readiness: wishbone_runtime::Readiness::default(),
            },
        };
        (publish, shared)
    }

    async fn ask(shared: &Shared, method: Method, path: &str) -> Response {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        router(shared.clone()).oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn the_api_gives_the_latest_pipeline() {
        let (publish, shared) = shared(1);
        publish.send_replace(Arc::from("{\"modules\":[1]}"));
        let answer = ask(&shared, Method::GET, "/api/pipeline").await;
        assert_eq!(answer.status(), StatusCode::OK);
        let body = to_bytes(answer.into_body(), 1 << 20).await.unwrap();
        assert_eq!(&body[..], b"{\"modules\":[1]}");
    }

    #[tokio::test]
    async fn the_page_is_read_only_and_loads_nothing_from_elsewhere() {
        let (_publish, shared) = shared(1);
        let page = ask(&shared, Method::GET, "/").await;
        assert_eq!(page.status(), StatusCode::OK);
        let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(policy.starts_with("default-src 'self'"));
        for path in ["/", "/api/pipeline", "/api/stream"] {
            let answer = ask(&shared, Method::POST, path).await;
            assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        }
        for file in [INDEX, SCRIPT, STYLE] {
            assert!(
                !file.contains("https://") && !file.contains("//cdn"),
                "nothing from elsewhere"
            );
        }
    }

    #[tokio::test]
    async fn streams_beyond_the_limit_are_refused_until_one_closes() {
        let (_publish, shared) = shared(1);
        let first = ask(&shared, Method::GET, "/api/stream").await;
        assert_eq!(first.status(), StatusCode::OK);
        let second = ask(&shared, Method::GET, "/api/stream").await;
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(first);
        let third = ask(&shared, Method::GET, "/api/stream").await;
        assert_eq!(
            third.status(),
            StatusCode::OK,
            "a closed page gives its place back"
        );
    }
}
