//! `timestamp: {field, format}` of `wishbone.process.decode`: a field's
//! text read with a strftime format (chrono's) and written back as RFC
//! 3339, so that `"07/Dec/2026:10:00:00 +0100"` becomes
//! `"2026-12-07T10:00:00+01:00"`. A format without an offset (`%z`) reads
//! the time in the local time zone.

use chrono::{DateTime, Local, NaiveDateTime, TimeZone};
use serde::Deserialize;
use wishbone_codecs::object::{Object, Text};

/// Which field, read how.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TimestampRule {
    /// The field holding the time.
    pub field: String,
    /// How it is written, in strftime's terms.
    pub format: String,
}

impl TimestampRule {
    /// Rewrites the field as RFC 3339; an error when it is missing, not
    /// text, or not in the format.
    pub(crate) fn apply(&self, object: &mut Object<'_>) -> Result<(), String> {
        let field = &self.field;
        let value = object
            .get_mut(field)
            .ok_or_else(|| format!("no field `{field}` to read a time from"))?;
        let text = value
            .to_text()
            .ok_or_else(|| format!("the field `{field}` is not text"))?;
        *value = Text::string(&self.parse(&text)?);
        Ok(())
    }

    /// `text` in RFC 3339.
    fn parse(&self, text: &str) -> Result<String, String> {
        if let Ok(time) = DateTime::parse_from_str(text, &self.format) {
            return Ok(time.to_rfc3339());
        }
        let naive = NaiveDateTime::parse_from_str(text, &self.format).map_err(|error| {
            format!("`{text}` is not a time written `{}`: {error}", self.format)
        })?;
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|time| time.to_rfc3339())
            .ok_or_else(|| format!("`{text}` does not exist in the local time zone"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(format: &str) -> TimestampRule {
        TimestampRule {
            field: "time".into(),
            format: format.into(),
        }
    }

    #[test]
    fn a_time_in_its_format_becomes_rfc_3339() {
        let mut object = Object::parse(r#"{"time":"07/Dec/2026:10:00:00 +0100","n":1}"#).unwrap();
        rule("%d/%b/%Y:%H:%M:%S %z").apply(&mut object).unwrap();
        assert_eq!(
            object.to_bytes(),
            br#"{"time":"2026-12-07T10:00:00+01:00","n":1}"#
        );
        let mut local = Object::parse(r#"{"time":"2026-12-07 10:00:00"}"#).unwrap();
        rule("%Y-%m-%d %H:%M:%S").apply(&mut local).unwrap();
        let written = local.get("time").unwrap().to_text().unwrap();
        assert!(written.starts_with("2026-12-07T10:00:00"), "{written}");
    }

    #[test]
    fn a_missing_or_malformed_time_is_an_error() {
        let format = rule("%Y-%m-%d %H:%M:%S");
        for (event, said) in [
            (r#"{"n":1}"#, "no field `time`"),
            (r#"{"time":5}"#, "not text"),
            (r#"{"time":"yesterday"}"#, "is not a time written"),
        ] {
            let mut object = Object::parse(event).unwrap();
            let error = format.apply(&mut object).unwrap_err();
            assert!(error.contains(said), "{event}: {error}");
        }
    }
}
