//! What the operator listener serves besides the page: `/health`,
//! `/ready`, and `/api/tap`, the events passing on named queues.
//!
//! A tap's answer is a stream of records, so that any event, whatever its
//! bytes, comes through as it is:
//! - `E <module.queue> <length>\n` then the event's bytes and `\n`;
//! - `L <module.queue> <lost>\n`, at most once a second, when the tap lost
//!   copies because its reader was slower than the queue.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::select_all;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use wishbone_runtime::{QueueTable, Readiness, Tap};

use crate::http::Shared;

/// Copies a tap holds for its reader, per queue.
const TAP_CAPACITY: usize = 10_000;

/// What the admin routes read.
#[derive(Clone)]
pub(crate) struct Admin {
    pub queues: QueueTable,
    pub readiness: Readiness,
}

/// 200 while the server runs.
pub(crate) async fn health() -> &'static str {
    "ok\n"
}

/// 200 once every module started and every output connected once; else
/// 503 with the reasons, one a line.
pub(crate) async fn ready(State(shared): State<Shared>) -> Response {
    let reasons = shared.admin.readiness.reasons();
    let (status, text) = match reasons {
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the modules have not started yet\n".to_string(),
        ),
        Some(reasons) if reasons.is_empty() => (StatusCode::OK, "ready\n".to_string()),
        Some(reasons) => (StatusCode::SERVICE_UNAVAILABLE, reasons.join("\n") + "\n"),
    };
    (status, [(header::CACHE_CONTROL, "no-store")], text).into_response()
}

/// What a tap request asks: queues and a sample rate.
#[derive(Debug, PartialEq)]
struct Asked {
    queues: Vec<(String, String)>,
    sample: f64,
}

fn asked(query: Option<&str>) -> Result<Asked, String> {
    let mut asked = Asked {
        queues: Vec::new(),
        sample: 1.0,
    };
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        match pair.split_once('=') {
            Some(("queue", name)) => {
                let (module, queue) = name
                    .split_once('.')
                    .ok_or_else(|| format!("`{name}` is not module.queue"))?;
                asked.queues.push((module.to_string(), queue.to_string()));
            }
            Some(("sample", rate)) => {
                asked.sample = rate
                    .parse::<f64>()
                    .ok()
                    .filter(|rate| *rate > 0.0 && *rate <= 1.0)
                    .ok_or_else(|| format!("sample `{rate}` is not a rate above 0, up to 1"))?;
            }
            _ => return Err(format!("`{pair}` is not queue=module.queue or sample=RATE")),
        }
    }
    if asked.queues.is_empty() {
        return Err("name a queue: ?queue=module.queue".into());
    }
    Ok(asked)
}

/// Taps the named queues until the reader goes away.
pub(crate) async fn tap(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let asked = match asked(query.as_deref()) {
        Ok(asked) => asked,
        Err(problem) => return (StatusCode::BAD_REQUEST, problem + "\n").into_response(),
    };
    let entries = shared.admin.queues.entries();
    let mut taps = Vec::new();
    for (module, queue) in &asked.queues {
        let Some(entry) = entries
            .iter()
            .find(|entry| entry.module == *module && entry.queue == *queue)
        else {
            let known: Vec<String> = entries
                .iter()
                .map(|entry| format!("{}.{}", entry.module, entry.queue))
                .collect();
            return (
                StatusCode::NOT_FOUND,
                format!(
                    "no queue `{module}.{queue}`; the server has: {}\n",
                    known.join(", ")
                ),
            )
                .into_response();
        };
        taps.push((
            format!("{module}.{queue}"),
            Tap::attach(&entry.stats, TAP_CAPACITY, asked.sample),
        ));
    }
    let Ok(permit) = shared.viewers.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many pages and taps at once\n",
        )
            .into_response();
    };
    let (records, body) = mpsc::channel::<Bytes>(64);
    tokio::spawn(relay(taps, records, permit));
    let stream = futures::stream::unfold(body, |mut body| async move {
        let record = body.recv().await?;
        Some((Ok::<_, Infallible>(record), body))
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Passes each tap's copies to the reader as records, and what they lost,
/// until the reader is gone; the taps are then detached.
async fn relay(
    taps: Vec<(String, Tap)>,
    records: mpsc::Sender<Bytes>,
    _permit: OwnedSemaphorePermit,
) {
    let (names, mut taps): (Vec<String>, Vec<Tap>) = taps.into_iter().unzip();
    let mut lost: Vec<(&str, Arc<AtomicU64>, u64)> = names
        .iter()
        .zip(&taps)
        .map(|(name, tap)| (name.as_str(), tap.lost_counter(), 0))
        .collect();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let next = select_all(taps.iter_mut().map(|tap| Box::pin(tap.next())));
        let first = tokio::select! {
            (copy, index, _) = next => match copy {
                Some(copy) => event_record(&names[index], &copy),
                None => return,
            },
            _ = tick.tick() => match lost_records(&mut lost) {
                Some(record) => record.to_vec(),
                None => continue,
            },
            () = records.closed() => return,
        };
        let mut record = first;
        more_records(&names, &mut taps, &mut record);
        let record = Bytes::from(record);
        if records.send(record).await.is_err() {
            return;
        }
    }
}

fn event_record(queue: &str, event: &[u8]) -> Vec<u8> {
    let mut record = format!("E {queue} {}\n", event.len()).into_bytes();
    record.extend_from_slice(event);
    record.push(b'\n');
    record
}

/// Adds the copies already waiting, up to [`CHUNK`] bytes: one write for
/// many events when the queue is busy.
fn more_records(names: &[String], taps: &mut [Tap], records: &mut Vec<u8>) {
    while records.len() < CHUNK {
        let mut any = false;
        for (name, tap) in names.iter().zip(taps.iter_mut()) {
            if let Some(copy) = tap.try_next() {
                records.extend_from_slice(&event_record(name, &copy));
                any = true;
            }
        }
        if !any {
            return;
        }
    }
}

/// About how many bytes of records go out in one piece.
const CHUNK: usize = 64 * 1024;

/// `L` records for the taps (queue, lost count, last reported) that lost
/// more since the last report.
fn lost_records(taps: &mut [(&str, Arc<AtomicU64>, u64)]) -> Option<Bytes> {
    let mut text = String::new();
    for (queue, lost, reported) in taps.iter_mut() {
        let lost = lost.load(Relaxed);
        if lost > *reported {
            *reported = lost;
            text.push_str(&format!("L {queue} {lost}\n"));
        }
    }
    (!text.is_empty()).then(|| text.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tap_asks_for_queues_and_a_sample() {
        assert_eq!(
            asked(Some("queue=input.outbox&queue=f.rejected&sample=0.01")).unwrap(),
            Asked {
                queues: vec![
                    ("input".into(), "outbox".into()),
                    ("f".into(), "rejected".into())
                ],
                sample: 0.01
            }
        );
        for bad in [
            None,
            Some("queue=input"),
            Some("sample=2&queue=a.b"),
            Some("x=1"),
        ] {
            assert!(asked(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn records_carry_any_bytes_and_their_length() {
        assert_eq!(event_record("a.b", b"x\ny"), b"E a.b 3\nx\ny\n");
    }
}
