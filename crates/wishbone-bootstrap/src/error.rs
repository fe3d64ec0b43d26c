use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a bootstrap file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// What the problem is about: `top level`, `module \`input\``, `route 2 \`a.b -> c.d\``.
    pub place: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(place: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            place: place.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
