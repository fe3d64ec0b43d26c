//! Pid files: written whole (a reader never sees half a file), and read
//! back with the checks that keep `stop` from signalling a stranger.
//!
//! The first pid is the process to signal (the server, or the launcher of
//! `--instances`); the instances of a launcher follow it.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// Writes the pids, one a line, by renaming a complete temporary file over
/// the old one.
pub fn write(path: &Path, pids: &[u32]) -> std::io::Result<()> {
    let text: String = pids.iter().map(|pid| format!("{pid}\n")).collect();
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

/// Why a pid file cannot be used at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing in it.
    #[error("is empty")]
    Empty,
    /// A word that is not a process id a server could have.
    #[error("holds `{0}`, which is not the process id of a server")]
    NotAPid(String),
}

/// The pids of a pid file. Pid 0 and 1 (the init process) are refused:
/// no wishbone has them, and signalling them would be a disaster.
pub fn parse(text: &str) -> Result<Vec<libc::pid_t>, ParseError> {
    let pids = text
        .split_whitespace()
        .map(|word| match word.parse::<libc::pid_t>() {
            Ok(pid) if pid > 1 => Ok(pid),
            _ => Err(ParseError::NotAPid(word.to_string())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if pids.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(pids)
}

/// The first pid of the file at `path` if it names a server that is
/// still running: a second `start` with the same pid file must not take it
/// over (and remove it when it fails).
pub fn running(path: &Path) -> Option<libc::pid_t> {
    let written = std::fs::metadata(path).ok()?.modified().ok()?;
    let text = std::fs::read_to_string(path).ok()?;
    parse(&text)
        .ok()?
        .into_iter()
        .find(|pid| matches!(inspect(*pid, written), Found::Ours { .. }))
}

/// What a pid of the file is now.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// A `wishbone start` of this program that was running when the file
    /// was written; `parent` is its parent's pid.
    Ours { parent: libc::pid_t },
    /// No such process.
    Gone,
    /// Another program, or a wishbone started after the file was written
    /// (the pid was reused); what it is, for the message.
    Stranger(String),
}

/// Looks at `/proc/<pid>` to tell whether `pid` is a server this pid file
/// describes: the same program, started with `start`, and started before
/// the file was last written.
pub fn inspect(pid: libc::pid_t, written: SystemTime) -> Found {
    let proc = Path::new("/proc").join(pid.to_string());
    let Ok(cmdline) = std::fs::read(proc.join("cmdline")) else {
        return Found::Gone;
    };
    let arguments: Vec<String> = cmdline
        .split(|byte| *byte == 0)
        .filter(|argument| !argument.is_empty())
        .map(|argument| String::from_utf8_lossy(argument).into_owned())
        .collect();
    let described = if arguments.is_empty() {
        format!("pid {pid}")
    } else {
        format!("`{}`", arguments.join(" "))
    };
    let program = |path: &Path| {
        path.file_name().map(|name| {
            name.to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_string()
        })
    };
    let ours = std::env::current_exe().ok().as_deref().and_then(program);
    let theirs = std::fs::read_link(proc.join("exe"))
        .ok()
        .as_deref()
        .and_then(program);
    if ours.is_none() || ours != theirs || !arguments.iter().any(|argument| argument == "start") {
        return Found::Stranger(described);
    }
    let Some(stat) = ProcessStat::read(pid) else {
        return Found::Gone;
    };
    // A process started after the file was written cannot be the one that
    // wrote it: its pid was reused. One second of slack for clock steps.
    match stat.started() {
        Some(started) if started <= written + Duration::from_secs(1) => Found::Ours {
            parent: stat.parent,
        },
        _ => Found::Stranger(format!(
            "{described}, started after the pid file was written"
        )),
    }
}

/// The fields of `/proc/<pid>/stat` that matter here.
struct ProcessStat {
    parent: libc::pid_t,
    /// Clock ticks from boot to the process's start.
    start_ticks: u64,
}

impl ProcessStat {
    fn read(pid: libc::pid_t) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses: fields start
        // after the last `)`, with the state (field 3) first.
        let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
        Some(Self {
            parent: fields.get(1)?.parse().ok()?,
            start_ticks: fields.get(19)?.parse().ok()?,
        })
    }

    fn started(&self) -> Option<SystemTime> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let boot: u64 = stat
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        // SAFETY: sysconf only reads a configuration value.
        let ticks_per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
        let since_boot =
            Duration::from_secs_f64(self.start_ticks as f64 / ticks_per_second.max(1) as f64);
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(boot) + since_boot)
    }
}

/// Removes the pid file, if there is one; a file already gone is fine.
pub(crate) fn remove(path: Option<&Path>) {
    if let Some(path) = path {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_or_a_stray_word_is_refused() {
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert_eq!(parse(" \n"), Err(ParseError::Empty));
        assert_eq!(parse("12\nabc\n"), Err(ParseError::NotAPid("abc".into())));
        assert_eq!(parse("1\n"), Err(ParseError::NotAPid("1".into())));
        assert_eq!(parse("-5"), Err(ParseError::NotAPid("-5".into())));
        assert_eq!(parse("100\n200\n"), Ok(vec![100, 200]));
    }

    #[test]
    fn a_process_of_another_program_is_a_stranger_and_a_missing_one_gone() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let cmdline = format!("/proc/{}/cmdline", sleeper.id());
        // Between fork and exec the child is still a copy of this test.
        while !std::fs::read(&cmdline)
            .unwrap_or_default()
            .starts_with(b"sleep")
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let found = inspect(sleeper.id() as libc::pid_t, SystemTime::now());
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        assert!(
            matches!(&found, Found::Stranger(what) if what.contains("sleep 30")),
            "{found:?}"
        );
        assert_eq!(
            inspect(sleeper.id() as libc::pid_t, SystemTime::now()),
            Found::Gone
        );
    }

    #[test]
    fn this_process_started_before_now() {
        let stat = ProcessStat::read(std::process::id() as libc::pid_t).unwrap();
        let started = stat.started().unwrap();
        assert!(started <= SystemTime::now() + Duration::from_secs(1));
        assert!(started > SystemTime::now() - Duration::from_secs(3600));
    }

    #[test]
    fn a_file_is_replaced_whole() {
        let path = std::env::temp_dir().join(format!("wishbone-pidfile-{}", std::process::id()));
        write(&path, &[10, 11, 12]).unwrap();
        assert_eq!(
            parse(&std::fs::read_to_string(&path).unwrap()),
            Ok(vec![10, 11, 12])
        );
        write(&path, &[10]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "10\n");
        std::fs::remove_file(&path).unwrap();
    }
}
