//! What a `wasi:keyvalue` call can fail with, as one type for both drafts.

use super::{Cas, Version, draft, draft2};
use crate::HostError;

/// A `wasi:keyvalue` store error, or a failure of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum KeyValueError {
    /// `no-such-store`.
    #[error("no such store")]
    NoSuchStore,
    /// `access-denied` (filecache: an identifier that is not a plain name).
    #[error("access denied")]
    AccessDenied,
    /// `other`: what the store said.
    #[error("store error: {0}")]
    Other(String),
    /// The bucket's draft has no such call.
    #[error("{operation} is not part of wasi:keyvalue {version}")]
    OtherVersion {
        /// What was asked for.
        operation: &'static str,
        /// The bucket's draft.
        version: Version,
    },
    /// The runtime failed: compile, link, instantiate, or a trap.
    #[error(transparent)]
    Host(#[from] HostError),
}

impl From<draft2::store::Error> for KeyValueError {
    fn from(error: draft2::store::Error) -> Self {
        use draft2::store::Error;
        match error {
            Error::NoSuchStore => Self::NoSuchStore,
            Error::AccessDenied => Self::AccessDenied,
            Error::Other(message) => Self::Other(message),
        }
    }
}

impl From<draft::store::Error> for KeyValueError {
    fn from(error: draft::store::Error) -> Self {
        use draft::store::Error;
        match error {
            Error::NoSuchStore => Self::NoSuchStore,
            Error::AccessDenied => Self::AccessDenied,
            Error::Other(message) => Self::Other(message),
        }
    }
}

/// A trap or other runtime failure, as a [`KeyValueError`].
pub(super) fn trap(error: wasmtime::Error) -> KeyValueError {
    KeyValueError::Host(HostError::Runtime(error))
}

/// Why a swap did not happen.
#[derive(Debug)]
pub enum SwapFailure {
    /// The value changed since the handle was made: a fresh handle to retry with.
    Changed(Cas),
    /// The store failed.
    Store(KeyValueError),
}
