//! A syslog message (RFC 5424 or RFC 3164, told apart per message) as a
//! JSON object, parsed by `syslog_loose`.

use chrono::{DateTime, Datelike, Local, NaiveDate, TimeZone};
use serde::ser::{Serialize, SerializeMap, Serializer};
use syslog_loose::{IncompleteDate, ProcId, StructuredElement, Variant};

/// The message's fields as a JSON object: `facility` and `severity`
/// (numbers, or null without a PRI), `timestamp` (RFC 3339, or null),
/// `hostname`, `appname`, `procid`, `msgid` (text, or null for `-`),
/// `structured_data` (SD-ID to an object of parameters) and `message`. An
/// RFC 3164 timestamp, which has no year, takes the year that puts it
/// nearest to the time `received` gives (asked only then).
pub fn to_json(
    data: &[u8],
    received: impl Fn() -> DateTime<Local> + Copy,
) -> Result<Vec<u8>, String> {
    let text =
        std::str::from_utf8(data).map_err(|error| format!("the message is not UTF-8: {error}"))?;
    super::strict::check(text)?;
    let year = move |date: IncompleteDate| nearest_year(date, received());
    let message = syslog_loose::parse_message_with_year_exact(text, year, Variant::Either)
        .map_err(|_| "not a syslog message (RFC 5424 or RFC 3164)".to_string())?;
    let pid;
    // A local RFC 3164 message (/dev/log) has no hostname: "app: text" is
    // a tag, which the parser took for one.
    let (hostname, appname) = match (message.hostname, message.appname) {
        (Some(tag), None) if text.contains(&format!(" {tag}: ")) => (None, Some(tag)),
        (hostname, appname) => (hostname, appname),
    };
    let facility = message.facility.map(|facility| facility as u8);
    let severity = message.severity.map(|severity| severity as u8);
    let fields = Fields {
        facility,
        severity,
        facility_name: facility.and_then(|number| FACILITIES.get(usize::from(number)).copied()),
        severity_name: severity.and_then(|number| SEVERITIES.get(usize::from(number)).copied()),
        timestamp: message.timestamp.map(|timestamp| timestamp.to_rfc3339()),
        hostname,
        appname,
        procid: match &message.procid {
            None => None,
            Some(ProcId::PID(number)) => {
                pid = number.to_string();
                Some(pid.as_str())
            }
            Some(ProcId::Name(name)) => Some(*name),
        },
        msgid: message.msgid,
        structured_data: Structured(&message.structured_data),
        message: message.msg,
    };
    let mut out = Vec::with_capacity(data.len() * 2 + 128);
    serde_json::to_writer(&mut out, &fields).map_err(|error| error.to_string())?;
    Ok(out)
}

/// Facilities by number, as rsyslog names them.
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severities by number, as rsyslog names them.
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The object written, field by field, borrowing from the message.
#[derive(serde::Serialize)]
struct Fields<'a> {
    facility: Option<u8>,
    severity: Option<u8>,
    facility_name: Option<&'static str>,
    severity_name: Option<&'static str>,
    timestamp: Option<String>,
    hostname: Option<&'a str>,
    appname: Option<&'a str>,
    procid: Option<&'a str>,
    msgid: Option<&'a str>,
    structured_data: Structured<'a>,
    message: &'a str,
}

/// Structured data as an object of objects, parameters unescaped.
struct Structured<'a>(&'a [StructuredElement<&'a str>]);

impl Serialize for Structured<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for element in self.0 {
            map.serialize_entry(element.id, &Params(element))?;
        }
        map.end()
    }
}

struct Params<'a>(&'a StructuredElement<&'a str>);

impl Serialize for Params<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.params.len()))?;
        for (name, value) in self.0.params() {
            map.serialize_entry(name, &value)?;
        }
        map.end()
    }
}

/// The year, of those around `received`'s, that puts a timestamp without
/// one nearest to it (a message from 31 December read on 1 January is
/// last year's); only years where the date exists (29 February) count.
fn nearest_year(date: IncompleteDate, received: DateTime<Local>) -> i32 {
    let (month, day, hour, minute, second) = date;
    let year = received.year();
    (year - 4..=year + 4)
        .filter_map(|candidate| {
            let naive = NaiveDate::from_ymd_opt(candidate, month, day)?
                .and_hms_opt(hour, minute, second)?;
            let at = Local.from_local_datetime(&naive).earliest()?;
            Some((at.signed_duration_since(received).abs(), candidate))
        })
        .min()
        .map_or(year, |(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn decoded(message: &str, received: &str) -> Result<Value, String> {
        let received = DateTime::parse_from_rfc3339(received)
            .unwrap()
            .with_timezone(&Local);
        to_json(message.as_bytes(), move || received)
            .map(|data| serde_json::from_slice(&data).unwrap())
    }

    #[test]
    fn rfc_5424_fields_become_json() {
        let value = decoded(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 8710 ID47 [exampleSDID@32473 iut="3" eventSource="App\"x\""][other@1] An application event"#,
            "2026-12-04T10:00:00Z",
        )
        .unwrap();
        assert_eq!(value["facility"], 20);
        assert_eq!(value["severity"], 5);
        assert_eq!(value["facility_name"], "local4");
        assert_eq!(value["severity_name"], "notice");
        assert_eq!(value["timestamp"], "2003-10-11T22:14:15.003+00:00");
        assert_eq!(value["hostname"], "mymachine.example.com");
        assert_eq!(value["appname"], "evntslog");
        assert_eq!(value["procid"], "8710");
        assert_eq!(value["msgid"], "ID47");
        assert_eq!(value["structured_data"]["exampleSDID@32473"]["iut"], "3");
        assert_eq!(
            value["structured_data"]["exampleSDID@32473"]["eventSource"],
            "App\"x\""
        );
        assert_eq!(value["structured_data"]["other@1"], serde_json::json!({}));
        assert_eq!(value["message"], "An application event");
    }

    #[test]
    fn nil_values_are_null() {
        let value = decoded("<13>1 - - - - - -", "2026-12-04T10:00:00Z").unwrap();
        assert_eq!(
            (&value["facility_name"], &value["severity_name"]),
            (&"user".into(), &"notice".into())
        );
        for field in ["timestamp", "hostname", "appname", "procid", "msgid"] {
            assert_eq!(value[field], Value::Null, "{field}");
        }
        assert_eq!(value["message"], "");
    }

    #[test]
    fn a_local_rfc_3164_message_has_a_tag_and_no_hostname() {
        let local = decoded("<13>Dec  7 04:18:29 app3: no pid", "2026-12-07T05:00:00Z").unwrap();
        assert_eq!(
            (&local["hostname"], &local["appname"]),
            (&Value::Null, &"app3".into())
        );
        assert_eq!(local["message"], "no pid");
        let remote = decoded(
            "<13>Dec  7 04:18:29 host app4: remote",
            "2026-12-07T05:00:00Z",
        )
        .unwrap();
        assert_eq!(
            (&remote["hostname"], &remote["appname"]),
            (&"host".into(), &"app4".into())
        );
        let pid = decoded("<13>Dec  7 04:18:29 app3[12]: pid", "2026-12-07T05:00:00Z").unwrap();
        assert_eq!(
            (&pid["hostname"], &pid["appname"]),
            (&Value::Null, &"app3".into())
        );
    }

    #[test]
    fn rfc_3164_takes_the_nearest_year() {
        let value = decoded(
            "<34>Dec 31 23:59:58 host su[12]: failed",
            "2027-01-01T00:00:03Z",
        )
        .unwrap();
        assert!(
            value["timestamp"]
                .as_str()
                .unwrap()
                .starts_with("2026-12-31"),
            "{value}"
        );
        assert_eq!(
            (value["facility"].clone(), value["severity"].clone()),
            (4.into(), 2.into())
        );
        assert_eq!(value["appname"], "su");
        assert_eq!(value["procid"], "12");
        let value = decoded("<34>Jan  1 00:00:01 host app: hi", "2026-12-31T23:59:59Z").unwrap();
        assert!(
            value["timestamp"]
                .as_str()
                .unwrap()
                .starts_with("2027-01-01"),
            "{value}"
        );
        let value = decoded("<13>Feb 29 10:00:00 host app: leap", "2026-03-01T00:00:00Z").unwrap();
        assert!(
            value["timestamp"]
                .as_str()
                .unwrap()
                .starts_with("2028-02-29"),
            "{value}"
        );
    }

    #[test]
    fn what_is_not_syslog_says_so() {
        for bad in ["hello world", "", "<999>x", "\u{0}\u{1}"] {
            assert!(decoded(bad, "2026-12-04T10:00:00Z").is_err(), "{bad:?}");
        }
        assert!(
            to_json(b"<13>\xff\xfe", Local::now)
                .unwrap_err()
                .contains("UTF-8")
        );
    }
}
