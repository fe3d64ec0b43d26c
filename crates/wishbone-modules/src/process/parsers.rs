//! What `wishbone.process.decode` reads text as: each format a parser of a
//! whole event, and of one string (a field's value) into an object.

use serde::de::IgnoredAny;
use wishbone_codecs::csv::Columns;
use wishbone_codecs::object::{Object, Text};
use wishbone_codecs::syslog::decode::to_json;

use super::convert::Converted;

/// One format, ready to read.
#[derive(Debug)]
pub(crate) enum Parser {
    /// JSON objects, passed on as they are.
    Json,
    /// RFC 5424 or RFC 3164 messages.
    Syslog,
    /// Plain lines, each `{"message": line}`.
    Text,
    /// `key=value` pairs.
    Logfmt,
    /// A regular expression's named groups, by their index.
    Regex {
        pattern: regex::Regex,
        names: Vec<(usize, String)>,
    },
    /// A CSV record, its fields named by columns.
    Csv(Columns),
}

impl Parser {
    /// A parser of a regular expression, which must name a group.
    pub(crate) fn regex(pattern: &str) -> Result<Parser, String> {
        let pattern = regex::Regex::new(pattern).map_err(|error| error.to_string())?;
        let names: Vec<(usize, String)> = pattern
            .capture_names()
            .enumerate()
            .filter_map(|(index, name)| Some((index, name?.to_string())))
            .collect();
        if names.is_empty() {
            return Err("names no group: write (?P<name>...) for each field".into());
        }
        Ok(Parser::Regex { pattern, names })
    }

    /// A whole event, as the event to send on.
    pub(crate) fn event(&self, data: &[u8]) -> Result<Converted, String> {
        match self {
            Parser::Json => json_object(data),
            Parser::Syslog => to_json(data, chrono::Local::now).map(Converted::New),
            Parser::Text => Ok(Converted::New(wrapped(data))),
            other => {
                let text = std::str::from_utf8(data)
                    .map_err(|error| format!("the event is not UTF-8: {error}"))?;
                Ok(Converted::New(other.object(text)?.to_bytes()))
            }
        }
    }

    /// One string, as the fields it holds (named as the parser names them).
    pub(crate) fn object<'a>(&'a self, text: &'a str) -> Result<Object<'a>, String> {
        match self {
            Parser::Json => Object::parse(text),
            Parser::Syslog => {
                let json = to_json(text.as_bytes(), chrono::Local::now)?;
                let json = String::from_utf8(json).map_err(|error| error.to_string())?;
                Ok(Object::parse(&json)?.into_owned())
            }
            Parser::Text => {
                let mut object = Object::new();
                object.set("message", Text::string(text));
                Ok(object)
            }
            Parser::Logfmt => wishbone_codecs::logfmt::decode(text),
            Parser::Regex { pattern, names } => {
                let captures = pattern
                    .captures(text)
                    .ok_or_else(|| "the pattern does not match".to_string())?;
                let mut object = Object::new();
                for (index, name) in names {
                    if let Some(found) = captures.get(*index) {
                        object.set(name.as_str(), Text::string(found.as_str()));
                    }
                }
                Ok(object)
            }
            Parser::Csv(columns) => columns.decode(text),
        }
    }
}

/// Whether `data` is one JSON object: checked whole, nothing built.
pub(crate) fn json_object(data: &[u8]) -> Result<Converted, String> {
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
pub(crate) fn wrapped(data: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(b"{\"message\":");
    // Writing a string to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &text);
    out.push(b'}');
    out
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

    #[test]
    fn named_groups_become_fields_and_no_match_is_an_error() {
        let parser = Parser::regex(r"^(?P<method>\w+) (?P<path>\S+)(?: (?P<code>\d+))?$").unwrap();
        let object = parser.object("GET /index.html").unwrap();
        assert_eq!(
            object.to_bytes(),
            br#"{"method":"GET","path":"/index.html"}"#
        );
        assert_eq!(
            parser.object("nothing").unwrap_err(),
            "the pattern does not match"
        );
        assert!(
            Parser::regex(r"\d+")
                .unwrap_err()
                .contains("names no group")
        );
        assert!(Parser::regex(r"(").is_err());
    }
}
