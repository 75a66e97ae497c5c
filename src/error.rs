//! One error type for the whole crate. Every variant carries enough context for a user to fix the
//! input without reading our source: the file, the key, and what was expected.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem file could not be read, parsed or validated.
    #[error("{file}: {key}: {message}")]
    Problem {
        file: PathBuf,
        key: String,
        message: String,
    },
    /// An archive could not be created, written or read.
    #[error("archive {path}: {message}")]
    Archive { path: PathBuf, message: String },
    /// A numerical method failed on valid input (an eigensolver or SVD that did not converge,
    /// a broken internal invariant); what was computed so far is kept.
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// Anything else the user asked for that cannot be done.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// Exit code for the binary: 2 for bad input (problem file, data, paths, archives), 4 for a
    /// numerical failure. (3, a run that stopped early with its saves kept, is not an error:
    /// the CLI returns it after the archive is closed.)
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Problem { .. } | Error::Usage(_) | Error::Archive { .. } => 2,
            Error::Numerical(_) => 4,
        }
    }

    pub fn archive(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        Error::Archive {
            path: path.into(),
            message: e.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
