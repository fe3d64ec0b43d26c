//! A websocket server for tests: appends the text of every frame it receives,
//! one line per frame, to a file. On SIGTERM it closes every connection
//! properly (a close frame, then reading until the client is gone) so
//! nothing a client sent is left unread; SIGKILL is the abrupt way.
//!
//! wishbone-ws-sink [--port P] --out FILE [--cert PEM --key PEM]
//! prints `listening ADDRESS` once ready; with a certificate and key it
//! serves `wss://` (TLS).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

type Out = Arc<Mutex<std::fs::File>>;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut port = 0u16;
    let mut out = None;
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let (Some(flag), Some(value)) = (args.next(), args.next()) {
        match flag.as_str() {
            "--port" => port = value.parse().expect("a port"),
            "--out" => out = Some(value),
            "--cert" => cert = Some(value),
            "--key" => key = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    let out: Out = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out.expect("--out FILE"))
            .expect("open the output file"),
    ));
    let acceptor = cert.zip(key).map(|(cert, key)| acceptor(&cert, &key));
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("listen");
    println!(
        "listening {}",
        listener.local_addr().expect("bound address")
    );
    let _ = std::io::stdout().flush();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    let (stop, stopping) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            accepted = listener.accept() => if let Ok((stream, _)) = accepted {
                let (out, stopping, acceptor) = (out.clone(), stopping.clone(), acceptor.clone());
                connections.spawn(async move {
                    match acceptor {
                        None => serve(stream, out, stopping).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, out, stopping).await;
                            }
                        }
                    }
                });
            },
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

/// A TLS acceptor for a PEM certificate chain and key.
fn acceptor(cert: &str, key: &str) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("the certificate")
        .collect::<Result<_, _>>()
        .expect("PEM certificates");
    let key = PrivateKeyDer::from_pem_file(key).expect("the key");
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a certificate and its key");
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

async fn serve<S>(stream: S, out: Out, mut stopping: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    loop {
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(message)) => record(&out, message),
                _ => return,
            },
            _ = stopping.changed() => break,
        }
    }
    let _ = socket.close(None).await;
    while let Some(Ok(message)) = socket.next().await {
        record(&out, message);
    }
}

fn record(out: &Out, message: Message) {
    let text = match message {
        Message::Text(text) => text.as_bytes().to_vec(),
        Message::Binary(bytes) => bytes.to_vec(),
        _ => return,
    };
    let mut file = out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = file.write_all(&[text.as_slice(), b"\n"].concat());
}
