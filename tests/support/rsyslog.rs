//! Real rsyslogd processes (Debian's rsyslog and rsyslog-relp) on
//! loopback, each with its configuration and files in a directory of its
//! own, as in `../shared/reference/rsyslog-relp.md`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_until};

pub struct Rsyslog {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    dir: PathBuf,
    config: String,
}

/// Lines that start with digits would be read as octet-counted frames.
const IMTCP: &str = "supportOctetCountedFraming=\"off\"";

impl Rsyslog {
    /// A plain TCP input forwarding every line unchanged with omrelp to
    /// `relp_port`, retrying forever.
    pub fn relp_sender(dir: &Path, relp_port: u16) -> Rsyslog {
        let port = free_port();
        let config = format!(
            "global(workDirectory=\"{dir}\")\nmodule(load=\"imtcp\")\nmodule(load=\"omrelp\")\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"fwd\" {IMTCP})\n\
             ruleset(name=\"fwd\" queue.type=\"LinkedList\" queue.size=\"100000\") {{\n  \
             action(type=\"omrelp\" target=\"127.0.0.1\" port=\"{relp_port}\" template=\"raw\" windowSize=\"1024\" \
             action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\")\n}}\n",
            dir = dir.display()
        );
        Self::start(dir, port, config)
    }

    /// As [`Rsyslog::relp_sender`], over TLS (librelp with OpenSSL),
    /// verifying the server's certificate with `ca` and the name localhost.
    pub fn relp_tls_sender(dir: &Path, relp_port: u16, ca: &Path) -> Rsyslog {
        let port = free_port();
        let config = format!(
            "global(workDirectory=\"{dir}\")\nmodule(load=\"imtcp\")\nmodule(load=\"omrelp\" tls.tlslib=\"openssl\")\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"fwd\" {IMTCP})\n\
             ruleset(name=\"fwd\" queue.type=\"LinkedList\" queue.size=\"100000\") {{\n  \
             action(type=\"omrelp\" target=\"localhost\" port=\"{relp_port}\" template=\"raw\" windowSize=\"1024\" \
             tls=\"on\" tls.caCert=\"{ca}\" tls.authMode=\"name\" tls.permittedPeer=[\"localhost\"] \
             action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\")\n}}\n",
            dir = dir.display(),
            ca = ca.display()
        );
        Self::start(dir, port, config)
    }

    /// A RELP server writing every message as a line to `out.txt` in its
    /// directory; its answer means written (`queue.type="Direct"`).
    pub fn relp_sink(dir: &Path, port: u16) -> Rsyslog {
        let port = if port == 0 { free_port() } else { port };
        let config = format!(
            "global(workDirectory=\"{dir}\")\nmodule(load=\"imrelp\")\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"out\")\n\
             ruleset(name=\"out\" queue.type=\"Direct\") {{\n  \
             action(type=\"omfile\" file=\"{dir}/out.txt\" template=\"raw\" flushOnTXEnd=\"on\")\n}}\n",
            dir = dir.display()
        );
        Self::start(dir, port, config)
    }

    /// As [`Rsyslog::relp_sink`], over TLS (librelp with OpenSSL) with
    /// the certificate `cert` and key `key`, not asking for a client's.
    pub fn relp_tls_sink(dir: &Path, cert: &Path, key: &Path, ca: &Path) -> Rsyslog {
        let port = free_port();
        let config = format!(
            "global(workDirectory=\"{dir}\")\nmodule(load=\"imrelp\" tls.tlslib=\"openssl\")\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"out\" tls=\"on\" \
             tls.caCert=\"{ca}\" tls.myCert=\"{cert}\" tls.myPrivKey=\"{key}\")\n\
             ruleset(name=\"out\" queue.type=\"Direct\") {{\n  \
             action(type=\"omfile\" file=\"{dir}/out.txt\" template=\"raw\" flushOnTXEnd=\"on\")\n}}\n",
            dir = dir.display(),
            ca = ca.display(),
            cert = cert.display(),
            key = key.display()
        );
        Self::start(dir, port, config)
    }

    /// A plain TCP input (one message per line, parsed as syslog) whose
    /// messages go on with omfwd over TCP to `target`, framed as `framing`
    /// (`octet-counted` or `traditional`) in `template`
    /// (`RSYSLOG_SyslogProtocol23Format` for RFC 5424,
    /// `RSYSLOG_TraditionalForwardFormat` for RFC 3164).
    pub fn syslog_forwarder(dir: &Path, target: u16, framing: &str, template: &str) -> Rsyslog {
        let port = free_port();
        let config = format!(
            "global(workDirectory=\"{dir}\")\nmodule(load=\"imtcp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"fwd\" {IMTCP})\n\
             ruleset(name=\"fwd\" queue.type=\"LinkedList\" queue.size=\"100000\") {{\n  \
             action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{target}\" protocol=\"tcp\" \
             TCP_Framing=\"{framing}\" template=\"{template}\" \
             action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\")\n}}\n",
            dir = dir.display()
        );
        Self::start(dir, port, config)
    }

    /// An imtcp input (octet-counted or newline framing, told apart per
    /// frame) writing what it parsed of each message to `out.txt`, one
    /// line each: facility, severity, timestamp, hostname, app-name,
    /// procid, msgid, structured data and message, separated by `|`.
    pub fn syslog_sink(dir: &Path) -> Rsyslog {
        let port = free_port();
        let config = format!(
            "global(workDirectory=\"{dir}\")\nmodule(load=\"imtcp\")\n\
             template(name=\"fields\" type=\"string\" string=\"%syslogfacility%|%syslogseverity%|%timereported:::date-rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\\n\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"out\")\n\
             ruleset(name=\"out\" queue.type=\"Direct\") {{\n  \
             action(type=\"omfile\" file=\"{dir}/out.txt\" template=\"fields\" flushOnTXEnd=\"on\")\n}}\n",
            dir = dir.display()
        );
        Self::start(dir, port, config)
    }

    /// rsyslogd on a configuration of the caller's (a documented one, its
    /// paths and ports made local), once `ready` holds: it listens on no
    /// port of the harness's choosing.
    pub fn with_config(dir: &Path, config: String, ready: impl FnMut() -> bool) -> Rsyslog {
        let rsyslog = Self::spawn(dir, 0, config);
        wait_until(Duration::from_secs(30), "rsyslogd to be ready", ready);
        rsyslog
    }

    fn start(dir: &Path, port: u16, config: String) -> Rsyslog {
        let rsyslog = Self::spawn(dir, port, config);
        wait_until(Duration::from_secs(30), "rsyslogd to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        rsyslog
    }

    fn spawn(dir: &Path, port: u16, config: String) -> Rsyslog {
        std::fs::create_dir_all(dir).unwrap();
        crate::require_installed(
            "command -v rsyslogd",
            "rsyslogd is missing: `apt-get install rsyslog rsyslog-relp`, which scripts/test does",
        );
        let path = dir.join("rsyslog.conf");
        std::fs::write(&path, &config).unwrap();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&path)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        Rsyslog {
            child,
            port,
            dir: dir.to_path_buf(),
            config,
        }
    }

    /// SIGKILL, then the same configuration again on the same port.
    pub fn restart_after_kill(&mut self) {
        self.kill();
        let fresh = Self::start(&self.dir, self.port, self.config.clone());
        *self = fresh;
    }

    pub fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What a sink wrote so far.
    pub fn written(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("out.txt")).unwrap_or_default()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}
