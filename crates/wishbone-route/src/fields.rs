//! Reading chosen fields of a JSON document in one pass over its bytes: the
//! document is checked whole (serde_json, which also bounds nesting), the
//! fields asked for are kept, and everything else is skipped unbuilt.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The paths a condition reads, as a tree of keys; each path has a slot.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    root: Node,
    count: usize,
}

#[derive(Debug, Default)]
struct Node {
    slot: Option<usize>,
    children: Vec<(String, Node)>,
}

/// A field's value as far as a condition needs it: arrays and objects only
/// by their type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
    /// The path runs through a value that cannot be indexed by a key.
    Error(String),
}

impl Fields {
    /// The slot of `path`, added if new.
    pub(crate) fn slot(&mut self, path: &[String]) -> usize {
        let mut node = &mut self.root;
        for key in path {
            let index = match node.children.iter().position(|(name, _)| name == key) {
                Some(index) => index,
                None => {
                    node.children.push((key.clone(), Node::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[index].1;
        }
        *node.slot.get_or_insert_with(|| {
            self.count += 1;
            self.count - 1
        })
    }

    /// The value of every path in `document`, by slot.
    pub(crate) fn read<'a>(&self, document: &'a [u8]) -> Result<Vec<Value<'a>>, String> {
        // JSON is UTF-8: serde_json checks only the strings it builds, and
        // those it skips could hold anything.
        let text = std::str::from_utf8(document)
            .map_err(|error| format!("the event is not JSON: not UTF-8 ({error})"))?;
        let mut values = vec![Value::Null; self.count];
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let seed = Seed {
            node: &self.root,
            values: &mut values,
        };
        seed.deserialize(&mut deserializer)
            .and_then(|()| deserializer.end())
            .map_err(|error| format!("the event is not JSON: {error}"))?;
        Ok(values)
    }
}

impl Node {
    /// Sets every slot below this node.
    fn fill_below<'a>(&self, values: &mut [Value<'a>], value: &dyn Fn(&str) -> Value<'a>) {
        for (key, child) in &self.children {
            if let Some(slot) = child.slot {
                values[slot] = value(key);
            }
            child.fill_below(values, &|_| value(key));
        }
    }
}

impl Value<'_> {
    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(false) => 1,
            Value::Bool(true) => 2,
            Value::Int(_) | Value::Float(_) => 3,
            Value::Str(_) => 4,
            Value::Array => 5,
            Value::Object | Value::Error(_) => 6,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Array => "array",
            Value::Object | Value::Error(_) => "object",
        }
    }

    /// jq's truth: neither `false` nor `null`.
    pub(crate) fn truthy(&self) -> Result<bool, String> {
        match self {
            Value::Error(error) => Err(error.clone()),
            Value::Null | Value::Bool(false) => Ok(false),
            _ => Ok(true),
        }
    }

    /// jq's order between this value and a constant.
    pub(crate) fn compare(&self, constant: &Constant) -> Result<Ordering, String> {
        let other = match constant {
            Constant::Null => Value::Null,
            Constant::Bool(bool) => Value::Bool(*bool),
            Constant::Int(int) => Value::Int(*int),
            Constant::Float(float) => Value::Float(*float),
            Constant::Str(text) => Value::Str(Cow::Borrowed(text)),
        };
        if let Value::Error(error) = self {
            return Err(error.clone());
        }
        Ok(match (self, &other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                number(self).total_cmp(&number(&other))
            }
            (Value::Str(a), Value::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
            _ => self.rank().cmp(&other.rank()),
        })
    }
}

fn number(value: &Value) -> f64 {
    match value {
        Value::Int(int) => *int as f64,
        Value::Float(float) => *float,
        _ => f64::NAN,
    }
}

/// Reads the value at one node of the tree.
struct Seed<'n, 'v, 'a> {
    node: &'n Node,
    values: &'v mut [Value<'a>],
}

impl<'a> Seed<'_, '_, 'a> {
    /// Keeps a value that is not an object: its own slot gets it, and the
    /// paths through it read `null` (through `null`) or fail.
    fn keep(self, value: Value<'a>) {
        let kind = value.kind();
        let is_null = value == Value::Null;
        if let Some(slot) = self.node.slot {
            self.values[slot] = value;
        }
        self.node.fill_below(self.values, &|key| match is_null {
            true => Value::Null,
            false => Value::Error(format!("cannot index {kind} with \"{key}\"")),
        });
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.keep(Value::Null);
        Ok(())
    }

    fn visit_bool<E>(self, value: bool) -> Result<(), E> {
        self.keep(Value::Bool(value));
        Ok(())
    }

    fn visit_i64<E>(self, value: i64) -> Result<(), E> {
        self.keep(Value::Int(value));
        Ok(())
    }

    fn visit_u64<E>(self, value: u64) -> Result<(), E> {
        self.keep(match i64::try_from(value) {
            Ok(int) => Value::Int(int),
            Err(_) => Value::Float(value as f64),
        });
        Ok(())
    }

    fn visit_f64<E>(self, value: f64) -> Result<(), E> {
        self.keep(Value::Float(value));
        Ok(())
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<(), E> {
        self.keep(Value::Str(Cow::Borrowed(value)));
        Ok(())
    }

    fn visit_str<E>(self, value: &str) -> Result<(), E> {
        self.keep(Value::Str(Cow::Owned(value.to_string())));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.keep(Value::Array);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if let Some(slot) = self.node.slot {
            self.values[slot] = Value::Object;
        }
        // A key given twice counts with its last value, as in jq.
        self.node.fill_below(self.values, &|_| Value::Null);
        while let Some(child) = map.next_key_seed(Key(self.node))? {
            match child {
                Some(node) => map.next_value_seed(Seed {
                    node,
                    values: &mut *self.values,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads a key: the child of the node it names, if any.
struct Key<'n>(&'n Node);

impl<'de, 'n> DeserializeSeed<'de> for Key<'n> {
    type Value = Option<&'n Node>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 'n> Visitor<'de> for Key<'n> {
    type Value = Option<&'n Node>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .children
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, node)| node))
    }
}

/// A constant of the expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Constant {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(paths: &[&[&str]]) -> Fields {
        let mut fields = Fields::default();
        for path in paths {
            let path: Vec<String> = path.iter().map(|key| key.to_string()).collect();
            fields.slot(&path);
        }
        fields
    }

    #[test]
    fn reads_only_the_paths_asked_for() {
        let fields = fields(&[&["a"], &["b", "c"], &["b"]]);
        let values = fields
            .read(br#"{"x":[1,{"a":2}],"b":{"c":"t\u00e9"},"a":-3}"#)
            .unwrap();
        assert_eq!(
            values,
            [Value::Int(-3), Value::Str("té".into()), Value::Object]
        );
    }

    #[test]
    fn missing_keys_are_null_and_scalars_cannot_be_indexed() {
        let fields = fields(&[&["a", "b"], &["z"]]);
        assert_eq!(fields.read(b"{}").unwrap(), [Value::Null, Value::Null]);
        assert_eq!(fields.read(b"null").unwrap(), [Value::Null, Value::Null]);
        let values = fields.read(br#"{"a":"s"}"#).unwrap();
        assert!(matches!(values[0], Value::Error(_)));
        assert!(matches!(fields.read(b"[1]").unwrap()[1], Value::Error(_)));
    }

    #[test]
    fn the_last_of_twice_given_keys_counts() {
        let fields = fields(&[&["a", "b"]]);
        let values = fields.read(br#"{"a":{"b":1},"a":7}"#).unwrap();
        assert!(matches!(values[0], Value::Error(_)));
        let values = fields.read(br#"{"a":7,"a":{"b":1}}"#).unwrap();
        assert_eq!(values[0], Value::Int(1));
    }

    #[test]
    fn garbage_and_deep_nesting_are_errors() {
        let fields = fields(&[&["a"]]);
        for bad in [&b"{"[..], b"{\"a\":1} x", b"\xff\xfe", b"", b"{\"a\":}"] {
            assert!(fields.read(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(100_000);
        assert!(fields.read(deep.as_bytes()).is_err());
    }
}
