//! A log rotated under a writer while the wishbone reading it is killed:
//! logrotate (`create`) run every few seconds on `app.log` in `dir`, and
//! SIGKILL with a restart of the same bootstrap every few seconds more.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Wishbone;

/// How often logrotate runs and wishbone is killed, in seconds, and how
/// many kills in all.
pub struct Turbulence {
    pub rotate_every: f64,
    pub kill_every: f64,
    pub kills: usize,
}

/// Writes the logrotate configuration for `log` into `dir`: `create`, ten
/// copies kept, none compressed.
pub fn logrotate_config(dir: &Path, log: &Path) {
    std::fs::write(
        dir.join("rot.conf"),
        format!(
            "{} {{\n  rotate 10\n  create\n  nocompress\n  missingok\n}}\n",
            log.display()
        ),
    )
    .unwrap();
}

impl Turbulence {
    /// Until `writer` ends: rotates, kills `wishbone` and starts it again
    /// on `bootstrap` in `dir`. How many rotations and kills there were.
    pub fn run(
        &self,
        writer: &JoinHandle<()>,
        dir: &Path,
        bootstrap: &str,
        wishbone: &mut Wishbone,
    ) -> (usize, usize) {
        let begun = Instant::now();
        let (mut rotations, mut kills) = (0, 0);
        while !writer.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
            let elapsed = begun.elapsed().as_secs_f64();
            if elapsed > self.rotate_every * (rotations + 1) as f64 {
                let status = Command::new("logrotate")
                    .arg("-f")
                    .arg("-s")
                    .arg(dir.join("rot.state"))
                    .arg(dir.join("rot.conf"))
                    .status()
                    .unwrap();
                assert!(status.success(), "logrotate ran");
                rotations += 1;
            }
            if kills < self.kills && elapsed > self.kill_every * (kills + 1) as f64 {
                wishbone.signal(libc::SIGKILL);
                wishbone.wait(Duration::from_secs(60));
                *wishbone = Wishbone::start(dir, bootstrap, &[]);
                kills += 1;
            }
        }
        (rotations, kills)
    }
}

/// A writer appending `items` to `log`, each in one write, `rate` items a
/// second; every `batch` items it reopens the log if it was rotated, as a
/// daemon does once it notices.
pub fn writer(log: PathBuf, items: Vec<Vec<u8>>, rate: f64, batch: usize) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap()
        };
        let mut file = open();
        let begun = Instant::now();
        for (index, item) in items.iter().enumerate() {
            if index % batch == 0 {
                let due = begun + Duration::from_secs_f64(index as f64 / rate);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                let current = std::fs::metadata(&log).map(|metadata| metadata.ino()).ok();
                if current != Some(file.metadata().unwrap().ino()) {
                    file = open();
                }
            }
            file.write_all(item).unwrap();
        }
    })
}
