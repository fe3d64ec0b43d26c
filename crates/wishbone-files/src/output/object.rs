//! An event's JSON object read only as far as a template needs: the top
//! level's names and raw values borrowed from the event (as
//! `wishbone_codecs::object` reads them), and a value parsed only when a
//! template asks for it. Most of a syslog event (its message, its
//! structured data) is never copied.

use std::borrow::Cow;

use wishbone_codecs::object::{Object as Fields, Text};

/// The top level of a JSON object, its values as the event holds them.
pub struct Object<'a>(Fields<'a>);

/// A value found by a path.
#[derive(Debug, PartialEq)]
pub enum Found<'a> {
    /// Text, unescaped (borrowed when it had no escapes).
    Text(Cow<'a, str>),
    /// A number, a boolean, an object or an array, as JSON.
    Json(&'a str),
    /// Null, or no such field.
    Missing,
}

impl<'a> Object<'a> {
    /// The object in `data`; none when it is not a JSON object.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(data).ok()?;
        Fields::parse(text).ok().map(Object)
    }

    /// The value at `names`, from the top down.
    pub fn lookup(&self, names: &[String]) -> Found<'a> {
        let Some((first, rest)) = names.split_first() else {
            return Found::Missing;
        };
        let Some(mut raw) = self.0.raw(first) else {
            return Found::Missing;
        };
        for name in rest {
            let inner = Object::parse(raw.as_bytes()).and_then(|inner| inner.0.raw(name));
            match inner {
                Some(found) => raw = found,
                None => return Found::Missing,
            }
        }
        match raw.as_bytes().first() {
            Some(b'"') => Text::Raw(raw)
                .string_value()
                .map_or(Found::Missing, Found::Text),
            Some(b'n') => Found::Missing,
            _ => Found::Json(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_by_path_and_read_only_when_asked_for() {
        let data = br#"{"h\u006fst2":1,"host":"web1","n":7,"ok":true,"none":null,"a":{"b c":"d\u00e9","e":[1]},"msg":"x\"y"}"#;
        let object = Object::parse(data).unwrap();
        let path = |names: &[&str]| {
            names
                .iter()
                .map(|name| name.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(object.lookup(&path(&["host"])), Found::Text("web1".into()));
        assert!(matches!(
            object.lookup(&path(&["host"])),
            Found::Text(Cow::Borrowed(_))
        ));
        assert_eq!(object.lookup(&path(&["msg"])), Found::Text("x\"y".into()));
        assert_eq!(object.lookup(&path(&["n"])), Found::Json("7"));
        assert_eq!(object.lookup(&path(&["ok"])), Found::Json("true"));
        assert_eq!(object.lookup(&path(&["none"])), Found::Missing);
        assert_eq!(object.lookup(&path(&["gone"])), Found::Missing);
        assert_eq!(
            object.lookup(&path(&["a", "b c"])),
            Found::Text("dé".into())
        );
        assert_eq!(object.lookup(&path(&["a", "e"])), Found::Json("[1]"));
        assert_eq!(object.lookup(&path(&["host", "x"])), Found::Missing);
        assert!(Object::parse(b"[1,2]").is_none() && Object::parse(b"not json").is_none());
        assert_eq!(
            object.lookup(&path(&["host2"])),
            Found::Json("1"),
            "an escaped name"
        );
        let spaced = Object::parse(br#"{"a": { "b" : [1, 2] }}"#).unwrap();
        assert_eq!(spaced.lookup(&path(&["a", "b"])), Found::Json("[1, 2]"));
    }
}
