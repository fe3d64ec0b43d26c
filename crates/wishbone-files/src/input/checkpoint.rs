//! What a file input has delivered: per file, the offset after the last
//! line whose event was acknowledged downstream, kept in one file of the
//! checkpoint directory and replaced atomically (a temporary file, fsync,
//! rename, fsync of the directory).

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::identity::{FileKey, Fingerprint};

/// One file's checkpoint as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub key: FileKey,
    pub fingerprint: Fingerprint,
    /// Where the file was last seen, for people reading the store.
    pub path: PathBuf,
    /// Every line before this offset was delivered.
    pub offset: u64,
}

/// The checkpoint file of one module.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
}

/// Whether `directory` is, or can be made, a directory this process may
/// write in: it, or the nearest of its parents that exists, must be a
/// directory open to writing. Nothing is created.
pub fn usable_directory(directory: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    for place in directory
        .ancestors()
        .filter(|place| !place.as_os_str().is_empty())
    {
        match std::fs::metadata(place) {
            Ok(found) if found.is_dir() => {
                let name = std::ffi::CString::new(place.as_os_str().as_bytes())
                    .map_err(|_| format!("{} holds a NUL byte", place.display()))?;
                // SAFETY: a valid C string; access(2) only reads it.
                let writable = unsafe { libc::access(name.as_ptr(), libc::W_OK) } == 0;
                return match writable {
                    true => Ok(()),
                    false => Err(format!(
                        "{} is not writable by this process",
                        place.display()
                    )),
                };
            }
            Ok(_) => return Err(format!("{} is a file, not a directory", place.display())),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) => {}
            Err(error) => return Err(format!("{}: {error}", place.display())),
        }
    }
    Ok(())
}

impl Store {
    /// The store of module `module` in `directory`, which must be a
    /// directory this process can write in: checked now, by writing.
    pub fn open(directory: &Path, module: &str) -> Result<Store, String> {
        std::fs::create_dir_all(directory)
            .map_err(|error| format!("cannot create {}: {error}", directory.display()))?;
        let probe = directory.join(format!(".{module}.probe"));
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|error| format!("cannot write in {}: {error}", directory.display()))?;
        Ok(Store {
            path: directory.join(format!("{module}.json")),
        })
    }

    /// The stored checkpoints; none when there is no store yet. A store
    /// that cannot be read is an error, not a reason to start over.
    pub fn load(&self) -> Result<Vec<Entry>, String> {
        match std::fs::read(&self.path) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|error| format!("{} is damaged: {error}", self.path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(error) => Err(format!("cannot read {}: {error}", self.path.display())),
        }
    }

    /// Replaces the stored checkpoints with `entries`, atomically.
    pub fn save(&self, entries: &[Entry]) -> std::io::Result<()> {
        let temporary = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&serde_json::to_vec(entries).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &self.path)?;
        if let Some(directory) = self.path.parent() {
            std::fs::File::open(directory)?.sync_all()?;
        }
        Ok(())
    }
}

/// The batches of one file in flight, in file order, and the offset every
/// line before which is delivered.
#[derive(Debug, Default)]
pub struct Committed {
    /// (batch id, offset after the batch, acknowledged yet)
    pending: VecDeque<(u64, u64, bool)>,
    offset: u64,
}

impl Committed {
    /// Nothing in flight; delivered up to `offset`.
    pub fn at(offset: u64) -> Self {
        Self {
            pending: VecDeque::new(),
            offset,
        }
    }

    /// A batch ending at `end` was sent.
    pub fn sent(&mut self, id: u64, end: u64) {
        self.pending.push_back((id, end, false));
    }

    /// Batch `id` was acknowledged: the offset moves past every batch
    /// acknowledged in a row from the oldest. False if the batch is not one
    /// of this file's.
    pub fn acknowledge(&mut self, id: u64) -> bool {
        let Some(batch) = self.pending.iter_mut().find(|(batch, ..)| *batch == id) else {
            return false;
        };
        batch.2 = true;
        while let Some(&(_, end, true)) = self.pending.front() {
            self.offset = end;
            self.pending.pop_front();
        }
        true
    }

    /// Whether batch `id` is one of this file's in flight.
    pub fn holds(&self, id: u64) -> bool {
        self.pending.iter().any(|(batch, ..)| *batch == id)
    }

    /// Batch `id` is sent again as `new_id`, in the same place.
    pub fn renumber(&mut self, id: u64, new_id: u64) {
        if let Some(batch) = self.pending.iter_mut().find(|(batch, ..)| *batch == id) {
            batch.0 = new_id;
        }
    }

    /// The file was truncated: what was in flight belongs to content that
    /// is gone, and delivery starts over at 0.
    pub fn restart(&mut self) {
        self.pending.clear();
        self.offset = 0;
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_moves_only_past_batches_acknowledged_in_a_row() {
        let mut committed = Committed::at(10);
        committed.sent(1, 20);
        committed.sent(2, 30);
        committed.sent(3, 40);
        assert!(committed.acknowledge(2));
        assert_eq!(committed.offset(), 10, "batch 1 is still out");
        committed.renumber(1, 7);
        assert!(!committed.acknowledge(1));
        assert!(committed.acknowledge(7));
        assert_eq!(committed.offset(), 30);
        assert!(committed.acknowledge(3));
        assert_eq!((committed.offset(), committed.in_flight()), (40, 0));
        committed.sent(4, 50);
        committed.restart();
        assert!(
            !committed.acknowledge(4),
            "a truncated file's old batches count for nothing"
        );
        assert_eq!(committed.offset(), 0);
    }

    #[test]
    fn checkpoints_survive_a_save_and_a_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("checkpoints"), "files").unwrap();
        assert_eq!(store.load().unwrap(), Vec::new());
        let entries = vec![Entry {
            key: FileKey {
                device: 1,
                inode: 2,
            },
            fingerprint: Fingerprint::of(b"start"),
            path: "/var/log/app.log".into(),
            offset: 1234,
        }];
        store.save(&entries).unwrap();
        assert_eq!(store.load().unwrap(), entries);
        std::fs::write(dir.path().join("checkpoints/files.json"), b"{broken").unwrap();
        assert!(store.load().unwrap_err().contains("damaged"));
    }

    #[test]
    fn a_directory_that_cannot_be_written_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let error = Store::open(&file.join("sub"), "files").unwrap_err();
        assert!(error.contains("cannot create"), "{error}");
        let error = usable_directory(&file.join("sub")).unwrap_err();
        assert!(error.contains("is a file"), "{error}");
        assert!(usable_directory(&dir.path().join("not/yet/there")).is_ok());
    }
}
