//! TLS peers for the tests: certificates made with `openssl`, and socat
//! as a TLS server writing what it receives to a file.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{LISTENING, free_port, tcp_sockets, wait_until};

const MINUTE: Duration = Duration::from_secs(60);

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA (`{name}-ca.pem`), and a certificate it signed for `subject`
/// (`{name}-{subject}.pem`, `.key`) valid for localhost and 127.0.0.1, and
/// one that expired yesterday (`{name}-{subject}-expired.pem`).
pub fn certificates(dir: &Path, name: &str, subjects: &[&str]) {
    const P256: [&str; 5] = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    let subject = format!("/CN={name} test CA");
    let ca_args = [
        "-keyout", &ca_key, "-out", &ca, "-days", "2", "-subj", &subject,
    ];
    openssl(dir, &[&["req", "-x509"][..], &P256, &ca_args].concat());
    let extensions = dir.join("san.ext");
    std::fs::write(&extensions, "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    for subject in subjects {
        let key = format!("{name}-{subject}.key");
        let request = format!("{name}-{subject}.csr");
        let common_name = format!("/CN={subject}");
        let request_args = ["-keyout", &key, "-out", &request, "-subj", &common_name];
        openssl(dir, &[&["req"][..], &P256, &request_args].concat());
        // Valid for two days, and the same subject's expired yesterday.
        for (cert, days) in [
            (format!("{name}-{subject}.pem"), "2"),
            (format!("{name}-{subject}-expired.pem"), "-1"),
        ] {
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &request,
                    "-CA",
                    &ca,
                    "-CAkey",
                    &ca_key,
                    "-CAcreateserial",
                    "-out",
                    &cert,
                    "-days",
                    days,
                    "-extfile",
                    "san.ext",
                ],
            );
        }
    }
}

pub struct Socat(Child);

impl Drop for Socat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `socat` as a TLS server on a free port, writing what it receives to `out`.
pub fn tls_sink(dir: &Path, out: &Path) -> (Socat, u16) {
    tls_sink_with(dir, out, "a-server.pem")
}

/// [`tls_sink`] presenting certificate `cert` (with `a-server.key`).
pub fn tls_sink_with(dir: &Path, out: &Path, cert: &str) -> (Socat, u16) {
    let port = free_port();
    let child = Command::new("socat")
        .arg("-u")
        .arg(format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,cert={},key={},verify=0",
            dir.join(cert).display(),
            dir.join("a-server.key").display()
        ))
        .arg(format!("OPEN:{},creat,trunc", out.display()))
        .stderr(Stdio::null())
        .spawn()
        .expect("socat");
    wait_until(MINUTE, "socat to listen", || {
        tcp_sockets()
            .iter()
            .any(|socket| socket.local_port == port && socket.state == LISTENING)
    });
    (Socat(child), port)
}

impl Socat {
    pub fn signal(&self, signal: i32) {
        unsafe { libc::kill(self.0.id() as i32, signal) };
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// socat as a TLS client sending the file at `data` to `port` on
/// localhost, trusting `ca`; its exit status.
pub fn send_over_tls(port: u16, ca: &Path, data: &Path) -> std::process::ExitStatus {
    Command::new("socat")
        .arg("-u")
        .arg(format!("OPEN:{}", data.display()))
        .arg(format!("OPENSSL:localhost:{port},cafile={}", ca.display()))
        .status()
        .expect("socat")
}
