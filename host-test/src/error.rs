//! Errors of the host: the guest's typed cache error, or a runtime failure.

/// The cache error the guest returned, mirroring the WIT `error` variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The input was refused.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The file system failed.
    #[error("failed to {operation} `{path}`: {message}")]
    Io {
        /// The operation.
        operation: String,
        /// The path, as the guest sees it.
        path: String,
        /// The OS message.
        message: String,
    },
    /// Out of space or quota.
    #[error("storage full: failed to {operation} `{path}`: {message}")]
    StorageFull {
        /// The operation.
        operation: String,
        /// The path, as the guest sees it.
        path: String,
        /// The OS message.
        message: String,
    },
    /// Exclusion not obtained in time.
    #[error("busy: {0}")]
    Busy(String),
    /// A damaged entry that could not be removed.
    #[error("corrupt: {0}")]
    Corrupt(String),
}

/// Why a call into the component failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The cache returned an error.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The runtime failed: compile, link, instantiate, or a trap in the guest.
    #[error("wasm runtime: {0:#}")]
    Runtime(wasmtime::Error),
}

impl From<crate::bindings::wit::Error> for HostError {
    fn from(error: crate::bindings::wit::Error) -> Self {
        use crate::bindings::wit::Error as W;
        let cache = match error {
            W::InvalidInput(reason) => CacheError::InvalidInput(reason),
            W::Io(f) => CacheError::Io {
                operation: f.operation,
                path: f.path,
                message: f.message,
            },
            W::StorageFull(f) => CacheError::StorageFull {
                operation: f.operation,
                path: f.path,
                message: f.message,
            },
            W::Busy(what) => CacheError::Busy(what),
            W::Corrupt(what) => CacheError::Corrupt(what),
        };
        Self::Cache(cache)
    }
}
