//! What `syslog_loose` lets through and decoding must not: a PRI above
//! 191 (no facility has it), and RFC 5424 structured data that is not
//! well formed (it would be dropped without a word). Checked before the
//! loose parse, on the text as it came.

/// The largest PRI: facility 23, severity 7.
const MOST_PRI: u32 = 191;

/// Why the message is refused, if it is. Bytes only, no allocation: it
/// runs on every message decoded.
pub fn check(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'<') {
        return Ok(());
    }
    let digits = bytes[1..]
        .iter()
        .take(4)
        .position(|byte| !byte.is_ascii_digit())
        .unwrap_or(0);
    if !(1..=3).contains(&digits) || bytes.get(1 + digits) != Some(&b'>') {
        return Ok(()); // not a PRI: the loose parse says what it is
    }
    let pri = bytes[1..=digits]
        .iter()
        .fold(0u32, |pri, digit| pri * 10 + u32::from(digit - b'0'));
    if pri > MOST_PRI {
        return Err(format!("PRI {pri} is above {MOST_PRI}"));
    }
    let header = &bytes[2 + digits..];
    if !header.starts_with(b"1 ") {
        return Ok(()); // RFC 3164: no structured data
    }
    // After VERSION, five fields: TIMESTAMP HOSTNAME APP-NAME PROCID MSGID.
    match memchr::memchr_iter(b' ', &header[2..]).nth(4) {
        Some(space) => structured_data(&text[2 + digits + 2 + space + 1..]),
        None => Ok(()),
    }
}

/// RFC 5424's STRUCTURED-DATA at the start of `text`: `-`, or elements
/// `[ID NAME="VALUE" ...]` with `\"`, `\\` and `\]` escaped in values.
fn structured_data(text: &str) -> Result<(), String> {
    if text.is_empty() || text == "-" || text.starts_with("- ") {
        return Ok(());
    }
    let bytes = text.as_bytes();
    if bytes[0] != b'[' {
        return Err("structured data must be `-` or elements in brackets".into());
    }
    let mut at = 0;
    while bytes.get(at) == Some(&b'[') {
        at = element(bytes, at + 1)?;
    }
    match bytes.get(at) {
        None | Some(b' ') => Ok(()),
        Some(_) => Err(format!(
            "structured data: unexpected text after an element at byte {at}"
        )),
    }
}

/// One element from after its `[`: where it ends (after its `]`).
fn element(bytes: &[u8], mut at: usize) -> Result<usize, String> {
    at = name(bytes, at, "an SD-ID")?;
    loop {
        match bytes.get(at) {
            Some(b']') => return Ok(at + 1),
            Some(b' ') => at = parameter(bytes, at + 1)?,
            Some(byte) => {
                return Err(format!(
                    "structured data: unexpected `{}` at byte {at}",
                    byte.escape_ascii()
                ));
            }
            None => return Err("structured data: an element is not closed with `]`".into()),
        }
    }
}

/// `NAME="VALUE"` from `at`: where it ends.
fn parameter(bytes: &[u8], at: usize) -> Result<usize, String> {
    let mut at = name(bytes, at, "a parameter name")?;
    if bytes.get(at..at + 2) != Some(b"=\"") {
        return Err(format!(
            "structured data: a parameter needs =\"value\" at byte {at}"
        ));
    }
    at += 2;
    loop {
        match bytes.get(at) {
            Some(b'\\') => at += 2,
            Some(b'"') => return Ok(at + 1),
            Some(b']') => {
                return Err(format!(
                    "structured data: `]` in a value must be escaped, at byte {at}"
                ));
            }
            Some(_) => at += 1,
            None => return Err("structured data: a value is not closed with `\"`".into()),
        }
    }
}

/// An SD-NAME from `at`: 1 to 32 printable ASCII characters but `=`,
/// space, `]` and `"`. Where it ends.
fn name(bytes: &[u8], start: usize, what: &str) -> Result<usize, String> {
    let end = bytes[start.min(bytes.len())..]
        .iter()
        .position(|byte| !(33..=126).contains(byte) || matches!(byte, b'=' | b']' | b'"'))
        .map_or(bytes.len(), |length| start + length);
    if end == start || end - start > 32 {
        return Err(format!(
            "structured data: {what} of 1 to 32 characters expected at byte {start}"
        ));
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_messages_pass() {
        for good in [
            "<34>1 2003-10-11T22:14:15.003Z host app - ID47 - message",
            "<165>1 2003-10-11T22:14:15.003Z host app - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\]lication\"][other@1] text",
            "<191>1 - - - - - -",
            "<13>Oct 11 22:14:15 host app: [not structured data] in RFC 3164",
            "no PRI at all",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn a_pri_above_191_and_malformed_structured_data_are_refused() {
        for (bad, reason) in [
            ("<192>1 - - - - - - text", "PRI 192 is above 191"),
            ("<999>Oct 11 22:14:15 host app: x", "PRI 999"),
            ("<34>1 - host app - ID [a=b] text", "unexpected `=`"),
            ("<34>1 - host app - ID [] text", "SD-ID"),
            ("<34>1 - host app - ID [id p=\"v\"", "not closed"),
            ("<34>1 - host app - ID [id p=\"v\" text", "=\"value\""),
            ("<34>1 - host app - ID [id p=\"v] text", "must be escaped"),
            ("<34>1 - host app - ID [id p=v] text", "=\"value\""),
            ("<34>1 - host app - ID x text", "must be `-`"),
            ("<34>1 - host app - ID [id]x text", "unexpected text"),
        ] {
            let error = check(bad).unwrap_err();
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }
}
