//! The pump and the shell with a transport of memory: no sockets, no actix
//! system. A peer that dies with messages unacknowledged gets them again on
//! the next connection and loses none; a peer that cannot be reached hands
//! everything to `failed`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wishbone_output::{Connection, Heard, Output, Sent, Settings, Transport};
use wishbone_runtime::queue::{self, Receiver};
use wishbone_runtime::{Arguments, Batch, Event, Module, ModuleContext, Parcel, RuntimeOptions};

/// What the peer of memory saw.
#[derive(Default)]
struct Peer {
    /// Every message written, in order, resends included.
    received: Vec<String>,
    connects: usize,
    /// Refuse every connection.
    unreachable: bool,
    /// Refuse the message with this text, and never die.
    refuse: Option<String>,
}

struct MemoryTransport(Arc<Mutex<Peer>>);

impl Transport for MemoryTransport {
    type Connection = MemoryConnection;

    fn target(&self) -> String {
        "memory".into()
    }

    async fn connect(&mut self) -> Result<MemoryConnection, String> {
        let mut peer = self.0.lock().unwrap();
        if peer.unreachable {
            return Err("refused".into());
        }
        peer.connects += 1;
        // The first connection dies once it wrote 23 messages (as many as
        // its window lets it past the 20th), having acknowledged 20.
        let dies = (peer.connects == 1 && peer.refuse.is_none()).then_some((23, 20));
        Ok(MemoryConnection {
            peer: self.0.clone(),
            written: 0,
            acknowledged: 0,
            dies,
            texts: Vec::new(),
            refuse: peer.refuse.clone(),
        })
    }
}

struct MemoryConnection {
    peer: Arc<Mutex<Peer>>,
    written: u64,
    acknowledged: u64,
    /// (after how many written, how many acknowledged by then)
    dies: Option<(u64, u64)>,
    /// The messages written on this connection, the first being number 1.
    texts: Vec<String>,
    refuse: Option<String>,
}

impl Connection for MemoryConnection {
    fn room(&self, in_flight: usize) -> usize {
        3usize.saturating_sub(in_flight)
    }

    async fn send(&mut self, parcels: Vec<Parcel>, sent: &mut Sent<'_>) -> Result<(), String> {
        for parcel in parcels {
            assert!(parcel.len() <= 3, "the window is 3");
            let mut peer = self.peer.lock().unwrap();
            for event in parcel.clone().into_events() {
                let text = String::from_utf8_lossy(event.data()).into_owned();
                peer.received.push(text.clone());
                self.texts.push(text);
            }
            self.written = sent.messages(parcel);
        }
        Ok(())
    }

    async fn heard(&mut self) -> Result<Heard, String> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let refused = self
            .texts
            .iter()
            .position(|text| Some(text) == self.refuse.as_ref());
        if let Some(index) = refused.map(|index| index as u64)
            && index >= self.acknowledged
        {
            // Everything before it first, then the refusal.
            if index > self.acknowledged {
                self.acknowledged = index;
                return Ok(Heard::Acknowledged(index));
            }
            self.acknowledged = index + 1;
            let reason = "too large".to_string();
            return Ok(Heard::Refused {
                message: index + 1,
                reason,
            });
        }
        match self.dies {
            Some((after, acknowledged)) if self.written >= after => {
                self.acknowledged = acknowledged;
                Err("the peer died".into())
            }
            Some((_, acknowledged)) if self.written > acknowledged => {
                self.acknowledged = acknowledged;
                Ok(Heard::Acknowledged(acknowledged))
            }
            _ => {
                self.acknowledged = self.written;
                Ok(Heard::Acknowledged(self.written))
            }
        }
    }

    async fn close(&mut self, _timeout: Duration) {}

    async fn finish(&mut self, _lost: bool) -> Option<u64> {
        Some(self.acknowledged)
    }
}

fn events(count: usize) -> Vec<Batch> {
    (1..=count)
        .map(|n| Event::new(n.to_string()))
        .collect::<Vec<_>>()
        .chunks(10)
        .map(<[Event]>::to_vec)
        .collect()
}

/// What waits in a queue once the output ended.
fn drain(mut receiver: Receiver) -> Vec<String> {
    let mut texts = Vec::new();
    while let Some(batch) = receiver.try_recv() {
        texts.extend(
            batch
                .iter()
                .map(|e| String::from_utf8_lossy(e.data()).into_owned()),
        );
    }
    texts
}

/// Runs the output on `peer` with these arguments over 100 events:
/// (what `success` got, what `failed` got).
async fn run(peer: Arc<Mutex<Peer>>, arguments: &str) -> (Vec<String>, Vec<String>) {
    let (settings, _) = Settings::split(&Arguments::from_yaml(arguments).unwrap()).unwrap();
    let module: Box<dyn Module> = Box::new(Output {
        settings,
        transport: MemoryTransport(peer),
    });
    let mut context = ModuleContext::detached("memory", RuntimeOptions::default());
    let (to_output, inbox) = queue::channel(4);
    let (success, from_success) = queue::channel(1000);
    let (failed, from_failed) = queue::channel(1000);
    context.connect_incoming("inbox", inbox);
    context.connect_outgoing("success", success);
    context.connect_outgoing("failed", failed);
    let local = tokio::task::LocalSet::new();
    let work = local.run_until(async move {
        let running = tokio::task::spawn_local(module.run(context));
        for batch in events(100) {
            to_output.send(batch).await.unwrap();
        }
        drop(to_output);
        running.await.unwrap().unwrap();
        (drain(from_success), drain(from_failed))
    });
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .expect("the output takes every event and ends")
}

#[tokio::test(flavor = "current_thread")]
async fn what_a_dead_connection_did_not_acknowledge_is_sent_again_and_nothing_is_lost() {
    let peer = Arc::new(Mutex::new(Peer::default()));
    let (success, failed) = run(peer.clone(), "{success: true, reconnect_initial: 0.01}").await;
    let expected: Vec<String> = (1..=100).map(|n| n.to_string()).collect();
    assert_eq!(success, expected, "each acknowledged once, in order");
    assert!(failed.is_empty());
    let peer = peer.lock().unwrap();
    assert_eq!(peer.connects, 2);
    let mut received = peer.received.clone();
    assert_eq!(received.len(), 103, "21 to 23 were written twice");
    assert_eq!(received[20..23], received[23..26], "resent first, in order");
    received.sort_by_key(|text| text.parse::<u32>().unwrap());
    received.dedup();
    assert_eq!(received, expected);
}

#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_peer_hands_everything_to_failed() {
    let peer = Arc::new(Mutex::new(Peer {
        unreachable: true,
        ..Peer::default()
    }));
    let (success, failed) = run(peer.clone(), "{success: true, failed: true}").await;
    assert!(success.is_empty());
    let expected: Vec<String> = (1..=100).map(|n| n.to_string()).collect();
    assert_eq!(failed, expected);
    assert!(peer.lock().unwrap().received.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn a_refused_message_goes_to_failed_and_the_rest_is_delivered() {
    let peer = Arc::new(Mutex::new(Peer {
        refuse: Some("42".into()),
        ..Peer::default()
    }));
    let (success, failed) = run(peer.clone(), "{success: true, failed: true}").await;
    let expected: Vec<String> = (1..=100)
        .filter(|n| *n != 42)
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        success, expected,
        "each other one acknowledged once, in order"
    );
    assert_eq!(failed, ["42"]);
    let peer = peer.lock().unwrap();
    assert_eq!(peer.connects, 1, "a refusal does not end the connection");
    assert_eq!(peer.received.len(), 100, "nothing written twice");
}
