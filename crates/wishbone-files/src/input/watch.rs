//! Being told of changes instead of waiting for the next poll: the
//! directories the patterns start from are watched (inotify, through the
//! `notify` crate), a write wakes reading, and a file created, renamed or
//! removed wakes a scan. Polling goes on beside it: it finds what a watch
//! cannot see (a directory created later, a file system without events).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// What the watches wake.
pub struct Wakes {
    /// Written to: read again.
    pub grown: Arc<Notify>,
    /// Created, renamed or removed: scan again.
    pub changed: Arc<Notify>,
    /// Held for its watches; none when watching is not available.
    _watcher: Option<RecommendedWatcher>,
}

impl Wakes {
    /// Watches the directories of `patterns`; what could not be watched is
    /// said, and left to polling.
    pub fn watch(patterns: &[String]) -> (Wakes, Vec<String>) {
        let (grown, changed) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (on_grown, on_changed) = (grown.clone(), changed.clone());
        let handler = move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            match event.kind {
                EventKind::Create(_)
                | EventKind::Remove(_)
                | EventKind::Modify(ModifyKind::Name(_)) => on_changed.notify_one(),
                EventKind::Modify(ModifyKind::Metadata(_)) | EventKind::Access(_) => {}
                EventKind::Modify(_) | EventKind::Any => on_grown.notify_one(),
                EventKind::Other => {}
            }
        };
        let mut problems = Vec::new();
        let watcher = match notify::recommended_watcher(handler) {
            Ok(mut watcher) => {
                for pattern in patterns {
                    let (directory, recursive) = directory_of(pattern);
                    let mode = if recursive {
                        RecursiveMode::Recursive
                    } else {
                        RecursiveMode::NonRecursive
                    };
                    if let Err(error) = watcher.watch(&directory, mode) {
                        problems.push(format!(
                            "cannot watch {} (polling only): {error}",
                            directory.display()
                        ));
                    }
                }
                Some(watcher)
            }
            Err(error) => {
                problems.push(format!("cannot watch files (polling only): {error}"));
                None
            }
        };
        (
            Wakes {
                grown,
                changed,
                _watcher: watcher,
            },
            problems,
        )
    }
}

/// The directory a pattern's matches are under: its components up to the
/// first with a wildcard, less the file name; recursive when a wildcard
/// stands for directories.
fn directory_of(pattern: &str) -> (PathBuf, bool) {
    let path = Path::new(pattern);
    let mut directory = PathBuf::new();
    let components: Vec<Component> = path.components().collect();
    for (index, component) in components.iter().enumerate() {
        let wild = component
            .as_os_str()
            .to_string_lossy()
            .contains(['*', '?', '[']);
        let last = index + 1 == components.len();
        if wild || last {
            return (directory, !last);
        }
        directory.push(component);
    }
    (directory, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_watched_from_its_last_plain_directory() {
        assert_eq!(
            directory_of("/var/log/app.log*"),
            ("/var/log".into(), false)
        );
        assert_eq!(directory_of("/var/log/app.log"), ("/var/log".into(), false));
        assert_eq!(
            directory_of("/var/log/*/app.log"),
            ("/var/log".into(), true)
        );
    }
}
