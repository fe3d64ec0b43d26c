//! The files the file output has open: at most `max_open_files`, the least
//! recently used closed first; a file renamed or deleted under it
//! (logrotate) noticed within a second and opened anew; every file
//! reopened after a SIGHUP. Plain blocking I/O: the output calls it off
//! the pump's thread.

use std::collections::HashMap;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a file is written to before its path is looked at again.
const RECHECK: Duration = Duration::from_secs(1);

/// One open file.
struct Open {
    file: File,
    /// Device and inode when opened.
    identity: (u64, u64),
    /// When the path was last seen to still name this file.
    checked: Instant,
    /// When it was last written to, for closing the least recent.
    used: u64,
    /// Its length as this output knows it: at the open, then what it
    /// wrote.
    length: u64,
}

/// The open files, by path.
pub struct OpenFiles {
    files: HashMap<PathBuf, Open>,
    most: usize,
    /// Permissions of new files, and of new directories.
    file_mode: u32,
    directory_mode: u32,
    /// Writes so far, as a clock for `used`.
    writes: u64,
    /// The reopen requests last seen (`wishbone_runtime::reopen`).
    reopens: u64,
}

impl OpenFiles {
    /// At most `most` open at once; new files get `file_mode`, new
    /// directories `file_mode` with `x` wherever it has `r`.
    pub fn new(most: usize, file_mode: u32) -> Self {
        let searchable = (file_mode & 0o444) >> 2;
        Self {
            files: HashMap::new(),
            most: most.max(1),
            file_mode,
            directory_mode: file_mode | searchable,
            writes: 0,
            reopens: wishbone_runtime::reopen::requests(),
        }
    }

    /// Files open now.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Closes every file if a reopen was asked for since the last call.
    pub fn reopen_if_asked(&mut self) -> bool {
        let requests = wishbone_runtime::reopen::requests();
        if requests == self.reopens {
            return false;
        }
        self.reopens = requests;
        self.files.clear();
        true
    }

    /// Appends `data` to the file at `path` (opened, and its directories
    /// made, if need be). A failed write leaves the file as it was before
    /// it, so that writing it again makes no torn line.
    pub fn append(&mut self, path: &Path, data: &[u8], now: Instant) -> io::Result<()> {
        self.writes += 1;
        let writes = self.writes;
        let open = self.open(path, now)?;
        open.used = writes;
        if let Err(error) = (&open.file).write_all(data) {
            let _ = open.file.set_len(open.length);
            self.files.remove(path);
            return Err(error);
        }
        open.length += data.len() as u64;
        Ok(())
    }

    /// Makes what was appended to `path` durable (fdatasync).
    pub fn sync(&self, path: &Path) -> io::Result<()> {
        match self.files.get(path) {
            Some(open) => open.file.sync_data(),
            None => Ok(()),
        }
    }

    /// The open file for `path`, checked against the path once a second.
    fn open(&mut self, path: &Path, now: Instant) -> io::Result<&mut Open> {
        let stale = match self.files.get_mut(path) {
            Some(open) if now.duration_since(open.checked) < RECHECK => false,
            Some(open) => {
                let same = std::fs::metadata(path)
                    .is_ok_and(|metadata| (metadata.dev(), metadata.ino()) == open.identity);
                open.checked = now;
                !same
            }
            None => true,
        };
        if stale {
            self.files.remove(path);
            if self.files.len() >= self.most {
                self.close_least_recent();
            }
            let opened = self.create(path, now)?;
            self.files.insert(path.to_path_buf(), opened);
        }
        Ok(self.files.get_mut(path).expect("just opened"))
    }

    fn create(&self, path: &Path, now: Instant) -> io::Result<Open> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            DirBuilder::new()
                .recursive(true)
                .mode(self.directory_mode)
                .create(parent)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(self.file_mode)
            .open(path)?;
        let metadata = file.metadata()?;
        Ok(Open {
            file,
            identity: (metadata.dev(), metadata.ino()),
            checked: now,
            used: 0,
            length: metadata.len(),
        })
    }

    fn close_least_recent(&mut self) {
        let least = self
            .files
            .iter()
            .min_by_key(|(_, open)| open.used)
            .map(|(path, _)| path.clone());
        if let Some(path) = least {
            self.files.remove(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wishbone-open-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn files_and_directories_are_made_and_the_least_recent_is_closed() {
        let dir = scratch("lru");
        let mut files = OpenFiles::new(2, 0o640);
        let now = Instant::now();
        for (name, line) in [
            ("a/x.log", "1\n"),
            ("b/y.log", "2\n"),
            ("a/x.log", "3\n"),
            ("c/z.log", "4\n"),
        ] {
            files.append(&dir.join(name), line.as_bytes(), now).unwrap();
        }
        assert_eq!(files.len(), 2);
        assert!(
            files.files.contains_key(&dir.join("a/x.log")),
            "used last but one"
        );
        assert!(
            !files.files.contains_key(&dir.join("b/y.log")),
            "the least recent"
        );
        files.append(&dir.join("b/y.log"), b"5\n", now).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("a/x.log")).unwrap(),
            "1\n3\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("b/y.log")).unwrap(),
            "2\n5\n"
        );
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("a/x.log")), 0o640 & !umask());
        assert_eq!(mode(&dir.join("a")), 0o750 & !umask());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_renamed_away_is_noticed_within_a_second_and_made_anew() {
        let dir = scratch("rotate");
        let path = dir.join("app.log");
        let mut files = OpenFiles::new(8, 0o644);
        let start = Instant::now();
        files.append(&path, b"old\n", start).unwrap();
        std::fs::rename(&path, dir.join("app.log.1")).unwrap();
        files
            .append(&path, b"late\n", start + Duration::from_millis(500))
            .unwrap();
        files
            .append(&path, b"new\n", start + Duration::from_millis(1_100))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("app.log.1")).unwrap(),
            "old\nlate\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        std::fs::remove_file(&path).unwrap();
        files
            .append(&path, b"again\n", start + Duration::from_millis(2_200))
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "again\n");
        wishbone_runtime::reopen::request();
        assert!(files.reopen_if_asked());
        assert_eq!(files.len(), 0, "every file closed, to be opened anew");
        assert!(!files.reopen_if_asked());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn umask() -> u32 {
        // SAFETY: umask only swaps the process's mask; it is put back.
        unsafe {
            let mask = libc::umask(0);
            libc::umask(mask);
            mask as u32
        }
    }
}
