use std::fmt;
use std::path::PathBuf;

use crate::Location;
use crate::locate::Locations;

/// One thing wrong with a bootstrap file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// What the problem is about: `top level`, `module \`input\``, `route 2 \`a.b -> c.d\``.
    pub place: String,
    /// What is wrong and what would be valid.
    pub message: String,
    /// The line and column of the file it concerns, where known.
    pub at: Option<Location>,
    /// The keys leading to what it concerns, to find `at` with.
    keys: Vec<String>,
}

impl Problem {
    pub(crate) fn new(place: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            place: place.into(),
            message: message.into(),
            at: None,
            keys: Vec::new(),
        }
    }

    /// The problem concerns the key (or list item) at `keys`.
    pub(crate) fn under(mut self, keys: &[&str]) -> Self {
        self.keys = keys.iter().map(|key| key.to_string()).collect();
        self
    }

    /// Finds the line and column of each problem's key in `text`.
    pub(crate) fn locate_all(problems: &mut [Problem], text: &str) {
        if problems.iter().all(|problem| problem.keys.is_empty()) {
            return;
        }
        let locations = Locations::of(text);
        for problem in problems {
            let keys: Vec<&str> = problem.keys.iter().map(String::as_str).collect();
            if !keys.is_empty() {
                problem.at = locations.find(&keys);
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = self.at {
            write!(f, "line {}, column {}: ", at.line, at.column)?;
        }
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// Why a bootstrap file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read at all.
    #[error("cannot read bootstrap file {path}: {source}")]
    Read {
        /// The file named on the command line.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any bootstrap should be.
    #[error("bootstrap file {path} is larger than {} MiB; a bootstrap file may be at most that", limit / (1024 * 1024))]
    TooLarge {
        /// The file named on the command line.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file was read; these are all the problems found in it.
    #[error("{}", render(path, problems))]
    Invalid {
        /// The file named on the command line.
        path: PathBuf,
        /// Every problem, in file order.
        problems: Vec<Problem>,
    },
}

fn render(path: &std::path::Path, problems: &[Problem]) -> String {
    let count = problems.len();
    let mut text = format!(
        "bootstrap file {} has {count} problem{}:",
        path.display(),
        if count == 1 { "" } else { "s" }
    );
    for problem in problems {
        text.push_str(&format!("\n  - {problem}"));
    }
    text
}

impl LoadError {
    /// Every problem found; empty when the file could not be read.
    pub fn problems(&self) -> &[Problem] {
        match self {
            LoadError::Read { .. } | LoadError::TooLarge { .. } => &[],
            LoadError::Invalid { problems, .. } => problems,
        }
    }
}
