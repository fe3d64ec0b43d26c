//! `wishbone.output.tcp` with `tls`: the same output over a TLS stream.
//!
//! The socket under TLS counts every ciphertext byte written
//! ([`CountingSocket`]), and the kernel's acknowledgement reports (or
//! `SIOCOUTQ`) give positions in that ciphertext. After the blocks of lines
//! gathered for one write are written and flushed, the ciphertext so far
//! ends at the counted position `W`; each line is recorded as ending at `W`
//! less the plaintext written after it. TLS only adds bytes, so no line is
//! ever taken as acknowledged before every ciphertext byte up to its end
//! is.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use wishbone_output::tcp::{Acknowledgements, CountingSocket};
use wishbone_output::tls::Connector;
use wishbone_output::{Connection, Heard, Sent, Transport, room_below};
use wishbone_runtime::Parcel;

use wishbone_codecs::wire::Wire;

/// Events in flight before the inbox is read again.
const MAX_IN_FLIGHT: usize = 65536;

/// Where the output connects, and how it writes, over TLS.
pub(super) struct TlsTransport {
    pub host: String,
    pub port: u16,
    pub wire: Wire,
    pub tls: Connector,
}

impl Transport for TlsTransport {
    type Connection = TlsConnection;

    fn target(&self) -> String {
        format!("{}:{} (tls)", self.host, self.port)
    }

    async fn connect(&mut self) -> Result<TlsConnection, String> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|error| error.to_string())?;
        let _ = stream.set_nodelay(true);
        let counted = CountingSocket::new(stream).map_err(|error| error.to_string())?;
        let stream = self.tls.connect(counted).await?;
        let progress = stream.get_ref().0.progress();
        let (reader, writer) = tokio::io::split(stream);
        Ok(TlsConnection {
            reader,
            writer,
            acknowledgements: Acknowledgements::new(progress),
            wire: self.wire.clone(),
            scratch: vec![0; 4096],
        })
    }
}

/// One live TLS connection.
pub(super) struct TlsConnection {
    reader: ReadHalf<TlsStream<CountingSocket>>,
    writer: WriteHalf<TlsStream<CountingSocket>>,
    acknowledgements: Acknowledgements,
    wire: Wire,
    scratch: Vec<u8>,
}

impl Connection for TlsConnection {
    /// A bound on what is in flight, not a window: below it, everything
    /// waiting goes out in one write.
    fn room(&self, in_flight: usize) -> usize {
        room_below(in_flight, MAX_IN_FLIGHT)
    }

    /// Writes and flushes the parcels' lines; a peer that stops reading
    /// for `timeout` ends the connection.
    async fn send(&mut self, parcels: Vec<Parcel>, sent: &mut Sent<'_>) -> Result<(), String> {
        let blocks: Vec<_> = parcels
            .into_iter()
            .map(|parcel| self.wire.encode(parcel))
            .collect();
        let writer = &mut self.writer;
        let written = tokio::time::timeout(sent.timeout(), async {
            for block in &blocks {
                writer.write_all(block.data()).await?;
            }
            writer.flush().await
        })
        .await;
        let failure = match written {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some("the peer stopped reading".to_string()),
        };
        if let Some(error) = failure {
            for block in blocks {
                sent.never_acknowledged(block.into_parcel());
            }
            return Err(error);
        }
        let plaintext: usize = blocks.iter().map(|block| block.data().len()).sum();
        let mut start = self
            .acknowledgements
            .written()
            .saturating_sub(plaintext as u64);
        sent.skip_to(start);
        for block in blocks {
            let length = block.data().len() as u64;
            super::tcp::record(block, sent, start);
            start += length;
        }
        Ok(())
    }

    /// The TCP stack's acknowledgements; what the peer sends is read and
    /// dropped.
    async fn heard(&mut self) -> Result<Heard, String> {
        loop {
            tokio::select! {
                biased;
                read = self.reader.read(&mut self.scratch) => match read {
                    Ok(0) => return Err("the peer closed the connection".into()),
                    Ok(_) => {}
                    Err(error) => return Err(error.to_string()),
                },
                acknowledged = self.acknowledgements.next() => {
                    return acknowledged.map(Heard::Acknowledged);
                }
            }
        }
    }

    async fn close(&mut self, _timeout: Duration) {
        let _ = self.writer.shutdown().await;
    }

    async fn finish(&mut self, lost: bool) -> Option<u64> {
        self.acknowledgements.finish(lost).await
    }
}
