//! logfmt: `key=value` pairs separated by spaces, as Go's `go-logfmt`,
//! Heroku and many services write them. Written here because no
//! maintained crate parses it (the `logfmt` crate is a 2015 sketch); the
//! rules are go-logfmt's:
//!
//! - a key is a run of bytes above space, but `=` and `"`;
//! - `key=value`: an unquoted value runs to the next space; `key="..."` is
//!   quoted, with `\"`, `\\`, `\n`, `\r`, `\t` and `\uXXXX` escapes;
//! - `key=` is the empty string; a bare `key` is `true`;
//! - a key given twice keeps its first place and its last value.

use crate::object::{Object, Text};

/// The pairs of one logfmt line, as an object of string values (`true`
/// for a bare key); an error says what is wrong and where.
pub fn decode(line: &str) -> Result<Object<'_>, String> {
    let bytes = line.as_bytes();
    let mut object = Object::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b' ' || bytes[at] == b'\t' {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && bytes[at] > b' ' && bytes[at] != b'=' && bytes[at] != b'"' {
            at += 1;
        }
        if at == start {
            return Err(format!(
                "logfmt: `{}` at byte {start} where a key belongs",
                char::from(bytes[start])
            ));
        }
        let key = &line[start..at];
        if at >= bytes.len() || bytes[at] != b'=' {
            if at < bytes.len() && bytes[at] == b'"' {
                return Err(format!("logfmt: a quote inside the key at byte {at}"));
            }
            object.set(key, Text::Raw("true"));
            continue;
        }
        at += 1;
        let value = if at < bytes.len() && bytes[at] == b'"' {
            let (value, end) = quoted(line, at)?;
            at = end;
            Text::string(&value)
        } else {
            let from = at;
            while at < bytes.len() && bytes[at] != b' ' && bytes[at] != b'\t' {
                if bytes[at] == b'"' {
                    return Err(format!("logfmt: a quote inside the value at byte {at}"));
                }
                at += 1;
            }
            Text::string(&line[from..at])
        };
        object.set(key, value);
    }
    Ok(object)
}

/// The quoted value starting at `open` (its `"`), and where it ends.
fn quoted(line: &str, open: usize) -> Result<(String, usize), String> {
    let mut value = String::new();
    let mut chars = line[open + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '"' => return Ok((value, open + 1 + offset + 1)),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('"') => value.push('"'),
                Some('\\') => value.push('\\'),
                Some('/') => value.push('/'),
                Some('n') => value.push('\n'),
                Some('r') => value.push('\r'),
                Some('t') => value.push('\t'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                    let code = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("logfmt: `\\u{hex}` is no character"))?;
                    value.push(code);
                }
                Some(other) => return Err(format!("logfmt: unknown escape `\\{other}`")),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err(format!("logfmt: the quote at byte {open} is never closed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(line: &str) -> String {
        String::from_utf8(decode(line).unwrap().to_bytes()).unwrap()
    }

    #[test]
    fn pairs_quoted_values_and_bare_keys() {
        assert_eq!(
            json(r#"level=info msg="request done" duration=42ms ok path=/a=b empty="#),
            r#"{"level":"info","msg":"request done","duration":"42ms","ok":true,"path":"/a=b","empty":""}"#
        );
        assert_eq!(
            json(r#"msg="say \"hi\"\n\u00e9" a=1 a=2"#),
            r#"{"msg":"say \"hi\"\né","a":"2"}"#
        );
        assert_eq!(json("  "), "{}");
    }

    #[test]
    fn what_is_not_logfmt_is_said_where() {
        for (line, said) in [
            ("=value", "where a key belongs"),
            (r#"a="open"#, "never closed"),
            (r#"a=b"c"#, "quote inside the value"),
            (r#"a"b=1"#, "quote inside the key"),
            (r#"a="\q""#, "unknown escape"),
        ] {
            let error = decode(line).unwrap_err();
            assert!(error.contains(said), "{line}: {error}");
        }
    }
}
