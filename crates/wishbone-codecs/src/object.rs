//! A JSON object's top-level fields, in order, each value kept as its JSON
//! text: read once, edited, written once, without building a value for the
//! whole document. A repeated key keeps its first place and its last value
//! (as jq reads it); a field set that is not there goes last.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One field's value as JSON text: as it was in the event, or made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Text<'a> {
    /// Borrowed from the event.
    Raw(&'a str),
    /// Made here (a string written as JSON, a constant).
    Made(String),
}

impl<'a> Text<'a> {
    /// The JSON text.
    pub fn as_str(&self) -> &str {
        match self {
            Text::Raw(text) => text,
            Text::Made(text) => text,
        }
    }

    /// A string value as JSON text.
    pub fn string(value: &str) -> Text<'static> {
        if value.bytes().all(plain) {
            let mut text = String::with_capacity(value.len() + 2);
            text.push('"');
            text.push_str(value);
            text.push('"');
            return Text::Made(text);
        }
        // Writing a string cannot fail.
        Text::Made(serde_json::to_string(value).unwrap_or_default())
    }

    /// As [`Text::to_text`], borrowed from the event itself (not from
    /// this value) where it can be: a value made here is copied.
    pub fn string_value(&self) -> Option<Cow<'a, str>> {
        match self {
            Text::Raw(text) => string_of(text),
            Text::Made(text) => string_of(text).map(|text| Cow::Owned(text.into_owned())),
        }
    }

    /// The value as a string, if it is one: borrowed from the JSON text
    /// when it has no escapes.
    pub fn to_text(&self) -> Option<Cow<'_, str>> {
        string_of(self.as_str())
    }
}

/// The string a JSON text holds, if it is one: borrowed when it has no
/// escapes.
fn string_of(text: &str) -> Option<Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') && !inner.contains('"') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// The fields of one object.
#[derive(Clone, Debug, Default)]
pub struct Object<'a> {
    fields: Vec<(Cow<'a, str>, Text<'a>)>,
    /// A bit for each key set ([`key_bit`]): a key whose bit is clear is
    /// not there, without a search (a removed key leaves its bit set).
    keys: u64,
}

impl PartialEq for Object<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields
    }
}

impl Eq for Object<'_> {}

/// The bit of `key` in [`Object`]'s `keys`: from its length and its
/// first, middle and last bytes.
fn key_bit(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let byte = |index: usize| bytes.get(index).copied().map_or(0, u64::from);
    let mixed = (bytes.len() as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(byte(0).wrapping_mul(0xff51_afd7_ed55_8ccd))
        .wrapping_add(byte(bytes.len() / 2).wrapping_mul(0xc4ce_b9fe_1a85_ec53))
        .wrapping_add(byte(bytes.len().wrapping_sub(1)).wrapping_mul(0x2545_f491_4f6c_dd1d));
    1 << (mixed >> 58)
}

/// An object key, borrowed from the event when it has no escapes.
#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

/// A JSON object read straight into an [`Object`], repeated keys set
/// again.
struct Read<'a>(Object<'a>);

impl<'de> Deserialize<'de> for Read<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Read<'de>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                // Room for the fields a decoder usually adds.
                let mut object = Object {
                    fields: Vec::with_capacity(map.size_hint().unwrap_or(16) + 8),
                    keys: 0,
                };
                while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    object.set(key, Text::Raw(value.get()));
                }
                Ok(Read(object))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

impl<'a> Object<'a> {
    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fields of a JSON object; an error for anything else.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        serde_json::from_str::<Read<'a>>(text)
            .map(|read| read.0)
            .map_err(|error| format!("the event is not a JSON object: {error}"))
    }

    /// The same fields, owning their text.
    pub fn into_owned(self) -> Object<'static> {
        Object {
            fields: self
                .fields
                .into_iter()
                .map(|(key, value)| {
                    let value = match value {
                        Text::Raw(text) => Text::Made(text.to_string()),
                        Text::Made(text) => Text::Made(text),
                    };
                    (Cow::Owned(key.into_owned()), value)
                })
                .collect(),
            keys: self.keys,
        }
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Text<'a>> {
        if self.keys & key_bit(key) == 0 {
            return None;
        }
        self.fields
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    /// The JSON text of `key`'s value as the event holds it (none for a
    /// value made here).
    pub fn raw(&self, key: &str) -> Option<&'a str> {
        match self.get(key)? {
            Text::Raw(text) => Some(text),
            Text::Made(_) => None,
        }
    }

    /// The value of `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Text<'a>> {
        if self.keys & key_bit(key) == 0 {
            return None;
        }
        self.fields
            .iter_mut()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    /// Sets `key` where it is, else last.
    pub fn set(&mut self, key: impl Into<Cow<'a, str>>, value: Text<'a>) {
        let key = key.into();
        match self.get_mut(&key) {
            Some(old) => *old = value,
            None => {
                self.keys |= key_bit(&key);
                self.fields.push((key, value));
            }
        }
    }

    /// Removes the fields named in `keys`.
    pub fn remove(&mut self, keys: &[String]) {
        self.fields
            .retain(|(name, _)| !keys.iter().any(|key| key == name));
    }

    /// Every field of `other`, set here in its order.
    pub fn merge(&mut self, other: Object<'a>) {
        for (key, value) in other.fields {
            self.set(key, value);
        }
    }

    /// The object as compact JSON: values written as they came, without
    /// the whitespace between their tokens.
    pub fn to_bytes(&self) -> Vec<u8> {
        let size: usize = self
            .fields
            .iter()
            .map(|(key, value)| key.len() + value.as_str().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(size + 2);
        out.push(b'{');
        for (index, (key, value)) in self.fields.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            push_key(&mut out, key);
            out.push(b':');
            match value {
                // Made here compact, or a string, which has no space
                // outside its quotes.
                Text::Made(text) => out.extend_from_slice(text.as_bytes()),
                Text::Raw(text) if text.starts_with('"') => out.extend_from_slice(text.as_bytes()),
                Text::Raw(text) => push_compact(&mut out, text),
            }
        }
        out.push(b'}');
        out
    }
}

/// A byte a JSON string holds as it is.
fn plain(byte: u8) -> bool {
    byte >= 0x20 && byte != b'"' && byte != b'\\'
}

/// Appends a key as a JSON string.
fn push_key(out: &mut Vec<u8>, key: &str) {
    if key.bytes().all(plain) {
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, key);
    }
}

/// Appends a JSON text without the whitespace between its tokens.
fn push_compact(out: &mut Vec<u8>, json: &str) {
    if !json
        .bytes()
        .any(|byte| matches!(byte, b' ' | b'\n' | b'\r' | b'\t'))
    {
        out.extend_from_slice(json.as_bytes());
        return;
    }
    let mut in_string = false;
    let mut escaped = false;
    for byte in json.bytes() {
        if in_string {
            out.push(byte);
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
            out.push(byte);
        } else if !byte.is_ascii_whitespace() {
            out.push(byte);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_order_and_text() {
        let mut object = Object::parse(r#"{"b": 1.50, "a": {"x": [1, 2]}, "b": "again"}"#).unwrap();
        assert_eq!(object.len(), 2);
        assert_eq!(object.get("b").unwrap().to_text().as_deref(), Some("again"));
        object.set("c", Text::string("new \"one\""));
        object.remove(&["a".to_string()]);
        assert_eq!(
            String::from_utf8(object.to_bytes()).unwrap(),
            r#"{"b":"again","c":"new \"one\""}"#
        );
        let spaced = Object::parse(r#"{"s": "a b", "n": [1, 2]}"#).unwrap();
        assert_eq!(spaced.to_bytes(), br#"{"s":"a b","n":[1,2]}"#);
    }

    #[test]
    fn keys_are_found_and_replaced_however_many_share_a_bit() {
        let mut object = Object::new();
        for number in 0..200 {
            object.set(format!("k{number}"), Text::Raw("1"));
        }
        for number in (0..200).step_by(3) {
            object.set(format!("k{number}"), Text::Raw("2"));
        }
        assert_eq!(object.len(), 200);
        for number in 0..200 {
            let expected = if number % 3 == 0 { "2" } else { "1" };
            let key = format!("k{number}");
            assert_eq!(object.get(&key).map(Text::as_str), Some(expected), "{key}");
        }
        assert_eq!(object.get("k200"), None);
        assert_eq!(object.get(""), None);
        object.remove(&["k7".to_string()]);
        assert_eq!(object.get("k7"), None, "removed, its bit still set");
        object.set("k7", Text::Raw("3"));
        assert_eq!(object.len(), 200);
        assert!(
            object.to_bytes().ends_with(br#""k7":3}"#),
            "set again: last"
        );
    }

    #[test]
    fn a_string_value_borrows_from_the_event() {
        let event = String::from(r#"{"plain": "a b", "escaped": "a\"b", "n": 1}"#);
        let object = Object::parse(&event).unwrap();
        let plain = object.get("plain").unwrap().string_value().unwrap();
        assert!(matches!(plain, Cow::Borrowed("a b")));
        let escaped = object.get("escaped").unwrap().string_value().unwrap();
        assert_eq!(escaped, "a\"b");
        assert_eq!(object.get("n").unwrap().string_value(), None);
        drop(object);
        // Still usable: it borrows the event, not the object.
        assert_eq!(plain, "a b");
    }

    #[test]
    fn only_objects_are_read() {
        for text in ["[1]", "\"x\"", "{", "{\"a\":1} x"] {
            assert!(Object::parse(text).is_err(), "{text}");
        }
        let mut odd = Object::new();
        odd.set("a\"b\n", Text::Raw("1"));
        assert_eq!(odd.to_bytes(), br#"{"a\"b\n":1}"#);
    }
}
