//! The wit-bindgen glue of the `keyvalue` world: exports `wasi:keyvalue`
//! (`store`, `atomics`, `batch`) at both drafts in use, 0.2.0-draft2
//! ([`draft2`], Spin's) and 0.2.0-draft ([`draft`], wasmtime's and
//! wasmCloud's), backed by [`crate::FileStore`]. Built with `--features
//! keyvalue` into `filecache-keyvalue.wasm`.
//!
//! A bucket is a cache directory: `open(identifier)` opens
//! `$FILECACHE_KEYVALUE_ROOT/<identifier>` (the root defaults to `/`; the host
//! preopens it), the same directory for both drafts. Identifiers are checked
//! so that none can name a path outside the root. Values never expire.
// The generated bindings are ABI glue made of `unsafe` exports; nothing else here is.
#![allow(unsafe_code)]

mod draft;
mod draft2;

use std::path::PathBuf;
use std::rc::Rc;

use crate::{Expiry, FileStore, Options};

wit_bindgen::generate!({
    path: "../wit",
    world: "keyvalue",
});

/// The environment variable naming the directory that holds the buckets.
pub const ROOT_VARIABLE: &str = "FILECACHE_KEYVALUE_ROOT";
/// The longest identifier accepted.
const MAX_IDENTIFIER: usize = 128;

/// The exports of both drafts.
struct Component;

/// Why a bucket cannot be opened: the cases both drafts' `error` share.
enum OpenError {
    /// The identifier is not a plain name (`access-denied`).
    Refused,
    /// The cache could not be opened (`other`).
    Store(crate::Error),
}

/// Opens the bucket `identifier`: the cache in its directory below the root.
fn open_bucket(identifier: &str) -> Result<Rc<FileStore>, OpenError> {
    let acceptable = !identifier.is_empty()
        && identifier.len() <= MAX_IDENTIFIER
        && !identifier.starts_with('.')
        && identifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !acceptable {
        return Err(OpenError::Refused);
    }
    let root = std::env::var(ROOT_VARIABLE).unwrap_or_else(|_| "/".into());
    let dir = PathBuf::from(root).join(identifier);
    let cache = FileStore::open(dir, Options::default()).map_err(OpenError::Store)?;
    Ok(Rc::new(cache))
}

/// The pairs `get-many` returns: `(key, value)` for a key that holds one.
type Pairs = Vec<Option<(String, Vec<u8>)>>;

/// `get-many`, as both drafts have it.
fn get_many(store: &FileStore, keys: Vec<String>) -> crate::Result<Pairs> {
    keys.into_iter()
        .map(|key| Ok(store.get(&key)?.map(|value| (key, value))))
        .collect()
}

/// `set-many`, as both drafts have it: values never expire.
fn set_many(store: &FileStore, pairs: Vec<(String, Vec<u8>)>) -> crate::Result<()> {
    pairs
        .into_iter()
        .try_for_each(|(key, value)| store.insert(&key, &value, Expiry::Never))
}

/// `delete-many`, as both drafts have it.
fn delete_many(store: &FileStore, keys: Vec<String>) -> crate::Result<()> {
    keys.iter().try_for_each(|key| store.remove(key))
}

export!(Component);
