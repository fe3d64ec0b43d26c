//! `wishbone.flow.funnel`: merges any number of incoming queues into
//! `outbox`. The text `wishbone show --docs` prints is [`DOCS`].

use futures::StreamExt;
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_runtime::{
    ArgumentError, Arguments, LockRelay, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.flow.funnel: merges many queues into one.

Queues
  <any>      every queue a route connects into it is an inbound queue
  outbox     all their events; each inbound queue's order is kept

While the outbox's destination is down (an output whose peer is down, or
a module that passes that state on), every inbound queue is too: a round
robin in front of the funnel routes around it, and a write-ahead buffer
holds its events instead of sending them where they can only fail.

Arguments: none

Example (failover of the article's scenario III)
  modules:
    input: {module: wishbone.input.tcp, arguments: {port: 19283}}
    roundrobin: {module: wishbone.flow.roundrobin}
    funnel: {module: wishbone.flow.funnel}
    output_1: {module: wishbone.output.tcp, arguments: {port: 10001}}
    output_2: {module: wishbone.output.tcp, arguments: {port: 10002, failed: true}}
  routingtable:
    - input.outbox -> roundrobin.inbox
    - roundrobin.two -> output_2.inbox
    - roundrobin.one -> funnel.one
    - output_2.failed -> funnel.two
    - funnel.outbox -> output_1.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.flow.funnel",
    aliases: &["wishbone.builtin.flow.funnel"],
    description: "merges many queues into one",
    docs: DOCS,
    queues: QueueSpec {
        incoming: &[],
        outgoing: &["outbox"],
        any_incoming: true,
        any_outgoing: false,
    },
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let _: Config = arguments.deserialize()?;
    Ok(Box::new(Funnel))
}

/// The module.
pub struct Funnel;

impl Module for Funnel {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let outbox = context.outgoing("outbox");
        let inbound = context.take_all_incoming();
        // While the outbox's destination is down, so are the inboxes: a
        // round robin feeding one routes around it.
        let mut relay = LockRelay::new(
            inbound
                .iter()
                .map(|(_, receiver)| receiver.locker())
                .collect(),
            [&outbox],
        );
        let inbound = inbound.into_iter().map(|(_, mut receiver)| {
            futures::stream::poll_fn(move |cx| receiver.poll_recv_parcel(cx)).boxed_local()
        });
        let mut merged = futures::stream::select_all(inbound);
        Box::pin(async move {
            loop {
                let batch = tokio::select! {
                    batch = merged.next() => batch,
                    () = relay.follow() => continue,
                };
                let Some(batch) = batch else { break };
                if let Err(closed) = outbox.send(batch).await {
                    return Err(ModuleError::DownstreamGone {
                        queue: "outbox".into(),
                        undelivered: closed.0.len(),
                    });
                }
            }
            Ok(())
        })
    }
}
