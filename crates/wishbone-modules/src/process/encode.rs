//! `wishbone.process.encode`: JSON objects as RFC 5424 syslog messages.
//! The text `wishbone show --docs` prints is [`DOCS`].

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

use super::convert::{Converted, Queues, convert_all};
use wishbone_codecs::syslog::encode::from_json;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.process.encode: writes JSON objects as RFC 5424 syslog messages.

Queues
  inbox      JSON objects with the fields wishbone.process.decode gives
             (facility, severity, timestamp, hostname, appname, procid,
             msgid, structured_data, message); a missing or null field is
             `-` (facility and severity: user.notice, 1 and 5)
  outbox     `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`
  failed     events that are not such objects, or hold what RFC 5424 cannot
             carry (a header field with a space, a facility past 23, a
             timestamp that is not RFC 3339), as {"error": "<reason>",
             "event": "<the event as text>"}, counted in
             module.<name>.failed; with no route from it they are dropped
             and settled

Arguments (default)
  format     syslog (required)

Example: forward to rsyslog's imtcp, octet-counted
  modules:
    input: {module: wishbone.input.tcp, arguments: {port: 19283}}
    syslog: {module: wishbone.process.encode, arguments: {format: syslog}}
    rsyslog: {module: wishbone.output.tcp, arguments: {port: 514, framing: octet_counted}}
  routingtable:
    - input.outbox -> syslog.inbox
    - syslog.outbox -> rsyslog.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.process.encode",
    aliases: &[],
    description: "writes JSON objects as RFC 5424 syslog messages",
    docs: DOCS,
    queues: QueueSpec::PROCESS,
    build,
};

/// The arguments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What to write.
    pub format: EncodeFormat,
}

/// The formats written.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EncodeFormat {
    /// RFC 5424.
    Syslog,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let _: Config = arguments.deserialize()?;
    Ok(Box::new(Encode))
}

/// The module.
pub struct Encode;

impl Module for Encode {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let queues = Queues::of(&mut context);
        Box::pin(convert_all(queues, 1, |data| {
            from_json(data).map(Converted::New)
        }))
    }
}
