//! The one error type of the crate, mapped 1:1 onto the WIT `error` variant.
//!
//! Every I/O error carries the operation and the path it was applied to, and keeps
//! its [`std::io::ErrorKind`] reachable through [`std::error::Error::source`].

use std::io;
use std::path::{Path, PathBuf};

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a cache operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller's input was refused (key or value too large, bad option, bad path).
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What was refused and why.
        reason: String,
    },
    /// The file system failed.
    #[error("failed to {operation} `{}`: {source}", path.display())]
    Io {
        /// What was being done, e.g. "create temporary file".
        operation: String,
        /// The path it was applied to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file system is out of space or quota; the previous entry is intact.
    #[error("storage full: failed to {operation} `{}`: {source}", path.display())]
    StorageFull {
        /// What was being done.
        operation: String,
        /// The path it was applied to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Exclusion on a key could not be obtained in time.
    #[error("busy: {what}")]
    Busy {
        /// What could not be obtained.
        what: String,
    },
    /// An entry file is damaged beyond what the cache repairs by itself.
    /// Reserved: reads treat a damaged entry as a miss and remove it where
    /// they can, so no operation of this version returns it.
    #[error("corrupt entry `{}`: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error with the operation and path, classifying a full disk
    /// and saying so when the file system is read-only.
    pub fn io(operation: impl Into<String>, path: &Path, source: io::Error) -> Self {
        let mut operation = operation.into();
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Self::StorageFull {
                operation,
                path,
                source,
            },
            kind => {
                if kind == io::ErrorKind::ReadOnlyFilesystem {
                    operation.insert_str(0, "write to a cache on a read-only file system: ");
                }
                Self::Io {
                    operation,
                    path,
                    source,
                }
            }
        }
    }

    /// A failed rename, worded "failed to rename `from` to `to`".
    pub fn rename(from: &Path, to: &Path, source: io::Error) -> Self {
        Self::io(format!("rename `{}` to", from.display()), to, source)
    }

    /// An [`Error::InvalidInput`] with this reason.
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            reason: reason.into(),
        }
    }

    /// The [`io::ErrorKind`] of an I/O failure, if this is one.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Self::Io { source, .. } | Self::StorageFull { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

/// Adds operation-and-path context to `io::Result`s.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`Error::io`] with this operation and path.
    fn context(self, operation: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, operation: &str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(operation, path, e))
    }
}

/// "Not found is fine": turns a `NotFound` error into `Ok(None)`.
pub(crate) trait MissingOk<T> {
    /// `Ok(Some(value))`, `Ok(None)` for `NotFound`, other errors as they are.
    fn missing_ok(self) -> io::Result<Option<T>>;
}

impl<T> MissingOk<T> for io::Result<T> {
    fn missing_ok(self) -> io::Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Whether an I/O error says the file system is read-only.
pub(crate) fn is_read_only(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ReadOnlyFilesystem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_messages_name_operation_and_path() {
        let err = Error::rename(
            Path::new("a"),
            Path::new("b"),
            io::Error::from(io::ErrorKind::NotFound),
        );
        assert_eq!(
            err.to_string(),
            "failed to rename `a` to `b`: entity not found"
        );
        assert_eq!(err.io_kind(), Some(io::ErrorKind::NotFound));
    }

    #[test]
    fn a_read_only_file_system_is_named() {
        let err = Error::io(
            "create temporary file",
            Path::new("t"),
            io::Error::from(io::ErrorKind::ReadOnlyFilesystem),
        );
        assert!(err.to_string().contains("read-only file system"), "{err}");
        assert_eq!(err.io_kind(), Some(io::ErrorKind::ReadOnlyFilesystem));
    }

    #[test]
    fn a_full_disk_is_its_own_variant() {
        let err = Error::io(
            "write",
            Path::new("t"),
            io::Error::from(io::ErrorKind::StorageFull),
        );
        assert!(matches!(err, Error::StorageFull { .. }));
    }
}
