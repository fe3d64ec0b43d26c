//! `wishbone tap`: the events passing on queues of a running server, read
//! from its operator listener's `/api/tap` (records: see
//! `wishbone-graph`'s `admin.rs`) and printed as they come.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::cli::TapOptions;
use crate::{EXIT_FAILED, EXIT_INVALID};

/// One record of the stream.
#[derive(Debug, PartialEq)]
enum Record {
    Event { queue: String, event: Bytes },
    Lost { queue: String, lost: u64 },
}

/// Takes the first whole record off `buffer`, if there is one; an error
/// for a stream that is not records.
fn next_record(buffer: &mut BytesMut) -> Result<Option<Record>, String> {
    let Some(end) = buffer.iter().position(|&byte| byte == b'\n') else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buffer[..end]).map_err(|_| "a record head is not text")?;
    let mut words = head.split(' ');
    let (kind, queue, number) = (words.next(), words.next(), words.next());
    let (Some(kind), Some(queue), Some(number)) = (kind, queue, number) else {
        return Err(format!("not a record: `{head}`"));
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("not a record: `{head}`"))?;
    let queue = queue.to_string();
    match kind {
        "L" => {
            buffer.advance(end + 1);
            Ok(Some(Record::Lost {
                queue,
                lost: number,
            }))
        }
        "E" => {
            let length = usize::try_from(number).map_err(|_| "an event too long")?;
            if buffer.len() < end + 1 + length + 1 {
                return Ok(None);
            }
            buffer.advance(end + 1);
            let event = buffer.split_to(length).freeze();
            buffer.advance(1);
            Ok(Some(Record::Event { queue, event }))
        }
        _ => Err(format!("not a record: `{head}`")),
    }
}

/// Runs the command.
pub fn tap(options: &TapOptions) -> ExitCode {
    if !(options.sample > 0.0 && options.sample <= 1.0) {
        eprintln!("error: --sample must be above 0 and at most 1");
        return ExitCode::from(EXIT_INVALID);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    runtime.block_on(async {
        tokio::select! {
            code = watch(options) => code,
            _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
        }
    })
}

/// What was printed and lost, said at the end.
#[derive(Default)]
struct Tally {
    printed: u64,
    lost: std::collections::BTreeMap<String, u64>,
}

impl Drop for Tally {
    fn drop(&mut self) {
        let lost: Vec<String> = self
            .lost
            .iter()
            .map(|(queue, lost)| format!("{lost} on {queue}"))
            .collect();
        match lost.is_empty() {
            true => eprintln!("tap: {} events", self.printed),
            false => eprintln!(
                "tap: {} events; lost because the tap read slower than the queue: {}",
                self.printed,
                lost.join(", ")
            ),
        }
    }
}

async fn watch(options: &TapOptions) -> ExitCode {
    let mut path = format!("/api/tap?sample={}", options.sample);
    for queue in &options.queues {
        path.push_str(&format!("&queue={queue}"));
    }
    let mut body = match request(options.admin, &path).await {
        Ok(body) => body,
        Err((code, problem)) => {
            eprintln!("error: {problem}");
            return ExitCode::from(code);
        }
    };
    let mut tally = Tally::default();
    let prefixed = options.queues.len() > 1;
    let mut buffer = BytesMut::new();
    let mut out = std::io::stdout().lock();
    loop {
        loop {
            match next_record(&mut buffer) {
                Ok(Some(Record::Event { queue, event })) => {
                    let written = match prefixed {
                        true => write!(out, "{queue}: ").and_then(|()| out.write_all(&event)),
                        false => out.write_all(&event),
                    };
                    if written
                        .and_then(|()| out.write_all(b"\n"))
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        return ExitCode::SUCCESS;
                    }
                    tally.printed += 1;
                    if options.limit.is_some_and(|limit| tally.printed >= limit) {
                        return ExitCode::SUCCESS;
                    }
                }
                Ok(Some(Record::Lost { queue, lost })) => {
                    tally.lost.insert(queue, lost);
                }
                Ok(None) => break,
                Err(problem) => {
                    eprintln!("error: {problem}");
                    return ExitCode::from(EXIT_FAILED);
                }
            }
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buffer.extend_from_slice(&data);
                }
            }
            Some(Err(error)) => {
                eprintln!("error: the server's answer broke off: {error}");
                return ExitCode::from(EXIT_FAILED);
            }
            None => {
                eprintln!("tap: the server closed the tap (it stopped)");
                return ExitCode::SUCCESS;
            }
        }
    }
}

/// GET `path` from the listener; the body of a 200, else the exit status
/// and what to say.
async fn request(admin: SocketAddr, path: &str) -> Result<hyper::body::Incoming, (u8, String)> {
    let failed = |problem: String| (EXIT_FAILED, problem);
    let stream = tokio::net::TcpStream::connect(admin)
        .await
        .map_err(|error| failed(format!("cannot reach the operator listener at {admin}: {error} (is the server running with --admin {admin}?)")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| failed(error.to_string()))?;
    tokio::spawn(connection);
    let request = Request::get(path)
        .header(hyper::header::HOST, admin.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|error| failed(error.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| failed(error.to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response.into_body());
    }
    let text = response
        .into_body()
        .collect()
        .await
        .map(|body| String::from_utf8_lossy(&body.to_bytes()).trim().to_string())
        .unwrap_or_default();
    let code = match status.as_u16() {
        400 | 404 => EXIT_INVALID,
        _ => EXIT_FAILED,
    };
    Err((code, format!("the server answered {status}: {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_whole_however_the_stream_is_cut() {
        let stream = b"E a.b 3\nx\ny\nL a.b 7\nE c.d 0\n\n";
        for cut in 0..stream.len() {
            let mut buffer = BytesMut::from(&stream[..cut]);
            let mut records = Vec::new();
            while let Some(record) = next_record(&mut buffer).unwrap() {
                records.push(record);
            }
            buffer.extend_from_slice(&stream[cut..]);
            while let Some(record) = next_record(&mut buffer).unwrap() {
                records.push(record);
            }
            assert_eq!(
                records,
                [
                    Record::Event {
                        queue: "a.b".into(),
                        event: Bytes::from_static(b"x\ny")
                    },
                    Record::Lost {
                        queue: "a.b".into(),
                        lost: 7
                    },
                    Record::Event {
                        queue: "c.d".into(),
                        event: Bytes::new()
                    },
                ],
                "cut at {cut}"
            );
        }
        assert!(next_record(&mut BytesMut::from(&b"X y\n"[..])).is_err());
    }
}
