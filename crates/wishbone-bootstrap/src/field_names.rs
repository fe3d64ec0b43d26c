//! The field names a `#[derive(Deserialize)]` struct takes, asked of the
//! struct itself: serde hands them to the deserializer it calls. What
//! refuses an unknown argument with the list of the accepted ones, and what
//! a test checks each module's documentation against.

use serde::de::{DeserializeOwned, Deserializer, Error as _, Visitor};

/// The fields of `T`, in declaration order; empty when `T` is not a plain
/// struct (a map, an enum, a struct with a flattened field).
pub fn field_names<T: DeserializeOwned>() -> Vec<&'static str> {
    let mut names = Vec::new();
    let _ = T::deserialize(FieldNames(&mut names));
    names
}

/// A deserializer that only records the fields a struct asks for.
struct FieldNames<'a>(&'a mut Vec<&'static str>);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(Self::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.extend(fields);
        Err(Self::Error::custom("fields read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
        enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_structs_fields_in_order_and_none_of_a_map() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Config {
            host: String,
            #[serde(default)]
            port: u16,
        }
        assert_eq!(field_names::<Config>(), ["host", "port"]);
        assert!(field_names::<std::collections::BTreeMap<String, u64>>().is_empty());
    }
}
