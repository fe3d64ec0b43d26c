//! `wishbone.process.decode`: JSON objects pass, syslog messages become
//! JSON objects; what does not decode goes to `failed` with the reason.
//! The text `wishbone show --docs` prints is [`DOCS`].

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::IgnoredAny;
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

use super::convert::{Converted, Queues, convert_all};
use wishbone_codecs::syslog::decode::to_json;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.process.decode: parses events as JSON objects or syslog messages.

Queues
  inbox      events to decode
  outbox     JSON objects: with json, the events as they came; with text,
             {"message": TEXT}; with syslog,
             {"facility": N, "severity": N, "facility_name": "local3",
              "severity_name": "warning" (rsyslog's names; null without
              a PRI), "timestamp": RFC3339 | null,
              "hostname", "appname", "procid", "msgid": TEXT | null (for -),
              "structured_data": {SD-ID: {NAME: VALUE}}, "message": TEXT}
  failed     events that do not decode, as
             {"error": "<reason>", "event": "<the event as text>"}, counted
             in module.<name>.failed; with no route from it they are dropped
             and settled (a write-ahead buffer does not send them again)

Arguments (default)
  format     json | syslog | text (required). syslog takes RFC 5424 and
             RFC 3164, told apart per message (parsed by syslog_loose); an
             RFC 3164 timestamp, which has no year, takes the year that
             puts it nearest to the time it is decoded, in the local time
             zone. text makes each event {"message": "<the event>"} (bytes
             that are not UTF-8 replaced by U+FFFD), for plain lines that
             go on as JSON.

Example
  modules:
    input: {module: wishbone.input.tcp, arguments: {port: 5140, framing: auto}}
    syslog: {module: wishbone.process.decode, arguments: {format: syslog}}
    errors: {module: wishbone.flow.filter, arguments: {condition: '.severity <= 3'}}
    output: {module: wishbone.output.tcp, arguments: {port: 10001}}
  routingtable:
    - input.outbox -> syslog.inbox
    - syslog.outbox -> errors.inbox
    - errors.outbox -> output.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.process.decode",
    aliases: &[],
    description: "parses events as JSON objects or syslog messages",
    docs: DOCS,
    queues: QueueSpec::PROCESS,
    build,
};

/// The arguments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What the events are.
    pub format: Format,
}

/// The formats decoded.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// JSON objects, passed on as they are.
    Json,
    /// RFC 5424 or RFC 3164 messages, made JSON objects.
    Syslog,
    /// Plain lines, each made `{"message": line}`.
    Text,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    Ok(Box::new(Decode {
        format: config.format,
    }))
}

/// The module.
pub struct Decode {
    format: Format,
}

/// Whether `data` is one JSON object: checked whole, nothing built.
fn json_object(data: &[u8]) -> Result<Converted, String> {
    let first = data.iter().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err("the event is not a JSON object".into());
    }
    // JSON is UTF-8; serde_json does not check the strings it skips.
    let text = std::str::from_utf8(data)
        .map_err(|error| format!("the event is not JSON: not UTF-8 ({error})"))?;
    serde_json::from_str::<IgnoredAny>(text)
        .map(|_| Converted::Same)
        .map_err(|error| format!("the event is not JSON: {error}"))
}

/// A plain line as `{"message": line}`.
fn wrapped(data: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(b"{\"message\":");
    // Writing a string to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &text);
    out.push(b'}');
    out
}

impl Module for Decode {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let queues = Queues::of(&mut context);
        match self.format {
            Format::Json => Box::pin(convert_all(queues, json_object)),
            Format::Syslog => Box::pin(convert_all(queues, |data| {
                to_json(data, chrono::Local::now).map(Converted::New)
            })),
            Format::Text => Box::pin(convert_all(queues, |data| {
                Ok(Converted::New(wrapped(data)))
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_becomes_a_message_field() {
        assert_eq!(
            wrapped(b"plain \"quoted\" line"),
            br#"{"message":"plain \"quoted\" line"}"#
        );
        assert_eq!(
            wrapped(b"bad \xff byte"),
            "{\"message\":\"bad \u{fffd} byte\"}".as_bytes()
        );
        assert_eq!(wrapped(b""), br#"{"message":""}"#);
    }

    #[test]
    fn only_whole_json_objects_pass() {
        assert!(json_object(br#" {"a": [1, {"b": null}]} "#).is_ok());
        for bad in [
            &b"[1]"[..],
            b"\"text\"",
            b"{\"a\":",
            b"{} {}",
            b"",
            b"\xff{}",
            b"{\"a\":1}x",
            b"{\"a\":\"\xff\"}",
            b"{\"id\":0001}",
        ] {
            assert!(json_object(bad).is_err(), "{bad:?}");
        }
    }
}
