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
    /// The disk, or the file size limit, has no room for the next write of an archive; the run
    /// stopped before it, and the archive keeps every save up to then and says why.
    #[error("archive {path}: {message}")]
    NoRoom { path: PathBuf, message: String },
    /// Anything else the user asked for that cannot be done.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// Exit code for the binary: 2 for bad input (problem file, data, paths, archives), 3 for a
    /// run stopped for want of room (its saves kept, as for any run that stopped early: the CLI
    /// returns 3 for those after the archive is closed), 4 for a numerical failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Problem { .. } | Error::Usage(_) | Error::Archive { .. } => 2,
            Error::NoRoom { .. } => 3,
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

/// An operating-system error as a plain reason: "No such file or directory (os error 2)" becomes
/// "no such file or directory".
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    lower_first(&s)
}

/// An HDF5 library message without its internals: the function names ("H5Fopen(): ") go, and
/// "…, errno = 11, error message = 'Resource temporarily unavailable', flags = …" keeps only the
/// operating system's reason.
pub(crate) fn hdf5_reason(e: &dyn std::fmt::Display) -> String {
    let mut s = e.to_string();
    let mut from = 0;
    while let Some(i) = s[from..].find("H5").map(|i| from + i) {
        // A function name: H5 and word characters, then "(): ".
        let end = i + s[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len() - i);
        if s[end..].starts_with("(): ") {
            s.replace_range(i..end + 4, "");
        } else {
            from = end;
        }
    }
    if let Some(i) = s.find(", errno = ") {
        let reason = s[i..]
            .split("error message = '")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .map(lower_first);
        s.truncate(i);
        if let Some(r) = reason {
            s = format!("{s}: {r}");
        }
    }
    s
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn library_messages_become_reasons() {
        let lock = "H5Fopen(): unable to open file: unable to lock file, errno = 11, error \
                    message = 'Resource temporarily unavailable'";
        assert_eq!(
            super::hdf5_reason(&lock),
            "unable to open file: unable to lock file: resource temporarily unavailable"
        );
        // A name with "H5" in it does not stop the later prefixes from going.
        let named = "H5 run: H5Dwrite(): can't write data";
        assert_eq!(super::hdf5_reason(&named), "H5 run: can't write data");
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(super::io_reason(&e), "no such file or directory");
    }
}
