//! A JSON object with the fields [`to_json`](super::decode::to_json)
//! gives, as RFC 5424 text: what rsyslog and other receivers parse.

use std::fmt::Write;

use serde_json::{Map, Value};

/// Facility and severity when the object has none: user.notice, as
/// `logger` sends.
const DEFAULT_FACILITY: u64 = 1;
const DEFAULT_SEVERITY: u64 = 5;

/// RFC 5424 text for a JSON object: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME
/// PROCID MSGID STRUCTURED-DATA MSG`, `-` for a field that is null or
/// missing. Refuses what the RFC cannot carry (a header field with spaces
/// or too long, a facility past 23, a timestamp that is not RFC 3339).
pub fn from_json(data: &[u8]) -> Result<Vec<u8>, String> {
    let object: Map<String, Value> = match serde_json::from_slice(data) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err("the event is JSON but not an object".into()),
        Err(error) => return Err(format!("the event is not JSON: {error}")),
    };
    let number = |field: &str, default: u64, most: u64| match object.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(number)) => number
            .as_u64()
            .filter(|value| *value <= most)
            .ok_or_else(|| format!("`{field}` must be 0 to {most}")),
        Some(other) => Err(format!("`{field}` must be a number, not {other}")),
    };
    let facility = number("facility", DEFAULT_FACILITY, 23)?;
    let severity = number("severity", DEFAULT_SEVERITY, 7)?;
    let mut text = format!("<{}>1", facility * 8 + severity);
    let timestamp = header(&object, "timestamp", 64)?;
    if timestamp != "-" {
        chrono::DateTime::parse_from_rfc3339(&timestamp)
            .map_err(|error| format!("`timestamp` is not RFC 3339: {error}"))?;
    }
    for field in [
        timestamp,
        header(&object, "hostname", 255)?,
        header(&object, "appname", 48)?,
        header(&object, "procid", 128)?,
        header(&object, "msgid", 32)?,
    ] {
        text.push(' ');
        text.push_str(&field);
    }
    text.push(' ');
    structured_data(object.get("structured_data"), &mut text)?;
    match object.get("message") {
        None | Some(Value::Null) => {}
        Some(Value::String(message)) if message.is_empty() => {}
        Some(Value::String(message)) => {
            text.push(' ');
            text.push_str(message);
        }
        Some(other) => {
            text.push(' ');
            text.push_str(&other.to_string());
        }
    }
    Ok(text.into_bytes())
}

/// A header field: printable ASCII without spaces, at most `most` bytes,
/// or `-`.
fn header(object: &Map<String, Value>, field: &str, most: usize) -> Result<String, String> {
    let text = match object.get(field) {
        None | Some(Value::Null) => return Ok("-".into()),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(other) => return Err(format!("`{field}` must be text, not {other}")),
    };
    if text.is_empty() || text.len() > most || !text.bytes().all(|byte| (33..=126).contains(&byte))
    {
        return Err(format!(
            "`{field}` must be 1 to {most} printable ASCII characters without spaces, not {text:?}"
        ));
    }
    Ok(text)
}

/// `[id name="value" ...]` per element, values escaped; `-` for none.
fn structured_data(value: Option<&Value>, text: &mut String) -> Result<(), String> {
    let elements = match value {
        None | Some(Value::Null) => None,
        Some(Value::Object(elements)) if elements.is_empty() => None,
        Some(Value::Object(elements)) => Some(elements),
        Some(other) => return Err(format!("`structured_data` must be an object, not {other}")),
    };
    let Some(elements) = elements else {
        text.push('-');
        return Ok(());
    };
    for (id, params) in elements {
        sd_name(id, "an SD-ID")?;
        let Value::Object(params) = params else {
            return Err(format!(
                "`structured_data.{id}` must be an object of parameters"
            ));
        };
        let _ = write!(text, "[{id}");
        for (name, value) in params {
            sd_name(name, "a parameter name")?;
            let value = match value {
                Value::String(value) => value.clone(),
                other => other.to_string(),
            };
            let _ = write!(text, " {name}=\"");
            for char in value.chars() {
                if matches!(char, '"' | '\\' | ']') {
                    text.push('\\');
                }
                text.push(char);
            }
            text.push('"');
        }
        text.push(']');
    }
    Ok(())
}

/// An SD-NAME: 1 to 32 printable ASCII characters but `=`, space, `]`, `"`.
fn sd_name(name: &str, what: &str) -> Result<(), String> {
    let valid = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|byte| (33..=126).contains(&byte) && !b"= ]\"".contains(&byte));
    match valid {
        true => Ok(()),
        false => Err(format!(
            "{name:?} is not {what} (1 to 32 printable ASCII characters, no `=`, `]` or `\"`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Local;

    use super::super::decode::to_json;
    use super::*;

    fn encoded(value: Value) -> Result<String, String> {
        from_json(value.to_string().as_bytes()).map(|data| String::from_utf8(data).unwrap())
    }

    #[test]
    fn fields_become_an_rfc_5424_message() {
        let text = encoded(serde_json::json!({
            "facility": 16, "severity": 3, "timestamp": "2026-12-04T02:19:19.954530+00:00",
            "hostname": "web-1", "appname": "billing", "procid": null, "msgid": "PAY",
            "structured_data": {"meta@1": {"a": "x\"]\\y"}}, "message": "paid"
        }))
        .unwrap();
        assert_eq!(
            text,
            r#"<131>1 2026-12-04T02:19:19.954530+00:00 web-1 billing - PAY [meta@1 a="x\"\]\\y"] paid"#
        );
        assert_eq!(encoded(serde_json::json!({})).unwrap(), "<13>1 - - - - - -");
    }

    #[test]
    fn decode_then_encode_keeps_the_fields() {
        let original = r#"<165>1 2003-10-11T22:14:15.003Z host.example.com evntslog 8710 ID47 [ex@32473 iut="3" src="a\"b"] An event"#;
        let json = to_json(original.as_bytes(), Local::now).unwrap();
        let again = from_json(&json).unwrap();
        let back = to_json(&again, Local::now).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&json).unwrap(),
            serde_json::from_slice::<Value>(&back).unwrap()
        );
    }

    #[test]
    fn what_rfc_5424_cannot_carry_is_refused() {
        for bad in [
            serde_json::json!([1]),
            serde_json::json!({"facility": 24}),
            serde_json::json!({"severity": "err"}),
            serde_json::json!({"hostname": "two words"}),
            serde_json::json!({"timestamp": "yesterday"}),
            serde_json::json!({"structured_data": {"a=b": {}}}),
            serde_json::json!({"structured_data": {"id": 3}}),
        ] {
            assert!(encoded(bad.clone()).is_err(), "{bad}");
        }
        assert!(from_json(b"not json").is_err());
    }
}
