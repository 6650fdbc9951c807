//! The wit-bindgen glue of the `keyvalue` world: exports `wasi:keyvalue`
//! (`store`, `atomics`, `batch` at 0.2.0-draft2) backed by [`crate::FileStore`].
//! Built with `--features keyvalue` into `filecache-keyvalue.wasm`.
//!
//! A bucket is a cache directory: `open(identifier)` opens
//! `$FILECACHE_KEYVALUE_ROOT/<identifier>` (the root defaults to `/`; the host
//! preopens it). Identifiers are checked so that none can name a path outside
//! the root. Values never expire. A `cas` handle remembers the value it saw;
//! `swap` is `compare_and_swap` against it, so it fails if anything changed the
//! key since — and then hands back a fresh handle, as the interface asks.
// The generated bindings are ABI glue made of `unsafe` exports; nothing else here is.
#![allow(unsafe_code)]

use std::path::PathBuf;
use std::rc::Rc;

use exports::wasi::keyvalue::atomics::{self, CasError};
use exports::wasi::keyvalue::batch;
use exports::wasi::keyvalue::store::{self, BucketBorrow, Error, KeyResponse};

use crate::{Expiry, FileStore, Options};

wit_bindgen::generate!({
    path: "../wit",
    world: "keyvalue",
});

/// The environment variable naming the directory that holds the buckets.
pub const ROOT_VARIABLE: &str = "FILECACHE_KEYVALUE_ROOT";
/// The longest identifier accepted.
const MAX_IDENTIFIER: usize = 128;

struct Component;

/// An open bucket: one cache directory.
struct Bucket(Rc<FileStore>);

/// A compare-and-swap in progress: the key and the value it observed.
struct Cas {
    store: Rc<FileStore>,
    key: String,
    observed: Option<Vec<u8>>,
}

fn other(error: crate::Error) -> Error {
    Error::Other(error.to_string())
}

/// The directory of the bucket `identifier`, or why it is refused.
fn bucket_dir(identifier: &str) -> Result<PathBuf, Error> {
    let acceptable = !identifier.is_empty()
        && identifier.len() <= MAX_IDENTIFIER
        && !identifier.starts_with('.')
        && identifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !acceptable {
        return Err(Error::AccessDenied);
    }
    let root = std::env::var(ROOT_VARIABLE).unwrap_or_else(|_| "/".into());
    Ok(PathBuf::from(root).join(identifier))
}

impl store::Guest for Component {
    type Bucket = Bucket;

    fn open(identifier: String) -> Result<store::Bucket, Error> {
        let dir = bucket_dir(&identifier)?;
        let cache = FileStore::open(dir, Options::default()).map_err(other)?;
        Ok(store::Bucket::new(Bucket(Rc::new(cache))))
    }
}

impl store::GuestBucket for Bucket {
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.0.get(&key).map_err(other)
    }

    fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.0.insert(&key, &value, Expiry::Never).map_err(other)
    }

    fn delete(&self, key: String) -> Result<(), Error> {
        self.0.remove(&key).map_err(other)
    }

    fn exists(&self, key: String) -> Result<bool, Error> {
        self.0.contains_key(&key).map_err(other)
    }

    fn list_keys(&self, cursor: Option<String>) -> Result<KeyResponse, Error> {
        let page = self.0.list_keys(cursor.as_deref()).map_err(other)?;
        Ok(KeyResponse {
            keys: page.keys,
            cursor: page.cursor,
        })
    }
}

impl Cas {
    /// A handle on `key` that observes its value now.
    fn observe(store: Rc<FileStore>, key: String) -> Result<Self, Error> {
        let observed = store.get(&key).map_err(other)?;
        Ok(Self {
            store,
            key,
            observed,
        })
    }
}

impl atomics::Guest for Component {
    type Cas = Cas;

    fn increment(bucket: BucketBorrow<'_>, key: String, delta: i64) -> Result<i64, Error> {
        bucket
            .get::<Bucket>()
            .0
            .increment(&key, delta)
            .map_err(other)
    }

    fn swap(cas: atomics::Cas, value: Vec<u8>) -> Result<(), CasError> {
        let cas: Cas = cas.into_inner();
        let swapped = cas
            .store
            .compare_and_swap(&cas.key, cas.observed.as_deref(), &value, Expiry::Never)
            .map_err(|e| CasError::StoreError(other(e)))?;
        if swapped {
            return Ok(());
        }
        let fresh = Cas::observe(cas.store, cas.key).map_err(CasError::StoreError)?;
        Err(CasError::CasFailed(atomics::Cas::new(fresh)))
    }
}

impl atomics::GuestCas for Cas {
    fn new(bucket: BucketBorrow<'_>, key: String) -> Result<atomics::Cas, Error> {
        let store = Rc::clone(&bucket.get::<Bucket>().0);
        Ok(atomics::Cas::new(Cas::observe(store, key)?))
    }

    fn current(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.observed.clone())
    }
}

impl batch::Guest for Component {
    fn get_many(
        bucket: BucketBorrow<'_>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, Error> {
        let store = &bucket.get::<Bucket>().0;
        keys.into_iter()
            .map(|key| {
                let value = store.get(&key).map_err(other)?;
                Ok(value.map(|value| (key, value)))
            })
            .collect()
    }

    fn set_many(bucket: BucketBorrow<'_>, key_values: Vec<(String, Vec<u8>)>) -> Result<(), Error> {
        let store = &bucket.get::<Bucket>().0;
        for (key, value) in key_values {
            store.insert(&key, &value, Expiry::Never).map_err(other)?;
        }
        Ok(())
    }

    fn delete_many(bucket: BucketBorrow<'_>, keys: Vec<String>) -> Result<(), Error> {
        let store = &bucket.get::<Bucket>().0;
        for key in keys {
            store.remove(&key).map_err(other)?;
        }
        Ok(())
    }
}

export!(Component);
