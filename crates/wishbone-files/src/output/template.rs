//! Templates of the file output: text with `{{ .field }}` parts, filled
//! from an event's JSON object, either as a path (each value made safe for
//! one path segment) or as a line.

use std::borrow::Cow;

use super::object::{Found, Object};

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A jq path (the names from the top of the object down), and the
    /// text for a missing or null value (`// "text"`).
    Field(Vec<String>, Option<String>),
}

/// The longest path segment most file systems take.
const MOST_SEGMENT_BYTES: usize = 255;

impl Template {
    /// Reads `text`: `{{ .name }}`, `{{ .a.b }}` and `{{ ."a name" }}` are
    /// fields; everything else is taken as it is.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` without `}}}}` in `{text}`"))?;
            parts.push(field(after[..close].trim())?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// Whether it has fields to fill.
    pub fn has_fields(&self) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, Part::Field(..)))
    }

    /// The text before the first field: the directory every filled path
    /// stays within.
    pub fn fixed_start(&self) -> &str {
        match self.parts.first() {
            Some(Part::Text(text)) => text,
            _ => "",
        }
    }

    /// Filled as a path: each value made safe for one path segment (no
    /// `/`, no control characters or NUL, not `.` or `..`); a missing
    /// field, one that is not text, a number or a boolean, or a segment
    /// longer than 255 bytes is an error.
    pub fn path(&self, event: &Object<'_>) -> Result<String, String> {
        let mut path = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => path.push_str(text),
                Part::Field(names, default) => {
                    let value = match (event.lookup(names), default) {
                        (Found::Missing, Some(default)) => Cow::Borrowed(default.as_str()),
                        (value, _) => scalar(value, names)?,
                    };
                    path.push_str(&segment_safe(&value));
                }
            }
        }
        if let Some(long) = path
            .split('/')
            .find(|segment| segment.len() > MOST_SEGMENT_BYTES)
        {
            return Err(format!(
                "a path segment of {} bytes (at most {MOST_SEGMENT_BYTES}): {}...",
                long.len(),
                long.chars().take(40).collect::<String>()
            ));
        }
        Ok(path)
    }

    /// Filled as a line: values as they are, `-` for a missing field, an
    /// object or array as JSON.
    pub fn line(&self, event: &Object<'_>, line: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                Part::Text(text) => line.extend_from_slice(text.as_bytes()),
                Part::Field(names, default) => match event.lookup(names) {
                    Found::Missing => {
                        line.extend_from_slice(default.as_deref().unwrap_or("-").as_bytes())
                    }
                    Found::Text(text) => line.extend_from_slice(text.as_bytes()),
                    Found::Json(json) => line.extend_from_slice(json.as_bytes()),
                },
            }
        }
    }
}

/// `.a.b`, with `// "text"` for a missing or null value.
fn field(text: &str) -> Result<Part, String> {
    let Some((path, default)) = text.split_once("//") else {
        return Ok(Part::Field(field_path(text)?, None));
    };
    let default = default
        .trim()
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|inner| !inner.contains('"'))
        .ok_or_else(|| format!("after `//` in `{{{{ {text} }}}}` comes a \"quoted text\""))?;
    Ok(Part::Field(
        field_path(path.trim())?,
        Some(default.to_string()),
    ))
}

/// `.a.b` or `."a b"` as names.
fn field_path(text: &str) -> Result<Vec<String>, String> {
    let bad = || format!("`{{{{ {text} }}}}` is not a field such as `.hostname` or `.a.\"b c\"`");
    let mut names = Vec::new();
    let mut rest = text.strip_prefix('.').ok_or_else(bad)?;
    loop {
        let (name, after) = match rest.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').ok_or_else(bad)?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => {
                let end = rest
                    .find(|character: char| !(character.is_alphanumeric() || character == '_'))
                    .unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        if name.is_empty() {
            return Err(bad());
        }
        names.push(name.to_string());
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None if after.is_empty() => return Ok(names),
            None => return Err(bad()),
        }
    }
}

/// A value as text for a path; an error for one that is missing, null,
/// an object or an array.
fn scalar<'a>(value: Found<'a>, names: &[String]) -> Result<Cow<'a, str>, String> {
    let field = || format!(".{}", names.join("."));
    match value {
        Found::Text(text) => Ok(text),
        Found::Json(json) if !json.starts_with(['{', '[']) => Ok(Cow::Borrowed(json)),
        Found::Json(_) => Err(format!("`{}` is not text or a number", field())),
        Found::Missing => Err(format!("the event has no `{}` for the path", field())),
    }
}

/// A value that cannot leave its path segment: `/`, NUL and control
/// characters become `_`, as does an empty value and one made of dots only
/// (`.`, `..`).
fn segment_safe(value: &str) -> String {
    let safe: String = value
        .chars()
        .map(
            |character| match character == '/' || character.is_control() {
                true => '_',
                false => character,
            },
        )
        .collect();
    if safe.is_empty() || safe.chars().all(|character| character == '.') {
        return "_".repeat(safe.len().max(1));
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// `template.path` of the event `value`.
    fn path(template: &Template, value: Value) -> Result<String, String> {
        let data = value.to_string();
        template.path(&Object::parse(data.as_bytes()).unwrap())
    }

    /// `template.line` of the event `value`.
    fn line(template: &Template, value: Value) -> Vec<u8> {
        let data = value.to_string();
        let mut line = Vec::new();
        template.line(&Object::parse(data.as_bytes()).unwrap(), &mut line);
        line
    }

    #[test]
    fn fields_are_filled_from_the_event_and_cannot_leave_their_segment() {
        let template = Template::parse("/var/log/remote/{{ .hostname }}/{{.appname}}.log").unwrap();
        assert_eq!(template.fixed_start(), "/var/log/remote/");
        let event = json!({"hostname": "web1", "appname": "nginx"});
        assert_eq!(
            path(&template, event.clone()).unwrap(),
            "/var/log/remote/web1/nginx.log"
        );
        let hostile = json!({"hostname": "../../etc", "appname": ".."});
        assert_eq!(
            path(&template, hostile.clone()).unwrap(),
            "/var/log/remote/.._.._etc/__.log"
        );
        let hostile = json!({"hostname": "a/b\u{0}c\nd", "appname": ""});
        assert_eq!(
            path(&template, hostile.clone()).unwrap(),
            "/var/log/remote/a_b_c_d/_.log"
        );
        let defaulted =
            Template::parse(r#"/l/{{ .hostname // "local" }}/{{ .appname // ".." }}"#).unwrap();
        assert_eq!(
            path(&defaulted, json!({"appname": null})).unwrap(),
            "/l/local/__",
            "a default is made safe too"
        );
        let number = json!({"hostname": 7, "appname": true});
        assert_eq!(
            path(&template, number.clone()).unwrap(),
            "/var/log/remote/7/true.log"
        );
    }

    #[test]
    fn a_missing_field_or_an_overlong_segment_cannot_be_a_path() {
        let template = Template::parse("/logs/{{ .hostname }}/{{ .a.\"b c\" }}").unwrap();
        let error = path(&template, json!({"hostname": "h"})).unwrap_err();
        assert!(error.contains("no `.a.b c`"), "{error}");
        let error = path(&template, json!({"hostname": null, "a": {"b c": 1}})).unwrap_err();
        assert!(error.contains("no `.hostname`"), "{error}");
        let long = "x".repeat(10_000);
        let error = path(&template, json!({"hostname": long, "a": {"b c": "d"}})).unwrap_err();
        assert!(error.contains("10000 bytes"), "{error}");
        assert_eq!(
            path(&template, json!({"hostname": "h", "a": {"b c": "d"}})).unwrap(),
            "/logs/h/d"
        );
        let error = path(&template, json!({"hostname": {"x": 1}, "a": {"b c": "d"}})).unwrap_err();
        assert!(error.contains("not text or a number"), "{error}");
    }

    #[test]
    fn lines_take_values_as_they_are_and_bad_templates_are_refused() {
        let template =
            Template::parse("{{ .timestamp }} {{ .hostname }} {{ .appname }}: {{ .message }}")
                .unwrap();
        let filled = line(
            &template,
            json!({"hostname": "h", "appname": null, "message": "a/b"}),
        );
        assert_eq!(filled, b"- h -: a/b");
        let defaulted = Template::parse(r#"{{ .a // "none" }}"#).unwrap();
        assert_eq!(line(&defaulted, json!({})), b"none");
        for bad in [
            "{{ hostname }}",
            "{{ .a..b }}",
            "{{ .a",
            "{{ .a b }}",
            "{{ . }}",
            "{{ .a // b }}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        assert!(!Template::parse("/plain/file.log").unwrap().has_fields());
    }
}
