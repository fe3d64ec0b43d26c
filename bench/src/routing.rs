//! Routing by content, on 100-byte JSON lines one in ten of which has
//! `"level":"error"`: wishbone's filter (`tcp → filter → tcp`) beside
//! rsyslog doing the same (`imtcp → mmjsonparse → if $!level == "error"
//! then omfwd`) and `jq -c 'select(.level == "error")'` reading the file;
//! and wishbone decoding 100-byte RFC 5424 lines into JSON objects.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::data::{Fingerprint, LINE_LENGTH};
use crate::proxy::Proxy;
use crate::throughput::{self, Figures, Receivers};

/// The condition every filter here applies.
const CONDITION: &str = r#".level == "error""#;

/// Writes `lines` JSON lines of exactly 100 bytes, every tenth an error,
/// unless a file of the right size is there.
pub fn generate_json(path: &Path, lines: usize) -> anyhow::Result<()> {
    generate_lines(
        path,
        lines,
        |number| {
            let level = if number % 10 == 0 { "error" } else { "info" };
            format!(
                r#"{{"id":{number},"level":"{level}","service":"billing","message":"served in {} ms"#,
                number % 997
            )
        },
        "\"}",
    )
}

/// Writes `lines` RFC 5424 lines of exactly 100 bytes.
pub fn generate_syslog(path: &Path, lines: usize) -> anyhow::Result<()> {
    generate_lines(
        path,
        lines,
        |number| {
            format!(
                "<131>1 2026-12-04T10:00:{:02}.125+00:00 web-{} billing {number} PAY - payment",
                number % 60,
                number % 7
            )
        },
        "",
    )
}

/// Lines of `start(number)`, padded with dots, then `end`, 100 bytes with
/// the newline.
pub(crate) fn generate_lines(
    path: &Path,
    lines: usize,
    start: impl Fn(usize) -> String,
    end: &str,
) -> anyhow::Result<()> {
    if std::fs::metadata(path).is_ok_and(|meta| meta.len() == (lines * LINE_LENGTH) as u64) {
        return Ok(());
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for number in 0..lines {
        let start = start(number);
        let padding = LINE_LENGTH - 1 - start.len() - end.len();
        writeln!(out, "{start}{}{end}", ".".repeat(padding))?;
    }
    out.flush()?;
    Ok(())
}

/// The fingerprint of the lines a filter on [`CONDITION`] passes.
pub fn errors_of(path: &Path) -> anyhow::Result<Fingerprint> {
    let data = std::fs::read(path)?;
    let mut fingerprint = Fingerprint::default();
    for line in data.split_inclusive(|byte| *byte == b'\n') {
        if memchr::memmem::find(line, br#""level":"error""#).is_some() {
            fingerprint.add_lines(line);
        }
    }
    Ok(fingerprint)
}

/// The fingerprint of what decoding every line gives.
pub fn decoded_of(path: &Path) -> anyhow::Result<Fingerprint> {
    let data = std::fs::read(path)?;
    let mut fingerprint = Fingerprint::default();
    let now = chrono::Local::now();
    for line in data
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
    {
        let mut decoded = wishbone_codecs::syslog::decode::to_json(line, move || now)
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        decoded.push(b'\n');
        fingerprint.add_lines(&decoded);
    }
    Ok(fingerprint)
}

/// A tcp input, the `middle` modules in a row (module lines), a tcp
/// output; a queueselect among them sends on from its queue `on`.
pub(crate) fn through(middle: &[&str], port: u16) -> String {
    let mut text = "modules:\n  input: {module: wishbone.input.tcp, arguments: {address: 127.0.0.1, port: 0}}\n".to_string();
    for (index, module) in middle.iter().enumerate() {
        text += &format!("  step{index}: {module}\n");
    }
    text += &format!(
        "  output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}}}}}\nroutingtable:\n"
    );
    let mut previous = "input.outbox".to_string();
    for (index, module) in middle.iter().enumerate() {
        text += &format!("  - {previous} -> step{index}.inbox\n");
        let queue = if module.contains("queueselect") {
            "on"
        } else {
            "outbox"
        };
        previous = format!("step{index}.{queue}");
    }
    text + &format!("  - {previous} -> output.inbox\n")
}

/// rsyslog filtering on a parsed JSON field, forwarding the raw line.
fn rsyslog_filter(dir: &Path, input_port: u16, port: u16) -> String {
    format!(
        "global(workDirectory=\"{dir}\")\nmodule(load=\"imtcp\")\nmodule(load=\"mmjsonparse\")\n\
         template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{input_port}\" ruleset=\"fwd\" supportOctetCountedFraming=\"off\")\n\
         ruleset(name=\"fwd\" queue.type=\"LinkedList\" queue.size=\"100000\") {{\n  \
         action(type=\"mmjsonparse\" cookie=\"\" useRawMsg=\"on\")\n  \
         if $!level == \"error\" then {{\n    \
         action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" template=\"raw\")\n  }}\n}}\n",
        dir = dir.display()
    )
}

/// What the routing runs are given.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub wishbone: &'a Path,
    pub scratch: &'a Path,
    pub json: &'a Path,
    pub json_lines: u64,
    pub errors: Fingerprint,
    pub syslog: &'a Path,
    pub decoded: Fingerprint,
    /// What the reshaping program gives for the JSON lines, in jq's key
    /// order and in jaq's.
    pub reshaped: (Fingerprint, Fingerprint),
    /// RFC 5424 lines whose text is logfmt.
    pub logfmt: &'a Path,
}

/// How a configuration's proxy starts, given the receiver's port.
type Start<'a> = Box<dyn Fn(u16) -> anyhow::Result<Proxy> + 'a>;

/// One repetition of every routing configuration `wanted` leaves in.
pub fn run_all(inputs: &Inputs, wanted: impl Fn(&str) -> bool) -> anyhow::Result<Vec<Figures>> {
    let filter = |condition: &str| {
        format!("{{module: wishbone.flow.filter, arguments: {{condition: '{condition}'}}}}")
    };
    let quick = filter(CONDITION);
    let slow = filter(&format!("select({CONDITION})"));
    let decode_json = "{module: wishbone.process.decode, arguments: {format: json}}";
    let select = r#"{module: wishbone.flow.queueselect, arguments: {rules: [{queue: on, condition: '.service == "billing"'}]}}"#;
    let decode_syslog = "{module: wishbone.process.decode, arguments: {format: syslog}}";
    let on = |middle: &[&str], port: u16| {
        Proxy::wishbone(inputs.wishbone, inputs.scratch, &through(middle, port), &[])
    };
    let rsyslog_dir = inputs.scratch.join("rsyslog-filter");
    let json = (inputs.json, inputs.json_lines, inputs.errors);
    let syslog = (inputs.syslog, inputs.decoded.lines, inputs.decoded);
    let configurations: [(&str, _, Start); 5] = [
        (
            "filter, wishbone tcp → filter → tcp",
            json,
            Box::new(|port| on(&[&quick], port)),
        ),
        (
            "filter, wishbone tcp → decode json → filter → queueselect → tcp",
            json,
            Box::new(|port| on(&[decode_json, &quick, select], port)),
        ),
        (
            "filter, wishbone, the same condition run by jaq",
            json,
            Box::new(|port| on(&[&slow], port)),
        ),
        (
            "filter, rsyslog imtcp → mmjsonparse → if → omfwd",
            json,
            Box::new(|port| {
                let input = crate::proxy::free_port()?;
                Proxy::rsyslog_with(
                    &rsyslog_dir,
                    input,
                    &rsyslog_filter(&rsyslog_dir, input, port),
                )
            }),
        ),
        (
            "decode syslog, wishbone tcp → decode → tcp",
            syslog,
            Box::new(|port| on(&[decode_syslog], port)),
        ),
    ];
    let mut runs = Vec::new();
    for (name, (data, sent, expected), start) in configurations {
        if wanted(name) {
            runs.push(throughput::run_counting(
                name,
                Receivers::Tcp(1),
                data,
                sent,
                expected,
                |ports| start(ports[0]),
            )?);
        }
    }
    let name = "filter, jq -c on the file";
    if wanted(name) {
        runs.push(jq(name, inputs)?);
    }
    Ok(runs)
}

/// `jq -c 'select(…)'` over the file, its output checked like a receiver's.
fn jq(name: &str, inputs: &Inputs) -> anyhow::Result<Figures> {
    jq_over(name, &format!("select({CONDITION})"), inputs, inputs.errors)
}

/// `jq -c PROGRAM` over the JSON lines, its output the lines `expected`.
pub(crate) fn jq_over(
    name: &str,
    program: &str,
    inputs: &Inputs,
    expected: Fingerprint,
) -> anyhow::Result<Figures> {
    let out = inputs.scratch.join("jq-out.txt");
    let begun = Instant::now();
    let mut child = Command::new("jq")
        .args(["-c", program])
        .arg(inputs.json)
        .stdout(std::fs::File::create(&out)?)
        .stderr(Stdio::null())
        .spawn()?;
    let (cpu, rss, status) = crate::process::follow(&mut child)?;
    let wall = begun.elapsed().as_secs_f64();
    let got = Fingerprint::of_file(&out)?;
    let problem = match (status.success(), got == expected) {
        (false, _) => Some(format!("jq failed: {status}")),
        (true, false) => Some("jq's output is not the lines expected".to_string()),
        (true, true) => None,
    };
    Ok(Figures::of(
        name,
        problem,
        inputs.json_lines,
        wall,
        cpu,
        rss,
    ))
}
