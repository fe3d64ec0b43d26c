//! `wishbone.flow.fanout`: a copy of every event to every connected queue.
//! The text `wishbone show --docs` prints is [`DOCS`].

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_runtime::{
    ArgumentError, Arguments, LockRelay, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.flow.fanout: copies every event to every destination.

Queues
  inbox      events to copy
  <any>      every other queue a route connects gets a copy of each event

Arguments: none

Copies share the payload; no bytes are copied. The slowest destination sets
the pace for all. An event from a write-ahead buffer is delivered once every
copy of it is, and sent again when one copy cannot be (to every
destination: a copy another destination delivered arrives there twice).
While any destination is down (an output whose peer is down, or a module
that passes that state on), the inbox is too: a round robin in front of the
fanout routes around it, and a write-ahead buffer holds its events.

Example
  modules:
    input: {module: wishbone.input.tcp, arguments: {port: 19283}}
    fanout: {module: wishbone.flow.fanout}
    archive: {module: wishbone.output.tcp, arguments: {port: 10001}}
    live: {module: wishbone.output.websocket, arguments: {url: "ws://localhost:8080/"}}
  routingtable:
    - input.outbox -> fanout.inbox
    - fanout.archive -> archive.inbox
    - fanout.live -> live.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.flow.fanout",
    aliases: &["wishbone.builtin.flow.fanout"],
    description: "copies every event to every destination",
    docs: DOCS,
    queues: QueueSpec {
        incoming: &["inbox"],
        outgoing: &[],
        any_incoming: false,
        any_outgoing: true,
    },
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let _: Config = arguments.deserialize()?;
    Ok(Box::new(Fanout))
}

/// The module.
pub struct Fanout;

impl Module for Fanout {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let mut inbox = context.take_incoming("inbox");
        let destinations = context.destinations();
        // Every destination must get a copy: while any is down, so is the
        // inbox.
        let mut relay = LockRelay::new(
            vec![inbox.locker()],
            destinations.iter().map(|(_, sender)| sender),
        );
        Box::pin(async move {
            loop {
                let parcel = tokio::select! {
                    parcel = inbox.recv_parcel() => parcel,
                    () = relay.follow() => continue,
                };
                let Some(parcel) = parcel else { break };
                // Each destination's copy carries a share of every token:
                // the original is delivered once every copy is.
                let copies = parcel.copies(destinations.len());
                for ((name, sender), parcel) in destinations.iter().zip(copies) {
                    if let Err(closed) = sender.send(parcel).await {
                        return Err(ModuleError::DownstreamGone {
                            queue: name.clone(),
                            undelivered: closed.0.len(),
                        });
                    }
                }
            }
            Ok(())
        })
    }
}
