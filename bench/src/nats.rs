//! NATS JetStream: wishbone's output and input against a plain `async-nats`
//! client doing the same work with the same bound on what is in flight,
//! each on a fresh one-node nats-server (`sync_interval: always`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use bytes::Bytes;
use futures::StreamExt;

use crate::process::cpu_seconds;
use crate::proxy::{Proxy, free_port};
use crate::throughput::{Figures, send_file};

/// Messages in flight: the output's `max_pending`, the input's
/// `max_ack_pending`, and the plain client's window.
pub const IN_FLIGHT: usize = 1024;

/// A nats-server with JetStream in a directory of its own.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/nats-venv/bin/nats-server` (what `.ci/run` installs), else the PATH's.
fn binary() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/nats-venv/bin/nats-server");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("nats-server")
    }
}

fn start(dir: &Path) -> anyhow::Result<Server> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let port = free_port()?;
    let config = dir.join("nats.conf");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\", sync_interval: always }}\n",
            dir.join("js").display()
        ),
    )?;
    let child = Command::new(binary())
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| anyhow::anyhow!("cannot run nats-server (see .ci/run): {error}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(10));
    }
    let server = Server {
        child,
        url: format!("nats://127.0.0.1:{port}"),
    };
    block_on(async {
        let context = jetstream::new(async_nats::connect(&server.url).await?);
        context
            .create_stream(jetstream::stream::Config {
                name: "EVENTS".into(),
                subjects: vec!["events.>".into()],
                ..Default::default()
            })
            .await?;
        anyhow::Ok(())
    })?;
    Ok(server)
}

fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(work)
}

/// The lines of `data`, without their newlines.
pub fn payloads(data: &Path) -> anyhow::Result<Vec<Bytes>> {
    let data = std::fs::read(data)?;
    Ok(data
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(Bytes::copy_from_slice)
        .collect())
}

/// Publishes with a window of [`IN_FLIGHT`] PubAcks awaited in order.
async fn publish_all(url: &str, payloads: &[Bytes]) -> anyhow::Result<()> {
    let context = jetstream::ContextBuilder::new()
        .max_ack_inflight(IN_FLIGHT * 2)
        .build(async_nats::connect(url).await?);
    let mut pending = futures::stream::FuturesOrdered::new();
    for payload in payloads {
        if pending.len() >= IN_FLIGHT
            && let Some(acknowledged) = pending.next().await
        {
            let _: jetstream::publish::PublishAck = acknowledged?;
        }
        let future = context.publish("events.in", payload.clone()).await?;
        pending.push_back(future.into_future());
    }
    while let Some(acknowledged) = pending.next().await {
        acknowledged?;
    }
    Ok(())
}

async fn stream_count(url: &str) -> anyhow::Result<u64> {
    let context = jetstream::new(async_nats::connect(url).await?);
    let mut stream = context.get_stream("EVENTS").await?;
    Ok(stream.info().await?.state.messages)
}

/// Messages the durable consumer `bench` has had acknowledged.
async fn acknowledged(url: &str) -> anyhow::Result<u64> {
    let context = jetstream::new(async_nats::connect(url).await?);
    let stream = context.get_stream("EVENTS").await?;
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .get_consumer("bench")
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(consumer.info().await?.ack_floor.stream_sequence)
}

fn figures(name: &str, count: usize, wall: f64, cpu: f64) -> Figures {
    Figures {
        name: name.to_string(),
        ok: true,
        problem: None,
        lines_per_second: count as f64 / wall,
        megabytes_per_second: 0.0,
        wall_seconds: wall,
        cpu_seconds: cpu,
        peak_rss_mib: 0.0,
    }
}

/// Waits until `done` says the count reached `count`, or fails after a
/// minute without progress.
fn wait_for(count: u64, mut done: impl FnMut() -> anyhow::Result<u64>) -> anyhow::Result<()> {
    let mut last = (Instant::now(), 0);
    loop {
        let now = done()?;
        if now >= count {
            return Ok(());
        }
        if now != last.1 {
            last = (Instant::now(), now);
        }
        anyhow::ensure!(
            last.0.elapsed() < Duration::from_secs(60),
            "stalled at {now} of {count}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// wishbone: tcp input → `wishbone.output.nats`.
pub fn publish_wishbone(
    wishbone: &Path,
    scratch: &Path,
    data: &Path,
    count: usize,
) -> anyhow::Result<Figures> {
    let server = start(&scratch.join("nats-publish"))?;
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.nats, arguments: {{servers: [\"{}\"], subject: events.in, max_pending: {IN_FLIGHT}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        server.url
    );
    let proxy = Proxy::wishbone(wishbone, scratch, &bootstrap, &[])?;
    let begun = Instant::now();
    let (data, port) = (data.to_path_buf(), proxy.input_port);
    let sender = std::thread::spawn(move || send_file(&data, port));
    wait_for(count as u64, || block_on(stream_count(&server.url)))?;
    let wall = begun.elapsed().as_secs_f64();
    let cpu = cpu_seconds(proxy.pid());
    proxy.stop();
    let _ = sender.join();
    Ok(figures("nats publish, wishbone", count, wall, cpu))
}

/// A plain `async-nats` publisher in this process.
pub fn publish_plain(scratch: &Path, payloads: &[Bytes]) -> anyhow::Result<Figures> {
    let server = start(&scratch.join("nats-publish"))?;
    let begun = Instant::now();
    block_on(publish_all(&server.url, payloads))?;
    let wall = begun.elapsed().as_secs_f64();
    Ok(figures(
        "nats publish, plain async-nats client",
        payloads.len(),
        wall,
        0.0,
    ))
}

/// wishbone: `wishbone.input.nats` → null output, on a stream holding `payloads`.
pub fn consume_wishbone(
    wishbone: &Path,
    scratch: &Path,
    payloads: &[Bytes],
) -> anyhow::Result<Figures> {
    let server = start(&scratch.join("nats-consume"))?;
    block_on(publish_all(&server.url, payloads))?;
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.nats, arguments: {{servers: [\"{}\"], stream: EVENTS, consumer: bench, max_ack_pending: {IN_FLIGHT}}}}}\n  \
         output: {{module: wishbone.output.null}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        server.url
    );
    let begun = Instant::now();
    let proxy = Proxy::wishbone_without_input(wishbone, scratch, &bootstrap)?;
    wait_for(payloads.len() as u64, || {
        block_on(acknowledged(&server.url)).or(Ok(0))
    })?;
    let wall = begun.elapsed().as_secs_f64();
    let cpu = cpu_seconds(proxy.pid());
    proxy.stop();
    Ok(figures(
        "nats consume, wishbone to null",
        payloads.len(),
        wall,
        cpu,
    ))
}

/// A plain `async-nats` pull consumer in this process, acking each message.
pub fn consume_plain(scratch: &Path, payloads: &[Bytes]) -> anyhow::Result<Figures> {
    let server = start(&scratch.join("nats-consume"))?;
    block_on(publish_all(&server.url, payloads))?;
    let begun = Instant::now();
    block_on(async {
        let context = jetstream::new(async_nats::connect(&server.url).await?);
        let stream = context.get_stream("EVENTS").await?;
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                "bench",
                pull::Config {
                    durable_name: Some("bench".into()),
                    max_ack_pending: IN_FLIGHT as i64,
                    ..Default::default()
                },
            )
            .await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(IN_FLIGHT)
            .messages()
            .await?;
        for _ in 0..payloads.len() {
            let message = messages
                .next()
                .await
                .ok_or_else(|| anyhow::anyhow!("the consumer ended"))?
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            message
                .ack()
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
        }
        anyhow::Ok(())
    })?;
    let wall = begun.elapsed().as_secs_f64();
    Ok(figures(
        "nats consume, plain async-nats client",
        payloads.len(),
        wall,
        0.0,
    ))
}
