//! Reshaping and parsing, on `--json-lines` lines:
//!
//! - a jq program that renames two fields, deletes one and adds one, on
//!   the JSON lines: wishbone's `process.jq` (`tcp → jq → tcp`) on its
//!   quick path and, written so that it is not of the quick shape, in jaq;
//!   `jq -c` running the same program over the file;
//! - RFC 5424 messages whose text is logfmt (`user=… status=… path=…
//!   took=… pad=…`), their text parsed into fields: wishbone (`tcp →
//!   decode syslog → decode logfmt|regex field message → tcp`), rsyslog
//!   (`imtcp → mmnormalize name-value-list`, or `re_extract()` four times,
//!   `→ omfwd` of `%$!%`), and syslog-ng 3.38 (`network() → kv-parser` or
//!   `regexp-parser → tcp` of `$(format-json)`, with `log-fetch-limit(1000)
//!   log-iw-size(100000) flush-lines(1000)` and flow control, so that it
//!   holds the sender back instead of dropping), where it is unpacked.
//!
//! wishbone's and jq's output is checked line for line against what the
//! program and the parsers give in this process; rsyslog's and
//! syslog-ng's, which write their own JSON, are counted.

use std::path::Path;

use crate::data::Fingerprint;
use crate::proxy::{Proxy, free_port};
use crate::routing::Inputs;
use crate::throughput::{self, Figures, Receivers};

/// The program measured: two fields renamed, one deleted, one added.
pub const PROGRAM: &str = r#".severity = .level | .msg = .message | del(.level, .message, .service) | .pipeline = "edge""#;

/// The regular expression the regex runs parse a message's text with.
const PATTERN: &str =
    r"^user=(?P<user>\S+) status=(?P<status>\d+) path=(?P<path>\S+) took=(?P<took>\d+)";

/// Writes `lines` RFC 5424 lines of 100 bytes whose text is logfmt.
pub fn generate_logfmt(path: &Path, lines: usize) -> anyhow::Result<()> {
    crate::routing::generate_lines(
        path,
        lines,
        |number| {
            format!(
                "<134>1 2026-12-07T10:00:00Z web-{} shop - - - user=u{number} status={} path=/o/{} took={} pad=",
                number % 7,
                [200, 404, 500][number % 3],
                number % 1000,
                number % 997
            )
        },
        "",
    )
}

/// The fingerprints of what `PROGRAM` gives for every JSON line: with
/// the remaining keys in jq's order (wishbone's quick path, `jq -c`), and
/// as jaq writes it (which, deleting a key, moves the last one into its
/// place).
pub fn reshaped_of(path: &Path) -> anyhow::Result<(Fingerprint, Fingerprint)> {
    let program = wishbone_route::Program::compile(PROGRAM)?;
    anyhow::ensure!(
        program.is_quick(),
        "the program measured is of the quick shape"
    );
    let data = std::fs::read(path)?;
    let (mut quick, mut jaq) = (Fingerprint::default(), Fingerprint::default());
    let mut out = Vec::new();
    for line in data
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
    {
        for (fingerprint, in_jaq) in [(&mut quick, false), (&mut jaq, true)] {
            out.clear();
            let ran = match in_jaq {
                true => program.run_in_jaq(line, &mut out),
                false => program.run(line, &mut out),
            };
            ran.map_err(|error| anyhow::anyhow!("{error}"))?;
            for value in &mut out {
                value.push(b'\n');
                fingerprint.add_lines(value);
            }
        }
    }
    Ok((quick, jaq))
}

/// How a configuration's proxy starts, given the receiver's port.
type Start<'a> = Box<dyn Fn(u16) -> anyhow::Result<Proxy> + 'a>;

/// One repetition of every configuration `wanted` leaves in.
pub fn run_all(inputs: &Inputs, wanted: impl Fn(&str) -> bool) -> anyhow::Result<Vec<Figures>> {
    let mut runs = reshaping(inputs, &wanted)?;
    runs.extend(parsing(inputs, &wanted)?);
    Ok(runs)
}

/// `tcp → middle modules → tcp` with wishbone, sending to `port`.
fn through(inputs: &Inputs, middle: &[String], port: u16) -> anyhow::Result<Proxy> {
    let middle: Vec<&str> = middle.iter().map(String::as_str).collect();
    Proxy::wishbone(
        inputs.wishbone,
        inputs.scratch,
        &crate::routing::through(&middle, port),
        &[],
    )
}

/// The jq program on the JSON lines: wishbone's two paths, `jq -c`.
fn reshaping(inputs: &Inputs, wanted: &impl Fn(&str) -> bool) -> anyhow::Result<Vec<Figures>> {
    let jq = |program: &str| {
        format!("{{module: wishbone.process.jq, arguments: {{program: '{program}'}}}}")
    };
    let checked: [(&str, Fingerprint, Start); 2] = [
        (
            "reshape, wishbone tcp → jq → tcp",
            inputs.reshaped.0,
            Box::new(|port| through(inputs, &[jq(PROGRAM)], port)),
        ),
        (
            "reshape, wishbone, the same program run by jaq",
            inputs.reshaped.1,
            // `| .` is not of the quick shape, and holds no second
            // reference to the event (which would make jaq copy it at
            // each assignment).
            Box::new(|port| through(inputs, &[jq(&format!("{PROGRAM} | ."))], port)),
        ),
    ];
    let mut runs = Vec::new();
    for (name, expected, start) in checked {
        if wanted(name) {
            runs.push(throughput::run(
                name,
                Receivers::Tcp(1),
                inputs.json,
                expected,
                |ports| start(ports[0]),
            )?);
        }
    }
    let name = "reshape, jq -c on the file";
    if wanted(name) {
        runs.push(jq_on_file(name, inputs)?);
    }
    Ok(runs)
}

/// The syslog lines' logfmt text parsed by wishbone, rsyslog and
/// syslog-ng (where it is unpacked); the peers' lines counted.
fn parsing(inputs: &Inputs, wanted: &impl Fn(&str) -> bool) -> anyhow::Result<Vec<Figures>> {
    let syslog = "{module: wishbone.process.decode, arguments: {format: syslog}}".to_string();
    let logfmt = "{module: wishbone.process.decode, arguments: {format: logfmt, field: message}}"
        .to_string();
    let regex = format!(
        "{{module: wishbone.process.decode, arguments: {{format: regex, field: message, pattern: '{PATTERN}'}}}}"
    );
    let rsyslog_dir = inputs.scratch.join("rsyslog-parse");
    let counted: [(&str, Start); 6] = [
        (
            "parse logfmt, wishbone tcp → decode syslog → decode logfmt → tcp",
            Box::new(|port| through(inputs, &[syslog.clone(), logfmt.clone()], port)),
        ),
        (
            "parse regex, wishbone tcp → decode syslog → decode regex → tcp",
            Box::new(|port| through(inputs, &[syslog.clone(), regex.clone()], port)),
        ),
        (
            "parse logfmt, rsyslog mmnormalize name-value-list",
            Box::new(|port| rsyslog(&rsyslog_dir, port, RSYSLOG_LOGFMT)),
        ),
        (
            "parse regex, rsyslog re_extract",
            Box::new(|port| rsyslog(&rsyslog_dir, port, RSYSLOG_REGEX)),
        ),
        (
            "parse logfmt, syslog-ng kv-parser",
            Box::new(|port| syslog_ng(inputs.scratch, port, SYSLOG_NG_LOGFMT)),
        ),
        (
            "parse regex, syslog-ng regexp-parser",
            Box::new(|port| syslog_ng(inputs.scratch, port, SYSLOG_NG_REGEX)),
        ),
    ];
    let unpacked = crate::central::syslog_ng_root().exists();
    let mut runs = Vec::new();
    for (name, start) in counted {
        if !wanted(name) || (name.contains("syslog-ng") && !unpacked) {
            continue;
        }
        runs.push(throughput::run_counted(
            name,
            inputs.logfmt,
            inputs.json_lines,
            |ports| start(ports[0]),
        )?);
    }
    Ok(runs)
}

const RSYSLOG_LOGFMT: &str =
    r#"  action(type="mmnormalize" rule=["rule=:%kv:name-value-list%"] useRawMsg="off")"#;

const RSYSLOG_REGEX: &str = r#"  set $!user = re_extract($msg, "user=([^ ]+)", 0, 1, "");
  set $!status = re_extract($msg, "status=([0-9]+)", 0, 1, "");
  set $!path = re_extract($msg, "path=([^ ]+)", 0, 1, "");
  set $!took = re_extract($msg, "took=([0-9]+)", 0, 1, "");"#;

/// rsyslog parsing with `parse` (lines of RainerScript) and forwarding
/// the JSON of what it parsed, one line a message.
fn rsyslog(dir: &Path, port: u16, parse: &str) -> anyhow::Result<Proxy> {
    let input = free_port()?;
    let config = format!(
        "global(workDirectory=\"{dir}\")\nmodule(load=\"imtcp\")\nmodule(load=\"mmnormalize\")\n\
         template(name=\"fields\" type=\"string\" string=\"%$!%\\n\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{input}\" ruleset=\"parse\" supportOctetCountedFraming=\"off\")\n\
         ruleset(name=\"parse\" queue.type=\"LinkedList\" queue.size=\"100000\" queue.dequeueBatchSize=\"1024\") {{\n{parse}\n  \
         action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" template=\"fields\")\n}}\n",
        dir = dir.display()
    );
    Proxy::rsyslog_with(dir, input, &config)
}

const SYSLOG_NG_LOGFMT: &str = r#"parser p { kv-parser(prefix("kv.") template("${MESSAGE}")); };"#;

const SYSLOG_NG_REGEX: &str = r#"parser p { regexp-parser(template("${MESSAGE}") prefix("re.") patterns('^user=(?<user>\S+) status=(?<status>\d+) path=(?<path>\S+) took=(?<took>\d+)')); };"#;

/// syslog-ng parsing with `parser` and forwarding the JSON of what it
/// parsed, one line a message.
fn syslog_ng(scratch: &Path, port: u16, parser: &str) -> anyhow::Result<Proxy> {
    let dir = scratch.join("syslog-ng-parse");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let input = free_port()?;
    let config = dir.join("syslog-ng.conf");
    std::fs::write(
        &config,
        format!(
            "@version: 3.38\noptions {{ keep-hostname(yes); flush-lines(1000); log-fifo-size(100000); }};\n\
             source s {{ network(ip(\"127.0.0.1\") port({input}) transport(\"tcp\") flags(syslog-protocol) log-fetch-limit(1000) log-iw-size(100000)); }};\n\
             {parser}\n\
             destination d {{ network(\"127.0.0.1\" port({port}) transport(\"tcp\") template(\"$(format-json --scope dot-nv-pairs)\\n\")); }};\n\
             log {{ source(s); parser(p); destination(d); flags(flow-control); }};\n"
        ),
    )?;
    let command = crate::central::syslog_ng_command(&config, &dir);
    Proxy::listening_on(command, input, "syslog-ng", "syslog-ng-core (unpacked)")
}

/// `jq -c PROGRAM` over the file, its output checked like a receiver's.
fn jq_on_file(name: &str, inputs: &Inputs) -> anyhow::Result<Figures> {
    crate::routing::jq_over(name, PROGRAM, inputs, inputs.reshaped.0)
}
