//! Reading a file: the benchmark's data file (10,000,000 lines make 1 GB)
//! read and sent to a tcp receiver by wishbone's file input, beside
//! `socat -u FILE:… TCP:…` and rsyslog's imfile forwarding with omfwd.

use std::path::Path;
use std::process::Command;

use crate::data::Fingerprint;
use crate::proxy::Proxy;
use crate::throughput::{self, Figures, Receivers};

/// rsyslog reading `file` with imfile and sending each line on.
fn rsyslog_imfile(dir: &Path, file: &Path, port: u16) -> String {
    format!(
        "global(workDirectory=\"{dir}\")\nmodule(load=\"imfile\")\n\
         template(name=\"line\" type=\"string\" string=\"%msg%\\n\")\n\
         input(type=\"imfile\" file=\"{file}\" tag=\"bench\" ruleset=\"fwd\")\n\
         ruleset(name=\"fwd\" queue.type=\"LinkedList\" queue.size=\"100000\") {{\n  \
         action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" template=\"line\")\n}}\n",
        dir = dir.display(),
        file = file.display()
    )
}

/// wishbone's file input on `file`, with fresh checkpoints, to `port`.
fn wishbone_file(dir: &Path, file: &Path, port: u16) -> String {
    format!(
        "modules:\n  input: {{module: wishbone.input.file, arguments: {{paths: [\"{}\"], checkpoints: \"{}\"}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {port}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        file.display(),
        dir.join("checkpoints").display()
    )
}

/// How a configuration's reader starts, given the receiver's port.
type Start<'a> = Box<dyn Fn(u16) -> anyhow::Result<Proxy> + 'a>;

/// One repetition of every file configuration `wanted` leaves in.
pub fn run_all(
    wishbone: &Path,
    scratch: &Path,
    data: &Path,
    expected: Fingerprint,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<Figures>> {
    // A directory of its own, emptied for each run: no checkpoint, no
    // rsyslog state file from the run before.
    let fresh = |name: &str| -> anyhow::Result<std::path::PathBuf> {
        let dir = scratch.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    };
    let configurations: [(&str, Start); 3] = [
        (
            "file, socat -u FILE → TCP",
            Box::new(|port| {
                let mut command = Command::new("socat");
                command
                    .args(["-u", "-b", "131072"])
                    .arg(format!("FILE:{}", data.display()))
                    .arg(format!("TCP:127.0.0.1:{port}"));
                Proxy::reader(command, "socat")
            }),
        ),
        (
            "file, wishbone file input → tcp",
            Box::new(|port| {
                let dir = fresh("file-input")?;
                Proxy::wishbone_without_input(wishbone, &dir, &wishbone_file(&dir, data, port))
            }),
        ),
        (
            "file, rsyslog imfile → omfwd",
            Box::new(|port| {
                let dir = fresh("rsyslog-imfile")?;
                let config = dir.join("rsyslog.conf");
                std::fs::write(&config, rsyslog_imfile(&dir, data, port))?;
                let mut command = Command::new("rsyslogd");
                command
                    .arg("-n")
                    .arg("-f")
                    .arg(&config)
                    .arg("-i")
                    .arg(dir.join("rsyslog.pid"));
                Proxy::reader(command, "rsyslogd")
            }),
        ),
    ];
    let mut runs = Vec::new();
    for (name, start) in configurations {
        if wanted(name) {
            runs.push(throughput::run(
                name,
                Receivers::Tcp(1),
                data,
                expected,
                |ports| start(ports[0]),
            )?);
        }
    }
    Ok(runs)
}
