//! `wishbone.flow.queueselect`: each event to the queues whose jq condition
//! it satisfies. The text `wishbone show --docs` prints is [`DOCS`].

use futures::future::LocalBoxFuture;
use serde::Deserialize;
use wishbone_runtime::{
    ArgumentError, Arguments, Module, ModuleContext, ModuleError, ModuleKind, QueueSpec,
};

use crate::condition::{Condition, Conditions};
use crate::route::route;
use crate::sort::{Choice, MOST_DESTINATIONS};

/// What `wishbone show --docs` prints.
pub const DOCS: &str = r#"wishbone.flow.queueselect: sends each event to the queues whose rule matches.

Queues
  inbox      events, JSON objects to be tested
  <queue>    each queue a rule names: the events its condition holds for
  nomatch    events no rule matched, including those a condition failed on
             (not JSON, or an error), counted in
             module.<name>.condition_errors

Arguments (default)
  rules        a list of {queue: NAME, condition: JQ} (required); a
               condition is true when its first output is neither false nor
               null. Several rules may name one queue.
  first_match  send an event only to the first queue whose rule matches
               (false); with false it goes to every queue whose rule
               matches, each its own copy, and an event from a write-ahead
               buffer counts as delivered once every copy is

A rule's queue is a queue of the module: the routing table may route from
it (and from nomatch, failed and success), and from no other name. Events
on nomatch when no route connects it are discarded: counted in its
discarded_total (filtering, not loss) and acknowledged. Events on a rule's
queue that no route connects are dropped, counted in its dropped_total.
See docs/routing.md.

Example
  modules:
    input: {module: wishbone.input.tcp, arguments: {port: 19283}}
    select:
      module: wishbone.flow.queueselect
      arguments:
        rules:
          - {queue: billing, condition: '.service == "billing"'}
          - {queue: errors, condition: '.level == "error"'}
    billing: {module: wishbone.output.tcp, arguments: {port: 10001}}
    errors: {module: wishbone.output.tcp, arguments: {port: 10002}}
  routingtable:
    - input.outbox -> select.inbox
    - select.billing -> billing.inbox
    - select.errors -> errors.inbox
"#;

/// The kind, for the list of builtin modules.
pub const KIND: ModuleKind = ModuleKind {
    name: "wishbone.flow.queueselect",
    aliases: &["wishbone.builtin.flow.queueselect"],
    description: "sends each event to the queues whose jq rule matches",
    docs: DOCS,
    queues: QueueSpec {
        incoming: &["inbox"],
        outgoing: &["nomatch"],
        any_incoming: false,
        any_outgoing: true,
    },
    build,
};

/// The arguments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where events go, and when.
    pub rules: Vec<RuleConfig>,
    /// Only the first matching rule counts.
    #[serde(default)]
    pub first_match: bool,
}

/// One rule as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The queue matching events go to.
    pub queue: String,
    /// The jq condition.
    pub condition: String,
}

/// Queues a rule may not name: the module's own.
const NOT_RULE_QUEUES: [&str; 4] = ["inbox", "nomatch", "failed", "success"];

fn build(arguments: &Arguments) -> Result<Box<dyn Module>, ArgumentError> {
    let config: Config = arguments.deserialize()?;
    if config.rules.is_empty() {
        return Err(ArgumentError::field("rules", "names no rule"));
    }
    let mut queues: Vec<String> = Vec::new();
    let mut conditions = Vec::with_capacity(config.rules.len());
    let mut destinations = Vec::with_capacity(config.rules.len());
    for (index, rule) in config.rules.iter().enumerate() {
        let field = |name: &str| format!("rules[{index}].{name}");
        if NOT_RULE_QUEUES.contains(&rule.queue.as_str()) || !is_queue_name(&rule.queue) {
            return Err(ArgumentError::field(
                field("queue"),
                format!(
                    "`{}` cannot be a rule's queue: a name of letters, digits, `_` and `-`, not {}",
                    rule.queue,
                    NOT_RULE_QUEUES.join(", ")
                ),
            ));
        }
        let condition = Condition::compile(&rule.condition)
            .map_err(|error| ArgumentError::field(field("condition"), error.to_string()))?;
        let destination = match queues.iter().position(|queue| *queue == rule.queue) {
            Some(existing) => existing,
            None => {
                queues.push(rule.queue.clone());
                queues.len() - 1
            }
        };
        destinations.push(destination);
        conditions.push(condition);
    }
    if queues.len() >= MOST_DESTINATIONS {
        return Err(ArgumentError::field(
            "rules",
            format!(
                "name {} queues, more than {}",
                queues.len(),
                MOST_DESTINATIONS - 1
            ),
        ));
    }
    Ok(Box::new(QueueSelect {
        rules: Rules {
            conditions: Conditions::new(conditions),
            destinations,
            nomatch: queues.len(),
            first_match: config.first_match,
        },
        queues,
    }))
}

fn is_queue_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|char| char.is_ascii_alphanumeric() || char == '_' || char == '-')
}

/// The module.
pub struct QueueSelect {
    rules: Rules,
    /// The rules' queues, each once, in the order first named.
    queues: Vec<String>,
}

/// The rules, by destination.
pub struct Rules {
    conditions: Conditions,
    /// Per rule, its queue.
    destinations: Vec<usize>,
    /// The destination of events no rule matched.
    nomatch: usize,
    first_match: bool,
}

impl Rules {
    /// Whether every rule is answered without jaq.
    pub fn is_quick(&self) -> bool {
        self.conditions.is_quick()
    }

    /// Where an event goes; `failed` hears of every condition that failed
    /// on it (by rule index).
    pub fn choose(&self, event: &[u8], mut failed: impl FnMut(usize, &str)) -> Choice {
        let mut choice: Choice = 0;
        self.conditions.ask(event, |index, answer| match answer {
            Ok(true) => {
                choice |= 1 << self.destinations[index];
                !self.first_match
            }
            Ok(false) => true,
            Err(reason) => {
                failed(index, &reason);
                true
            }
        });
        if choice == 0 {
            1 << self.nomatch
        } else {
            choice
        }
    }
}

impl Module for QueueSelect {
    /// In jaq, a condition or program takes microseconds per event: worth
    /// a thread of its own.
    fn cpu_bound(&self) -> bool {
        !self.rules.is_quick()
    }

    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>> {
        let Self { rules, queues } = *self;
        Box::pin(async move {
            let names = queues.iter().map(String::as_str).chain(["nomatch"]);
            let paced = !rules.is_quick();
            route(context, names, "nomatch", paced, move |event, errors| {
                rules.choose(event, |index, reason| {
                    errors.count(&format!("rules[{index}]"), reason)
                })
            })
            .await
        })
    }

    fn outgoing_queues(&self) -> Option<Vec<String>> {
        Some(
            self.queues
                .iter()
                .cloned()
                .chain(["nomatch".to_string()])
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// billing: `.service == "billing"`, errors: `.level == "error"`,
    /// billing again: `.vip`.
    fn rules(first_match: bool) -> Rules {
        let rules = [
            (0, r#".service == "billing""#),
            (1, r#".level == "error""#),
            (0, ".vip"),
        ];
        Rules {
            conditions: Conditions::new(
                rules
                    .iter()
                    .map(|(_, text)| Condition::compile(text).unwrap())
                    .collect(),
            ),
            destinations: rules.iter().map(|(destination, _)| *destination).collect(),
            nomatch: 2,
            first_match,
        }
    }

    fn choose(rules: &Rules, event: &str) -> (Choice, Vec<usize>) {
        let mut failed = Vec::new();
        let choice = rules.choose(event.as_bytes(), |index, _| failed.push(index));
        (choice, failed)
    }

    #[test]
    fn every_matching_queue_or_the_first_or_nomatch() {
        let every = rules(false);
        let event = r#"{"service":"billing","level":"error"}"#;
        assert_eq!(choose(&every, event), (0b011, vec![]));
        assert_eq!(choose(&rules(true), event), (0b001, vec![]));
        assert_eq!(
            choose(&every, r#"{"vip":true}"#),
            (0b001, vec![]),
            "two rules, one queue"
        );
        assert_eq!(choose(&every, r#"{"level":"info"}"#), (0b100, vec![]));
        assert_eq!(
            choose(&every, "not json"),
            (0b100, vec![0, 1, 2]),
            "each rule counts its error"
        );
    }

    #[test]
    fn rules_are_checked_when_built() {
        let built = |yaml: &str| build(&Arguments::from_yaml(yaml).unwrap()).map(drop);
        assert!(
            built("{rules: [{queue: a, condition: '.x'}, {queue: a, condition: '.y'}]}").is_ok()
        );
        for bad in [
            "{rules: []}",
            "{rules: [{queue: nomatch, condition: '.x'}]}",
            "{rules: [{queue: 'two words', condition: '.x'}]}",
            "{rules: [{queue: a, condition: '.x =='}]}",
            "{rules: [{queue: a}]}",
        ] {
            assert!(built(bad).is_err(), "{bad}");
        }
    }
}
