//! Lines joined into one event: a Java stack trace, a Python traceback, a
//! Go panic, or any group two regular expressions describe.
//!
//! A line matching `start_pattern` opens a group (a line that opens none
//! is an event alone). Each line after it (not the line that opened it) is
//! tested against `condition_pattern`, and `mode` says what a match means:
//!
//! | mode | the line joins the group | and the group ends |
//! |---|---|---|
//! | `continue_through` | if it matches | at the first line that does not (that line is looked at anew) |
//! | `continue_past` | always | after the first line that does not match |
//! | `halt_before` | if it does not match | at the first line that matches (looked at anew) |
//! | `halt_with` | always | after the first line that matches |
//!
//! The lines of a group are joined with `\n`. A group open for longer than
//! `timeout` is sent as it is; one that would grow past `max_bytes` keeps
//! its first `max_bytes` and the rest of it is dropped, counted in
//! [`Grouper::cut`]. Each group remembers where its first line started,
//! so that a reader checkpoints no further than the first line of a group
//! still open.

use std::time::{Duration, Instant};

use bytes::Bytes;
use regex::bytes::Regex;
use serde::Deserialize;

/// What a line that matches `condition_pattern` means.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Lines that match join; the first that does not ends the group.
    ContinueThrough,
    /// Lines that match join, and the first that does not joins and ends.
    ContinuePast,
    /// Lines that do not match join; the first that does starts anew.
    HaltBefore,
    /// Lines that do not match join; the first that does joins and ends.
    HaltWith,
}

/// How lines are grouped.
#[derive(Clone, Debug)]
pub struct Rules {
    pub start: Regex,
    pub condition: Regex,
    pub mode: Mode,
    pub timeout: Duration,
    pub max_bytes: usize,
}

/// The ready-made rules: `java`, `python` and `go`.
pub const PRESETS: [&str; 3] = ["java", "python", "go"];

impl Rules {
    /// Rules from the patterns; an error names the pattern that is wrong.
    pub fn new(
        start: &str,
        condition: &str,
        mode: Mode,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Self, String> {
        let compile = |name: &str, pattern: &str| {
            Regex::new(pattern).map_err(|error| format!("{name}: {error}"))
        };
        Ok(Self {
            start: compile("start_pattern", start)?,
            condition: compile("condition_pattern", condition)?,
            mode,
            timeout,
            max_bytes,
        })
    }

    /// A ready-made set: `java` (a line that does not begin with a space,
    /// then the exception, `at` frames, `... N more`, `Caused by:` and
    /// `Suppressed:` sections), `python` (`Traceback (most recent call
    /// last):` to the exception's line), `go` (`panic:` or `fatal
    /// error:`, then goroutines, frames, blank lines and `exit status`).
    pub fn preset(name: &str, timeout: Duration, max_bytes: usize) -> Option<Self> {
        let (start, condition, mode) = match name {
            "java" => (
                r"^[^\s]",
                r"^\s|^Caused by:|^Suppressed:|^[\w$.]+(Exception|Error|Throwable)(: |$)|^\.\.\. \d+ more",
                Mode::ContinueThrough,
            ),
            "python" => (
                r"^Traceback \(most recent call last\):",
                r"^\S",
                Mode::HaltWith,
            ),
            "go" => (
                r"^(panic|fatal error): ",
                r"^$|^\s|^goroutine \d+ \[|^[\w./*()\[\]-]+\(.*\)$|^created by |^exit status|^\[signal ",
                Mode::ContinueThrough,
            ),
            _ => return None,
        };
        Self::new(start, condition, mode, timeout, max_bytes).ok()
    }
}

/// The `multiline` argument of an input: a ready-made set by name, or the
/// rules in full.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Config {
    /// `java`, `python` or `go`.
    Preset(String),
    /// The patterns, the mode and the bounds.
    Rules {
        start_pattern: String,
        condition_pattern: String,
        mode: Mode,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
        #[serde(default = "default_max_bytes")]
        max_bytes: usize,
    },
}

fn default_timeout_ms() -> u64 {
    1000
}

fn default_max_bytes() -> usize {
    1024 * 1024
}

impl Config {
    /// The rules an input's optional `multiline` argument says, if given.
    pub fn rules_of(config: Option<&Config>) -> Result<Option<Rules>, String> {
        config.map(Config::rules).transpose()
    }

    /// The rules this says; an error names what is wrong.
    pub fn rules(&self) -> Result<Rules, String> {
        match self {
            Config::Preset(name) => Rules::preset(
                name,
                Duration::from_millis(default_timeout_ms()),
                default_max_bytes(),
            )
            .ok_or_else(|| format!("`{name}` is none of {}", PRESETS.join(", "))),
            Config::Rules {
                start_pattern,
                condition_pattern,
                mode,
                timeout_ms,
                max_bytes,
            } => {
                if *max_bytes == 0 || *timeout_ms == 0 {
                    return Err("timeout_ms and max_bytes must be above 0".into());
                }
                Rules::new(
                    start_pattern,
                    condition_pattern,
                    *mode,
                    Duration::from_millis(*timeout_ms),
                    *max_bytes,
                )
            }
        }
    }
}

/// One event made of lines, and where its first line started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grouped {
    pub data: Bytes,
    pub start: u64,
}

/// A group being gathered.
#[derive(Debug)]
struct Open {
    data: Vec<u8>,
    start: u64,
    opened: Instant,
    /// Lines were dropped for `max_bytes`.
    cut: bool,
}

/// Groups the lines of one stream (a file, a connection) in order.
#[derive(Debug)]
pub struct Grouper {
    rules: Rules,
    open: Option<Open>,
    cut: u64,
}

/// What a line does to the open group.
enum Decision {
    Join,
    JoinAndEnd,
    EndBefore,
}

impl Grouper {
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            open: None,
            cut: 0,
        }
    }

    /// Takes the next line, which starts at `start`; the events it
    /// finishes go to `out`.
    pub fn push(&mut self, line: &[u8], start: u64, now: Instant, out: &mut Vec<Grouped>) {
        if let Some(open) = &mut self.open {
            let matched = self.rules.condition.is_match(line);
            let decision = match (self.rules.mode, matched) {
                (Mode::ContinueThrough, true) | (Mode::ContinuePast, true) => Decision::Join,
                (Mode::HaltBefore, false) | (Mode::HaltWith, false) => Decision::Join,
                (Mode::ContinuePast, false) | (Mode::HaltWith, true) => Decision::JoinAndEnd,
                (Mode::ContinueThrough, false) | (Mode::HaltBefore, true) => Decision::EndBefore,
            };
            match decision {
                Decision::Join => {
                    self.cut += u64::from(join(open, line, self.rules.max_bytes));
                    return;
                }
                Decision::JoinAndEnd => {
                    self.cut += u64::from(join(open, line, self.rules.max_bytes));
                    self.flush(out);
                    return;
                }
                Decision::EndBefore => self.flush(out),
            }
        }
        if self.rules.start.is_match(line) {
            let mut open = Open {
                data: Vec::with_capacity(line.len() * 4),
                start,
                opened: now,
                cut: false,
            };
            self.cut += u64::from(join(&mut open, line, self.rules.max_bytes));
            self.open = Some(open);
        } else {
            out.push(Grouped {
                data: Bytes::copy_from_slice(line),
                start,
            });
        }
    }

    /// Sends the open group, if any.
    pub fn flush(&mut self, out: &mut Vec<Grouped>) {
        if let Some(open) = self.open.take() {
            out.push(Grouped {
                data: Bytes::from(open.data),
                start: open.start,
            });
        }
    }

    /// Sends the open group if it has been open for the timeout by `now`.
    pub fn flush_expired(&mut self, now: Instant, out: &mut Vec<Grouped>) {
        if self.deadline().is_some_and(|deadline| deadline <= now) {
            self.flush(out);
        }
    }

    /// When the open group is to be sent whatever comes.
    pub fn deadline(&self) -> Option<Instant> {
        self.open
            .as_ref()
            .map(|open| open.opened + self.rules.timeout)
    }

    /// Where the open group's first line started.
    pub fn open_start(&self) -> Option<u64> {
        self.open.as_ref().map(|open| open.start)
    }

    /// Groups cut for `max_bytes` so far.
    pub fn cut(&self) -> u64 {
        self.cut
    }
}

/// Adds `line` to the group, up to `max_bytes` in all; true when this is
/// the first line of the group that did not fit whole.
fn join(open: &mut Open, line: &[u8], max_bytes: usize) -> bool {
    let separator = usize::from(!open.data.is_empty());
    let room = max_bytes.saturating_sub(open.data.len() + separator);
    if open.cut {
        return false;
    }
    if separator == 1 && room > 0 {
        open.data.push(b'\n');
    }
    let taken = line.len().min(room);
    open.data.extend_from_slice(&line[..taken]);
    if taken < line.len() {
        open.cut = true;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(rules: Rules, lines: &[&str]) -> Vec<String> {
        let mut grouper = Grouper::new(rules);
        let mut out = Vec::new();
        let now = Instant::now();
        for (index, line) in lines.iter().enumerate() {
            grouper.push(line.as_bytes(), index as u64, now, &mut out);
        }
        grouper.flush(&mut out);
        out.iter()
            .map(|grouped| String::from_utf8(grouped.data.to_vec()).unwrap())
            .collect()
    }

    fn rules(start: &str, condition: &str, mode: Mode) -> Rules {
        Rules::new(start, condition, mode, Duration::from_secs(1), 1 << 20).unwrap()
    }

    #[test]
    fn the_four_modes() {
        let lines = ["a", " b", " c", "d", "e", " f"];
        assert_eq!(
            group(rules(r"^\S", r"^\s", Mode::ContinueThrough), &lines),
            ["a\n b\n c", "d", "e\n f"]
        );
        let lines = ["one \\", "two \\", "three", "four"];
        assert_eq!(
            group(rules(r".", r"\\$", Mode::ContinuePast), &lines),
            ["one \\\ntwo \\\nthree", "four"]
        );
        let lines = ["BEGIN 1", "x", "y", "BEGIN 2", "z"];
        assert_eq!(
            group(rules(r"^BEGIN", r"^BEGIN", Mode::HaltBefore), &lines),
            ["BEGIN 1\nx\ny", "BEGIN 2\nz"]
        );
        // The line that opens a group is not tested against the condition.
        let lines = ["stmt a", "b;", "stmt c;", "d;", "loose"];
        assert_eq!(
            group(rules(r"^stmt", r";$", Mode::HaltWith), &lines),
            ["stmt a\nb;", "stmt c;\nd;", "loose"]
        );
    }

    #[test]
    fn a_java_trace_with_its_causes_is_one_event() {
        let java = Rules::preset("java", Duration::from_secs(1), 1 << 20).unwrap();
        let lines = [
            "2026-12-07 10:00:00 ERROR request 17 failed",
            "java.lang.IllegalStateException: boom",
            "\tat com.example.Service.handle(Service.java:42)",
            "Caused by: java.io.IOException: disk",
            "\tat com.example.Disk.write(Disk.java:7)",
            "\t... 2 more",
            "2026-12-07 10:00:01 INFO next",
        ];
        let groups = group(java, &lines);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0], lines[..6].join("\n"));
    }

    #[test]
    fn python_and_go_presets() {
        let python = Rules::preset("python", Duration::from_secs(1), 1 << 20).unwrap();
        let lines = [
            "Traceback (most recent call last):",
            "  File \"x.py\", line 1, in <module>",
            "    foo()",
            "ValueError: bad",
            "next line",
        ];
        assert_eq!(
            group(python, &lines),
            [lines[..4].join("\n"), lines[4].to_string()]
        );
        let go = Rules::preset("go", Duration::from_secs(1), 1 << 20).unwrap();
        let lines = [
            "panic: runtime error: index out of range [3] with length 3",
            "",
            "goroutine 1 [running]:",
            "main.main()",
            "\t/tmp/main.go:5 +0x1d",
            "exit status 2",
            "level=info msg=next",
        ];
        assert_eq!(
            group(go, &lines),
            [lines[..6].join("\n"), lines[6].to_string()]
        );
        assert!(Rules::preset("cobol", Duration::ZERO, 1).is_none());
    }

    #[test]
    fn a_group_is_cut_at_max_bytes_and_sent_at_its_deadline() {
        let mut grouper = Grouper::new(
            Rules::new(
                r"^\S",
                r"^\s",
                Mode::ContinueThrough,
                Duration::from_millis(100),
                10,
            )
            .unwrap(),
        );
        let now = Instant::now();
        let mut out = Vec::new();
        for (index, line) in ["start", " 12345", " more", " more"].iter().enumerate() {
            grouper.push(line.as_bytes(), index as u64 * 10, now, &mut out);
        }
        assert!(out.is_empty());
        assert_eq!(grouper.open_start(), Some(0));
        assert_eq!(grouper.cut(), 1);
        grouper.flush_expired(now + Duration::from_millis(50), &mut out);
        assert!(out.is_empty());
        grouper.flush_expired(now + Duration::from_millis(100), &mut out);
        assert_eq!(
            out,
            [Grouped {
                data: Bytes::from_static(b"start\n 123"),
                start: 0
            }]
        );
        assert_eq!(grouper.open_start(), None);
    }
}
