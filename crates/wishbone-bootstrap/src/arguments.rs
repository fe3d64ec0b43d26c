use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::argument_error::ArgumentError;
use crate::field_names::field_names;

/// A module's `arguments:` block, kept in a form any module can deserialize
/// into its own `Config` type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Arguments {
    value: serde_yaml::Value,
}

/// A module's own arguments, once the ones several modules share (a
/// listening input's, a delivering output's) are split off.
pub struct OwnArguments {
    arguments: Arguments,
    shared: &'static [&'static str],
}

impl OwnArguments {
    /// Splits `shared` off `arguments`: (the shared ones, the module's own).
    pub fn split(arguments: &Arguments, shared: &'static [&'static str]) -> (Arguments, Self) {
        let (common, own) = arguments.split(shared);
        (
            common,
            Self {
                arguments: own,
                shared,
            },
        )
    }

    /// Deserializes the module's `Config`; an unknown field's error names
    /// the shared arguments too.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, ArgumentError> {
        self.arguments
            .deserialize()
            .map_err(|error| error.also_accepting(self.shared))
    }
}

/// Seconds as a duration; refuses negative, infinite and NaN values.
pub fn seconds(name: &str, value: f64) -> Result<Duration, ArgumentError> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        ArgumentError::field(
            name,
            format!("must be a number of seconds of 0 or more, not {value}"),
        )
    })
}

/// File permissions written in octal (`"0666"`, `"0o640"`), for the
/// argument `mode`.
pub fn octal_mode(mode: &str) -> Result<u32, ArgumentError> {
    u32::from_str_radix(mode.trim_start_matches("0o"), 8)
        .ok()
        .filter(|bits| *bits <= 0o7777)
        .ok_or_else(|| {
            ArgumentError::field(
                "mode",
                format!("must be permissions in octal, such as \"0644\", not `{mode}`"),
            )
        })
}

/// Refuses a host that is neither an IP address nor a well-formed host name
/// (labels of letters, digits and `-`, at most 63 bytes each, 253 in all),
/// so `wishbone check` catches what would only fail when the server starts.
pub fn host_name(field: &str, host: &str) -> Result<(), ArgumentError> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(ArgumentError::field(
            field,
            format!(
                "must be an IP address (such as 127.0.0.1 or ::1) or a host name (such as localhost), not `{host}`"
            ),
        ))
    }
}

impl Arguments {
    pub(crate) fn from_value(value: serde_yaml::Value) -> Self {
        Self { value }
    }

    /// Parses arguments written as YAML, for tests and examples.
    pub fn from_yaml(text: &str) -> Result<Self, ArgumentError> {
        serde_yaml::from_str(text)
            .map(Self::from_value)
            .map_err(|error| ArgumentError::new(error.to_string()))
    }

    /// Arguments a program writes for a module it adds itself (such as
    /// the metrics route `--graphite` adds), from any serializable value.
    pub fn from_serialize<T: serde::Serialize>(value: &T) -> Result<Self, ArgumentError> {
        serde_yaml::to_value(value)
            .map(Self::from_value)
            .map_err(|error| ArgumentError::new(error.to_string()))
    }

    /// These arguments without `key`.
    pub fn without(&self, key: &str) -> Arguments {
        self.split(&[key]).1
    }

    /// These arguments with `key` set to `value`, written as YAML.
    pub fn with_yaml(&self, key: &str, value: &str) -> Result<Arguments, ArgumentError> {
        let value: serde_yaml::Value = serde_yaml::from_str(value)
            .map_err(|error| ArgumentError::value(key, error.to_string()))?;
        let mut mapping = match &self.value {
            serde_yaml::Value::Mapping(mapping) => mapping.clone(),
            _ => serde_yaml::Mapping::new(),
        };
        mapping.insert(serde_yaml::Value::String(key.to_string()), value);
        Ok(Self::from_value(serde_yaml::Value::Mapping(mapping)))
    }

    /// Splits off the entries named in `keys` (arguments several kinds of
    /// module share, deserialized on their own): those, and the rest.
    pub fn split(&self, keys: &[&str]) -> (Arguments, Arguments) {
        let serde_yaml::Value::Mapping(mapping) = &self.value else {
            return (Arguments::default(), self.clone());
        };
        let (shared, own): (serde_yaml::Mapping, serde_yaml::Mapping) = mapping
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .partition(|(key, _)| key.as_str().is_some_and(|key| keys.contains(&key)));
        (
            Self::from_value(serde_yaml::Value::Mapping(shared)),
            Self::from_value(serde_yaml::Value::Mapping(own)),
        )
    }

    /// Deserializes into a module's `Config`. No arguments at all count as an
    /// empty mapping, so a `Config` whose fields all have defaults needs none.
    /// A key the `Config` does not take is refused by name, with the list of
    /// those it takes.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ArgumentError> {
        let value = match &self.value {
            serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
            other => other.clone(),
        };
        let accepted = field_names::<T>();
        if let serde_yaml::Value::Mapping(mapping) = &value
            && !accepted.is_empty()
        {
            for key in mapping.keys() {
                let name = match key.as_str() {
                    Some(name) => name.to_string(),
                    None => format!("{key:?}"),
                };
                if !accepted.contains(&name.as_str()) {
                    let accepted = accepted.iter().map(|name| name.to_string()).collect();
                    return Err(ArgumentError::unknown(name, accepted));
                }
            }
        }
        serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let message = error.into_inner().to_string();
            if path == "." || message.contains(&format!("`{path}`")) {
                ArgumentError::new(message)
            } else {
                ArgumentError::value(path, message)
            }
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn modes_are_octal() {
        assert_eq!(super::octal_mode("0666").unwrap(), 0o666);
        assert_eq!(super::octal_mode("0o640").unwrap(), 0o640);
        assert_eq!(super::octal_mode("660").unwrap(), 0o660);
        assert!(super::octal_mode("0999").is_err());
        assert!(super::octal_mode("17777").is_err());
        assert!(super::octal_mode("rw-rw-rw-").is_err());
    }
    use super::*;

    #[test]
    fn hosts_are_addresses_or_host_names() {
        for good in [
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "localhost",
            "carbon-1.example.org",
            "a.",
        ] {
            assert!(host_name("host", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "not an address",
            "host:80",
            "-a",
            "a..b",
            "under_score",
            &"a".repeat(64),
        ] {
            let error = host_name("host", bad).unwrap_err().to_string();
            assert!(
                error.contains("`host` must be an IP address"),
                "{bad}: {error}"
            );
        }
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Config {
        #[serde(default = "default_port")]
        port: u16,
    }

    fn default_port() -> u16 {
        19283
    }

    #[test]
    fn shared_arguments_split_off() {
        let arguments = Arguments::from_yaml("{port: 1, timeout: 2, failed: true}").unwrap();
        let (shared, own) = arguments.split(&["timeout", "failed"]);
        assert_eq!(
            shared,
            Arguments::from_yaml("{timeout: 2, failed: true}").unwrap()
        );
        assert_eq!(own.deserialize::<Config>().unwrap().port, 1);
        let (shared, own) = Arguments::default().split(&["timeout"]);
        assert_eq!((shared, own), (Arguments::default(), Arguments::default()));
    }

    #[test]
    fn no_arguments_means_all_defaults() {
        let config: Config = Arguments::default().deserialize().unwrap();
        assert_eq!(config.port, 19283);
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let error = Arguments::from_yaml("port: 70000")
            .unwrap()
            .deserialize::<Config>()
            .unwrap_err();
        assert!(
            error.to_string().starts_with("`port`: invalid value"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_required_field_is_named() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Required {
            url: String,
        }
        let error = Arguments::default().deserialize::<Required>().unwrap_err();
        assert!(error.to_string().contains("missing field `url`"), "{error}");
    }

    #[test]
    fn unknown_fields_name_the_valid_ones() {
        let error = Arguments::from_yaml("prot: 1")
            .unwrap()
            .deserialize::<Config>()
            .unwrap_err();
        assert!(
            error.to_string().contains("unknown field `prot`"),
            "{error}"
        );
        assert!(error.to_string().contains("`port`"), "{error}");
    }
}
