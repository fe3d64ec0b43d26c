//! What a kind's `show --docs` text says of its arguments, read back so
//! that tests can hold it to the code: which arguments it describes, and
//! the default each one's description gives.

use wishbone_bootstrap::{ArgumentError, Arguments};

use crate::ModuleKind;

/// Reads arguments into a `Config` and prints it, for
/// [`ModuleKind::defaults_match`]: `KIND.defaults_match(&example,
/// read_config::<Config>)`.
pub fn read_config<C: serde::de::DeserializeOwned + std::fmt::Debug>(
    arguments: &Arguments,
) -> Result<String, ArgumentError> {
    arguments
        .deserialize::<C>()
        .map(|config| format!("{config:?}"))
}

impl ModuleKind {
    /// The arguments [`ModuleKind::docs`] describes: the first word of each
    /// line of its `Arguments` section indented by two spaces (deeper lines
    /// go on describing one); none after `Arguments: none`. A test compares
    /// them with the kind's `Config` both ways.
    pub fn described_arguments(&self) -> Vec<&'static str> {
        self.argument_descriptions()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    /// Each described argument with its description, its lines joined.
    fn argument_descriptions(&self) -> Vec<(&'static str, String)> {
        let section = self
            .docs
            .split("\nArguments")
            .nth(1)
            .filter(|rest| !rest.starts_with(": none"))
            .and_then(|rest| rest.split_once('\n'))
            .map_or("", |(_, lines)| lines);
        let mut described: Vec<(&'static str, String)> = Vec::new();
        for line in section.split("\n\n").next().unwrap_or_default().lines() {
            if !line.starts_with("   ")
                && let Some(rest) = line.strip_prefix("  ")
                && let Some(name) = rest.split_whitespace().next()
            {
                let text = rest[name.len()..].trim();
                described.push((name, text.to_string()));
            } else if let Some((_, text)) = described.last_mut() {
                text.push(' ');
                text.push_str(line.trim());
            }
        }
        described
    }

    /// The default each described argument's text gives: what its first
    /// parentheses hold, up to a `;`, `:` or `,` that goes on to explain
    /// it (`(30; 0: no limit)` gives `30`). `required` for one without.
    pub fn described_defaults(&self) -> Vec<(&'static str, String)> {
        self.argument_descriptions()
            .into_iter()
            .filter_map(|(name, text)| Some((name, default_in(&text)?)))
            .collect()
    }

    /// Whether the docs describe exactly the arguments `taken` (a
    /// `Config`'s [`field_names`](crate::field_names) and those its family
    /// shares); else what is missing either way.
    pub fn docs_match(&self, taken: &[&str]) -> Result<(), String> {
        let described = self.described_arguments();
        let undescribed: Vec<&&str> = taken
            .iter()
            .filter(|name| !described.contains(name))
            .collect();
        let untaken: Vec<&&str> = described
            .iter()
            .filter(|name| !taken.contains(name))
            .collect();
        match (undescribed.is_empty(), untaken.is_empty()) {
            (true, true) => Ok(()),
            _ => Err(format!(
                "{}: taken, not described: {undescribed:?}; described, not taken: {untaken:?}",
                self.name
            )),
        }
    }

    /// Whether each default the docs give is the one the code takes.
    /// `read` deserializes a kind's arguments into what the module runs
    /// with and prints it (`{:?}` of its `Config`); `example` is a valid
    /// set of arguments (the docs' example's). For each described default,
    /// the argument left out must read the same as the argument given that
    /// value (or, for `none`, given null); one described as `required` must
    /// not read when left out. A default that is words rather than a value
    /// the arguments take (`(mutual TLS)`) is not checked.
    pub fn defaults_match(
        &self,
        example: &Arguments,
        read: impl Fn(&Arguments) -> Result<String, ArgumentError>,
    ) -> Result<(), String> {
        let mut wrong = Vec::new();
        for (name, default) in self.described_defaults() {
            let left_out = example.without(name);
            if default == "required" {
                if read(&left_out).is_ok() {
                    wrong.push(format!(
                        "`{name}` is described as required, and may be left out"
                    ));
                }
                continue;
            }
            let Ok(given) = left_out.with_yaml(name, &default) else {
                continue;
            };
            let Ok(with_default) = read(&given) else {
                continue;
            };
            // `(none)` may say "left out" of an argument that takes a value
            // or nothing.
            let absent = || {
                (default == "none")
                    .then(|| left_out.with_yaml(name, "null").ok())
                    .flatten()
                    .and_then(|given| read(&given).ok())
            };
            match read(&left_out) {
                Ok(without) if without == with_default => {}
                Ok(without) if Some(&without) == absent().as_ref() => {}
                Ok(without) => wrong.push(format!(
                    "`{name}` is described with the default {default}, and left out it reads\n  {without}\nnot\n  {with_default}"
                )),
                Err(error) => wrong.push(format!(
                    "`{name}` is described with the default {default}, and cannot be left out: {error}"
                )),
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!("{}: {}", self.name, wrong.join("\n")))
        }
    }
}

/// The default in an argument's description: the first parentheses' text,
/// up to a `;`, `:` or `,` outside quotes and brackets.
fn default_in(text: &str) -> Option<String> {
    let open = text.find('(')?;
    let mut depth = 0usize;
    let mut quoted = false;
    let mut end = None;
    for (index, c) in text[open + 1..].char_indices() {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' | '(' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth = depth.saturating_sub(1),
            ')' if !quoted && depth == 0 => {
                end = Some(index);
                break;
            }
            ')' if !quoted => depth -= 1,
            ';' | ':' | ',' if !quoted && depth == 0 => {
                end = Some(index);
                break;
            }
            _ => {}
        }
    }
    let inner = text[open + 1..open + 1 + end?].trim();
    (!inner.is_empty()).then(|| inner.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_is_the_first_parentheses_up_to_an_explanation() {
        assert_eq!(
            default_in("seconds (30; 0: no limit)").as_deref(),
            Some("30")
        );
        assert_eq!(
            default_in("delimiter (\"\\n\")").as_deref(),
            Some("\"\\n\"")
        );
        assert_eq!(
            default_in("servers ([\"nats://127.0.0.1:4222\"]); more").as_deref(),
            Some("[\"nats://127.0.0.1:4222\"]")
        );
        assert_eq!(default_in("tls (none: plain TCP)").as_deref(), Some("none"));
        assert_eq!(default_in("no default here"), None);
    }

    fn kind(docs: &'static str) -> ModuleKind {
        fn build(_: &Arguments) -> Result<Box<dyn crate::Module>, ArgumentError> {
            Err(ArgumentError::new("not built here"))
        }
        ModuleKind {
            name: "test.kind",
            aliases: &[],
            description: "",
            docs,
            queues: crate::QueueSpec::SOURCE,
            build,
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read through `Debug` only
    struct Config {
        path: String,
        #[serde(default = "ten")]
        count: u32,
    }

    fn ten() -> u32 {
        10
    }

    #[test]
    fn a_default_the_code_does_not_take_is_found() {
        let example = Arguments::from_yaml("{path: x}").unwrap();
        let right = kind(
            "k\n\nArguments (default)\n  path   where (required)\n  count  how many\n         in all (10)\n",
        );
        assert_eq!(
            right.defaults_match(&example, read_config::<Config>),
            Ok(())
        );
        let wrong =
            kind("k\n\nArguments (default)\n  path   where (required)\n  count  how many (12)\n");
        let error = wrong
            .defaults_match(&example, read_config::<Config>)
            .unwrap_err();
        assert!(
            error.contains("`count` is described with the default 12"),
            "{error}"
        );
        let optional = kind("k\n\nArguments (default)\n  count  how many (required)\n");
        let error = optional
            .defaults_match(&example, read_config::<Config>)
            .unwrap_err();
        assert!(
            error.contains("`count` is described as required"),
            "{error}"
        );
    }
}
