//! `wishbone.output.tcp` with `tls`: the same output over a TLS stream.
//!
//! The socket under TLS is counted ([`super::counted::Counted`]), so every
//! ciphertext byte written is known, and the kernel's acknowledgement
//! reports (or `SIOCOUTQ`) give positions in that ciphertext. After the
//! blocks of lines gathered for one write are written and flushed, the
//! ciphertext so far ends at the counted position `W`; each line is
//! recorded as ending at `W` less the plaintext written after it. TLS
//! only adds bytes, so no line is ever taken as acknowledged before every
//! ciphertext byte up to its end is.

use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;
use wishbone_runtime::Parcel;

use super::counted::{Counted, Turn, finish, turn};
use super::shell::{Ended, OutputState, Transport};
use crate::tls::Connector;

/// Events in flight before the inbox is read again.
const MAX_IN_FLIGHT: usize = 65536;

/// Where the output connects, and how it writes, over TLS.
pub(super) struct TlsPeer {
    pub host: String,
    pub port: u16,
    pub delimiter: Bytes,
    pub tls: Connector,
}

impl Transport for TlsPeer {
    type Connection = TlsStream<Counted>;

    fn target(&self) -> String {
        format!("{}:{} (tls)", self.host, self.port)
    }

    async fn connect(&mut self) -> Result<TlsStream<Counted>, String> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|error| error.to_string())?;
        let _ = stream.set_nodelay(true);
        let counted = Counted::new(stream).map_err(|error| error.to_string())?;
        self.tls.connect(counted).await
    }

    async fn pump(
        &mut self,
        stream: TlsStream<Counted>,
        state: &mut OutputState,
        abort: &CancellationToken,
    ) -> Ended {
        let progress = stream.get_ref().0.progress();
        let (mut reader, mut writer) = tokio::io::split(stream);
        let (first, resent) = state.delivery.begin(Instant::now());
        state.resending(resent);
        let mut pending: Vec<Parcel> = Vec::new();
        if !first.is_empty() {
            pending.push(Parcel::Events(first));
        }
        let mut tick = tokio::time::interval(super::ACK_INTERVAL);
        let mut scratch = [0u8; 4096];
        let ended = loop {
            if !pending.is_empty() {
                let blocks: Vec<_> = pending
                    .drain(..)
                    .map(|parcel| parcel.into_wire(&self.delimiter))
                    .collect();
                let written = tokio::time::timeout(state.timeout, async {
                    for (lines, _) in &blocks {
                        writer.write_all(lines.data()).await?;
                    }
                    writer.flush().await
                })
                .await;
                let failure = match written {
                    Ok(Ok(())) => None,
                    Ok(Err(error)) => Some(error.to_string()),
                    Err(_) => Some("the peer stopped reading".to_string()),
                };
                let now = Instant::now();
                let end = match failure {
                    None => progress.written(),
                    // Never acknowledged: the connection's end returns them.
                    Some(_) => u64::MAX,
                };
                let plaintext: usize = blocks.iter().map(|(lines, _)| lines.data().len()).sum();
                state.delivery.skip_to(end.saturating_sub(plaintext as u64));
                for (lines, events) in blocks {
                    state.delivery.record_lines(lines, events, now);
                }
                if let Some(error) = failure {
                    break Ended::Lost(error);
                }
            }
            let read = reader.read(&mut scratch);
            match turn(&progress, state, &mut tick, abort, MAX_IN_FLIGHT, read).await {
                Turn::Drained => {
                    let _ = writer.shutdown().await;
                    break Ended::Drained;
                }
                Turn::Aborted => break Ended::Aborted,
                Turn::Lost(error) => break Ended::Lost(error),
                Turn::Read(Ok(0)) => break Ended::Lost("the peer closed the connection".into()),
                Turn::Read(Err(error)) => break Ended::Lost(error.to_string()),
                Turn::Parcels(parcels) => pending = parcels,
                Turn::Read(Ok(_)) | Turn::Again => {}
            }
        };
        finish(&progress, state, matches!(ended, Ended::Lost(_))).await;
        ended
    }
}
