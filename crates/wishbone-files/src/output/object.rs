//! An event's JSON object read only as far as a template needs: the top
//! level as a map of names to raw values borrowed from the event, and a
//! value parsed only when a template asks for it. Most of a syslog event
//! (its message, its structured data) is never copied.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::value::RawValue;

/// The top level of a JSON object: names borrowed from the event, or
/// owned when one has an escape in it.
pub enum Object<'a> {
    Borrowed(HashMap<&'a str, &'a RawValue>),
    Owned(HashMap<String, &'a RawValue>),
}

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
        match serde_json::from_str(text) {
            Ok(map) => Some(Object::Borrowed(map)),
            Err(_) => serde_json::from_str(text).ok().map(Object::Owned),
        }
    }

    fn get(&self, name: &str) -> Option<&'a RawValue> {
        match self {
            Object::Borrowed(map) => map.get(name).copied(),
            Object::Owned(map) => map.get(name).copied(),
        }
    }

    /// The value at `names`, from the top down.
    pub fn lookup(&self, names: &[String]) -> Found<'a> {
        let Some((first, rest)) = names.split_first() else {
            return Found::Missing;
        };
        let Some(mut raw) = self.get(first) else {
            return Found::Missing;
        };
        for name in rest {
            let inner = Object::parse(raw.get().as_bytes()).and_then(|inner| inner.get(name));
            match inner {
                Some(found) => raw = found,
                None => return Found::Missing,
            }
        }
        let json: &'a str = raw.get();
        match json.as_bytes().first() {
            Some(b'"') => match serde_json::from_str::<&'a str>(json) {
                Ok(text) => Found::Text(Cow::Borrowed(text)),
                Err(_) => serde_json::from_str::<String>(json)
                    .map_or(Found::Missing, |text| Found::Text(Cow::Owned(text))),
            },
            Some(b'n') => Found::Missing,
            _ => Found::Json(json),
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
        assert!(matches!(object, Object::Owned(_)), "an escaped name");
        let plain = Object::parse(br#"{"host":"web1"}"#).unwrap();
        assert!(matches!(plain, Object::Borrowed(_)));
        assert_eq!(object.lookup(&path(&["host2"])), Found::Json("1"));
    }
}
