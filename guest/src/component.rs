//! The wit-bindgen glue: exports `filecache:cache/store` from the wasm32-wasip2
//! component. It only converts between the generated WIT types and the crate's
//! own; all cache logic lives in the plain modules.
// The generated bindings are ABI glue made of `unsafe` exports; nothing else here is.
#![allow(unsafe_code)]

use std::time::Duration;

use exports::filecache::cache::store::{Cache, Guest, GuestCache};
use filecache::cache::types::{self as wit};

wit_bindgen::generate!({
    path: "../wit",
    world: "cache",
});

struct Component;

impl Guest for Component {
    type Cache = CacheHandle;
}

/// The resource behind a `cache` handle.
struct CacheHandle(crate::FileStore);

impl GuestCache for CacheHandle {
    fn open(dir: String, options: wit::Options) -> Result<Cache, wit::Error> {
        let store = crate::FileStore::open(dir, options_from_wit(&options)?)?;
        Ok(Cache::new(CacheHandle(store)))
    }

    fn get(&self, key: String) -> Result<Option<Vec<u8>>, wit::Error> {
        Ok(self.0.get(&key)?)
    }

    fn insert(&self, key: String, value: Vec<u8>, expiry: wit::Expiry) -> Result<(), wit::Error> {
        Ok(self.0.insert(&key, &value, expiry_from_wit(expiry))?)
    }

    fn remove(&self, key: String) -> Result<(), wit::Error> {
        Ok(self.0.remove(&key)?)
    }

    fn add(&self, key: String, value: Vec<u8>, expiry: wit::Expiry) -> Result<bool, wit::Error> {
        Ok(self.0.add(&key, &value, expiry_from_wit(expiry))?)
    }

    fn increment(&self, key: String, delta: i64) -> Result<i64, wit::Error> {
        Ok(self.0.increment(&key, delta)?)
    }

    fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
        expiry: wit::Expiry,
    ) -> Result<bool, wit::Error> {
        Ok(self
            .0
            .compare_and_swap(&key, expected.as_deref(), &new, expiry_from_wit(expiry))?)
    }

    fn touch(&self, key: String, expiry: wit::Expiry) -> Result<bool, wit::Error> {
        Ok(self.0.touch(&key, expiry_from_wit(expiry))?)
    }

    fn contains_key(&self, key: String) -> Result<bool, wit::Error> {
        Ok(self.0.contains_key(&key)?)
    }

    fn clear(&self) -> Result<(), wit::Error> {
        Ok(self.0.clear()?)
    }

    fn approx_size(&self) -> Result<u64, wit::Error> {
        Ok(self.0.approx_size()?)
    }

    fn list_keys(&self, cursor: Option<String>) -> Result<wit::KeyPage, wit::Error> {
        let page = self.0.list_keys(cursor.as_deref())?;
        Ok(wit::KeyPage {
            keys: page.keys,
            cursor: page.cursor,
        })
    }

    fn stats(&self) -> Result<wit::Stats, wit::Error> {
        let s = self.0.stats()?;
        Ok(wit::Stats {
            entries: s.entries,
            bytes: s.bytes,
            hits: s.hits,
            misses: s.misses,
            expired_removed: s.expired_removed,
            evicted: s.evicted,
            corrupt_removed: s.corrupt_removed,
        })
    }
}

fn options_from_wit(options: &wit::Options) -> Result<crate::Options, wit::Error> {
    let defaults = crate::Options::default();
    let max_key_bytes = match options.max_key_bytes {
        Some(bytes) => usize::try_from(bytes)
            .map_err(|_| wit::Error::InvalidInput("max-key-bytes does not fit in memory".into()))?,
        None => defaults.max_key_bytes,
    };
    Ok(crate::Options {
        durable: options.durable.unwrap_or(defaults.durable),
        max_key_bytes,
        max_value_bytes: options.max_value_bytes.unwrap_or(defaults.max_value_bytes),
        lease: options
            .lease_ms
            .map_or(defaults.lease, Duration::from_millis),
        lock_timeout: options
            .lock_timeout_ms
            .map_or(defaults.lock_timeout, Duration::from_millis),
        max_entries: options.max_entries,
        max_bytes: options.max_bytes,
        group_shared: options.group_shared.unwrap_or(defaults.group_shared),
    })
}

fn expiry_from_wit(expiry: wit::Expiry) -> crate::Expiry {
    match expiry {
        wit::Expiry::Never => crate::Expiry::Never,
        wit::Expiry::After(ms) => crate::Expiry::After(Duration::from_millis(ms)),
        wit::Expiry::At(ms) => crate::Expiry::at_unix_ms(ms),
    }
}

impl From<crate::Error> for wit::Error {
    fn from(error: crate::Error) -> Self {
        use crate::Error as E;
        let message = error.to_string();
        match error {
            E::InvalidInput { reason } => Self::InvalidInput(reason),
            E::Io {
                operation,
                path,
                source,
            } => Self::Io(failure(operation, &path, &source)),
            E::StorageFull {
                operation,
                path,
                source,
            } => Self::StorageFull(failure(operation, &path, &source)),
            E::Busy { what } => Self::Busy(what),
            E::Corrupt { .. } => Self::Corrupt(message),
        }
    }
}

fn failure(operation: String, path: &std::path::Path, source: &std::io::Error) -> wit::IoFailure {
    wit::IoFailure {
        operation,
        path: path.display().to_string(),
        message: source.to_string(),
    }
}

export!(Component);
