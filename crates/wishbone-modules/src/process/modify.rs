//! `wishbone.process.modify`: merges fields into JSON object events, with
//! values that may come from functions such as the host name.
//! The text `wishbone show --docs` prints is [`DOCS`].

use std::collections::BTreeMap;

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value};
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

use super::convert::{Converted, Queues, convert_all};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.process.modify: merges fields into JSON object events.

Queues
  inbox      JSON objects
  outbox     the same objects with the fields merged in (existing keys are
             overwritten)
  failed     events that are not JSON objects, as
             {"error": "<reason>", "event": "<the event as text>"}, counted
             in module.<name>.failed; with no route from it they are dropped
             and settled (a write-ahead buffer does not send them again)

Arguments (default)
  merge      a mapping of field names to values ({}); a string value that is
             exactly one of these is replaced by what the function returns:
               ${hostname}   the host name
               ${pid}        this process's id
               ${time_ns}    the wall clock in nanoseconds

Example (the round-robin demo's `merge event of {"hostname": system::hostname()}`)
  modules:
    enrich:
      module: wishbone.process.modify
      arguments:
        merge:
          hostname: ${hostname}
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.process.modify",
    aliases: &["wishbone.function.modify"],
    description: "merges fields into JSON object events",
    docs: DOCS,
    queues: QueueSpec::PROCESS,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Fields to merge into every event.
    #[serde(default)]
    pub merge: BTreeMap<String, Value>,
}

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    Ok(Box::new(Modify {
        config: arguments.deserialize()?,
    }))
}

/// The fields to merge, with functions already evaluated where their value
/// cannot change (`${hostname}`, `${pid}`).
#[derive(Clone, Debug)]
pub struct Merge {
    fields: Vec<(String, Field)>,
}

#[derive(Clone, Debug)]
enum Field {
    Fixed(Value),
    TimeNs,
}

impl Merge {
    pub fn new(fields: &BTreeMap<String, Value>, hostname: &str) -> Self {
        let field = |value: &Value| match value.as_str() {
            Some("${hostname}") => Field::Fixed(Value::from(hostname)),
            Some("${pid}") => Field::Fixed(Value::from(std::process::id())),
            Some("${time_ns}") => Field::TimeNs,
            _ => Field::Fixed(value.clone()),
        };
        Self {
            fields: fields
                .iter()
                .map(|(name, value)| (name.clone(), field(value)))
                .collect(),
        }
    }

    /// The event with the fields merged, or why it cannot be.
    pub fn apply(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        let mut object: Map<String, Value> = match serde_json::from_slice(data) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err("the event is JSON but not an object".into()),
            Err(error) => return Err(format!("the event is not JSON: {error}")),
        };
        for (name, field) in &self.fields {
            let value = match field {
                Field::Fixed(value) => value.clone(),
                Field::TimeNs => Value::from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos() as u64)
                        .unwrap_or(0),
                ),
            };
            object.insert(name.clone(), value);
        }
        serde_json::to_vec(&object).map_err(|error| error.to_string())
    }
}

/// The module.
pub struct Modify {
    config: Config,
}

impl Module for Modify {
    fn run(
        self: Box<Self>,
        mut context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let merge = Merge::new(&self.config.merge, &context.options().hostname);
        let queues = Queues::of(&mut context);
        Box::pin(convert_all(queues, 1, move |data| {
            merge.apply(data).map(Converted::New)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge() -> Merge {
        let fields: BTreeMap<String, Value> = [
            ("hostname".to_string(), Value::from("${hostname}")),
            ("team".to_string(), Value::from("ops")),
        ]
        .into();
        Merge::new(&fields, "web-01")
    }

    #[test]
    fn fields_are_merged_and_functions_evaluated() {
        let out = merge().apply(br#"{"id":1,"team":"dev"}"#).unwrap();
        let value: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"id": 1, "hostname": "web-01", "team": "ops"})
        );
    }

    #[test]
    fn events_that_are_not_objects_are_refused_with_a_reason() {
        assert!(
            merge()
                .apply(b"[1,2]")
                .unwrap_err()
                .contains("not an object")
        );
        assert!(merge().apply(b"hello").unwrap_err().contains("not JSON"));
    }
}
