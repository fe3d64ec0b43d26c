//! `wishbone.process.decode`: JSON objects pass; syslog messages, plain
//! lines, logfmt, a regular expression's groups and CSV records become JSON
//! objects, the whole event or one of its fields; what does not decode goes
//! to `failed` with the reason. The text `wishbone show --docs` prints is
//! [`DOCS`].

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_codecs::csv::Columns;
use wishbone_codecs::object::{Object, Text};
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

use super::convert::{Converted, Queues, convert_all};
use super::parsers::Parser;
pub use super::timestamp::TimestampRule;

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.process.decode: parses events (or a field of them) as JSON objects, syslog, logfmt, a regex or CSV.

Queues
  inbox      events to decode
  outbox     JSON objects: with json, the events as they came; with text,
             {"message": TEXT}; with syslog,
             {"facility": N, "severity": N, "facility_name": "local3",
              "severity_name": "warning" (rsyslog's names; null without
              a PRI), "timestamp": RFC3339 | null,
              "hostname", "appname", "procid", "msgid": TEXT | null (for -),
              "structured_data": {SD-ID: {NAME: VALUE}}, "message": TEXT};
             with logfmt, regex and csv, an object of text fields
  failed     events that do not decode, as
             {"error": "<reason>", "event": "<the event as text>"}, counted
             in module.<name>.failed; with no route from it they are dropped
             and settled (a write-ahead buffer does not send them again)

Arguments (default)
  format     json | syslog | text | logfmt | regex | csv (required).
             syslog takes RFC 5424 and RFC 3164, told apart per message
             (parsed by syslog_loose); an RFC 3164 timestamp, which has no
             year, takes the year that puts it nearest to the time it is
             decoded, in the local time zone. text makes each event
             {"message": "<the event>"} (bytes that are not UTF-8 replaced
             by U+FFFD), for plain lines that go on as JSON. logfmt reads
             key=value pairs (quoted values with escapes; a bare key is
             true). regex takes the named groups of `pattern`; csv the
             fields of one record, named by `columns`.
  pattern    with regex (none): a regular expression with named groups,
             (?P<name>...); each group that took part is a text field, and
             an event it does not match goes to failed
  columns    with csv (none): the names of the record's fields, in order;
             a record of another number of fields goes to failed
  field      (none) decode this text field of a JSON object event (such as
             a syslog event's message) and merge what it holds into the
             event, its keys replacing those there; without it the whole
             event is decoded. An event without the field, or whose field
             is not text, goes to failed.
  into       with field (none): put what the field holds under this key
             instead of merging it
  timestamp  (none) {field: NAME, format: STRFTIME}: after decoding, read
             that field with the strftime format (chrono's: %d/%b/%Y:%H:%M:%S
             %z) and write it as RFC 3339; a format without %z reads local
             time. A missing field or another format goes to failed.

Example
  modules:
    input: {module: wishbone.input.tcp, arguments: {port: 5140, framing: auto}}
    syslog: {module: wishbone.process.decode, arguments: {format: syslog}}
    pairs: {module: wishbone.process.decode, arguments: {format: logfmt, field: message}}
    errors: {module: wishbone.flow.filter, arguments: {condition: '.level == "error"'}}
    output: {module: wishbone.output.tcp, arguments: {port: 10001}}
  routingtable:
    - input.outbox -> syslog.inbox
    - syslog.outbox -> pairs.inbox
    - pairs.outbox -> errors.inbox
    - errors.outbox -> output.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.process.decode",
    aliases: &[],
    description: "parses events (or a field of them) as JSON, syslog, logfmt, a regex or CSV",
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
    /// With `regex`: the pattern whose named groups are the fields.
    #[serde(default)]
    pub pattern: Option<String>,
    /// With `csv`: the names of a record's fields.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// A text field of a JSON object to decode, instead of the event.
    #[serde(default)]
    pub field: Option<String>,
    /// With `field`: the key to put what it holds under.
    #[serde(default)]
    pub into: Option<String>,
    /// A field to read as a time and write as RFC 3339.
    #[serde(default)]
    pub timestamp: Option<TimestampRule>,
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
    /// `key=value` pairs.
    Logfmt,
    /// A regular expression's named groups.
    Regex,
    /// A CSV record, its fields named by `columns`.
    Csv,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    let only_with = |name: &str, format: &str| {
        ArgumentError::field(name, format!("is taken with format: {format} only"))
    };
    let parser = match (config.format, &config.pattern, &config.columns) {
        (Format::Regex, Some(pattern), None) => {
            Parser::regex(pattern).map_err(|error| ArgumentError::field("pattern", error))?
        }
        (Format::Regex, None, _) => {
            return Err(ArgumentError::field(
                "pattern",
                "is required with format: regex",
            ));
        }
        (Format::Csv, None, Some(columns)) if !columns.is_empty() => {
            Parser::Csv(Columns::new(columns.clone(), b','))
        }
        (Format::Csv, None, _) => {
            return Err(ArgumentError::field(
                "columns",
                "is required with format: csv, one name at least",
            ));
        }
        (_, Some(_), _) => return Err(only_with("pattern", "regex")),
        (_, _, Some(_)) => return Err(only_with("columns", "csv")),
        (Format::Json, ..) => Parser::Json,
        (Format::Syslog, ..) => Parser::Syslog,
        (Format::Text, ..) => Parser::Text,
        (Format::Logfmt, ..) => Parser::Logfmt,
    };
    if config.field.is_some() && config.format == Format::Text {
        return Err(ArgumentError::field(
            "field",
            "a field is text already: use another format",
        ));
    }
    if config.into.is_some() && config.field.is_none() {
        return Err(ArgumentError::field("into", "is taken with `field` only"));
    }
    Ok(Box::new(Decode {
        parser,
        field: config.field,
        into: config.into,
        timestamp: config.timestamp,
    }))
}

/// The module.
pub struct Decode {
    parser: Parser,
    field: Option<String>,
    into: Option<String>,
    timestamp: Option<TimestampRule>,
}

impl Decode {
    /// One event, decoded.
    fn convert(&self, data: &[u8]) -> Result<Converted, String> {
        if self.field.is_none() && self.timestamp.is_none() {
            return self.parser.event(data);
        }
        let decoded = match self.field {
            Some(_) => None,
            None => match self.parser.event(data)? {
                Converted::Same => None,
                Converted::New(bytes) => Some(bytes),
            },
        };
        let text = std::str::from_utf8(decoded.as_deref().unwrap_or(data))
            .map_err(|error| format!("the event is not UTF-8: {error}"))?;
        // The field's text, which what it holds borrows from, outlives the
        // object it is merged into.
        let value;
        let mut object = Object::parse(text)?;
        if let Some(field) = &self.field {
            value = object
                .get(field)
                .ok_or_else(|| format!("the event has no field `{field}`"))?
                .string_value()
                .ok_or_else(|| format!("the field `{field}` is not text"))?;
            let found = self.parser.object(&value)?;
            match &self.into {
                Some(into) => object.set(
                    into.clone(),
                    Text::Made(String::from_utf8_lossy(&found.to_bytes()).into_owned()),
                ),
                None => object.merge(found),
            }
        }
        if let Some(timestamp) = &self.timestamp {
            timestamp.apply(&mut object)?;
        }
        Ok(Converted::New(object.to_bytes()))
    }
}

impl Module for Decode {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let queues = Queues::of(&mut context);
        let workers = context.options().threads;
        Box::pin(async move { convert_all(queues, workers, |data| self.convert(data)).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(arguments: &str) -> Decode {
        let arguments = Arguments::from_yaml(arguments).unwrap();
        let config: Config = arguments.deserialize().unwrap();
        let _ = build(&arguments).unwrap();
        let parser = match config.format {
            Format::Regex => Parser::regex(config.pattern.as_deref().unwrap()).unwrap(),
            Format::Csv => Parser::Csv(Columns::new(config.columns.unwrap(), b',')),
            Format::Json => Parser::Json,
            Format::Syslog => Parser::Syslog,
            Format::Text => Parser::Text,
            Format::Logfmt => Parser::Logfmt,
        };
        Decode {
            parser,
            field: config.field,
            into: config.into,
            timestamp: config.timestamp,
        }
    }

    fn decoded(decode: &Decode, event: &str) -> Result<String, String> {
        match decode.convert(event.as_bytes())? {
            Converted::Same => Ok(event.to_string()),
            Converted::New(bytes) => Ok(String::from_utf8(bytes).unwrap()),
        }
    }

    #[test]
    fn a_field_is_decoded_and_merged_or_put_under_a_key() {
        let merged = decode("{format: logfmt, field: message}");
        assert_eq!(
            decoded(&merged, r#"{"host":"a","message":"level=error msg=\"disk full\""}"#),
            Ok(r#"{"host":"a","message":"level=error msg=\"disk full\"","level":"error","msg":"disk full"}"#.to_string())
        );
        let under = decode("{format: logfmt, field: message, into: kv}");
        assert_eq!(
            decoded(&under, r#"{"message":"a=1"}"#),
            Ok(r#"{"message":"a=1","kv":{"a":"1"}}"#.to_string())
        );
        assert!(
            decoded(&merged, r#"{"host":"a"}"#)
                .unwrap_err()
                .contains("no field `message`")
        );
        assert!(
            decoded(&merged, r#"{"message":3}"#)
                .unwrap_err()
                .contains("not text")
        );
        assert!(decoded(&merged, "not json").is_err());
    }

    #[test]
    fn whole_events_become_objects_with_a_time_in_rfc_3339() {
        let csv = decode(
            "{format: csv, columns: [time, host, status], timestamp: {field: time, format: '%d/%b/%Y:%H:%M:%S %z'}}",
        );
        assert_eq!(
            decoded(&csv, "07/Dec/2026:10:00:00 +0000,web-1,200"),
            Ok(r#"{"time":"2026-12-07T10:00:00+00:00","host":"web-1","status":"200"}"#.to_string())
        );
        let json = decode("{format: json}");
        assert_eq!(decoded(&json, r#"{"a":1}"#), Ok(r#"{"a":1}"#.to_string()));
        let regex =
            decode(r#"{format: regex, pattern: '^(?P<verb>\w+) (?P<path>\S+)$', field: request}"#);
        assert_eq!(
            decoded(&regex, r#"{"request":"GET /a"}"#),
            Ok(r#"{"request":"GET /a","verb":"GET","path":"/a"}"#.to_string())
        );
    }

    #[test]
    fn arguments_that_do_not_go_together_are_refused() {
        for (arguments, said) in [
            ("{format: regex}", "pattern"),
            ("{format: regex, pattern: '\\d+'}", "names no group"),
            ("{format: csv}", "columns"),
            ("{format: csv, columns: []}", "columns"),
            ("{format: json, pattern: 'x'}", "regex only"),
            ("{format: logfmt, columns: [a]}", "csv only"),
            ("{format: text, field: message}", "field"),
            ("{format: json, into: x}", "into"),
        ] {
            let error = build(&Arguments::from_yaml(arguments).unwrap())
                .err()
                .unwrap();
            assert!(error.to_string().contains(said), "{arguments}: {error}");
        }
    }
}
