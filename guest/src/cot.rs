//! The adapter for the Cot web framework (feature `cot`): [`CotStore`]
//! implements `cot::cache::store::CacheStore`, so a `cot::cache::Cache` can keep
//! its entries in a filecache directory — shared with other processes, wasm
//! instances and the command line.
//!
//! Values are Cot's `serde_json::Value`s, stored as JSON bytes. Cot's `Timeout`
//! maps to [`Expiry`] with millisecond precision (`AtDateTime` through its Unix
//! milliseconds). Every file operation runs on tokio's blocking pool
//! (`spawn_blocking`), never on the async executor. Errors map to
//! `CacheStoreError`: store failures to `Backend`, JSON failures to
//! `Serialize` / `Deserialize`.
//!
//! ```no_run
//! # async fn demo() -> cot::cache::CacheResult<()> {
//! use std::time::Duration;
//! use cot::cache::Cache;
//! use cot::config::Timeout;
//! use filecache::Options;
//! use filecache::cot::CotStore;
//!
//! let store = CotStore::open("./cache", Options::default()).expect("open the cache");
//! let cache = Cache::new(store, Some("myapp".into()), Timeout::After(Duration::from_secs(300)));
//! cache.insert("user:1", "Ada").await?;
//! let user: Option<String> = cache.get("user:1").await?;
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;

use cot::cache::store::{CacheStore, CacheStoreError, CacheStoreResult};
use cot::config::Timeout;
use serde_json::Value;

use crate::{Expiry, FileStore, Options, Result};

/// A filecache directory as a Cot cache store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CotStore {
    store: Arc<FileStore>,
}

impl CotStore {
    /// Opens (creating) the cache in `dir` for Cot.
    ///
    /// # Errors
    /// As for [`FileStore::open`].
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self> {
        Ok(Self::new(FileStore::open(dir, options)?))
    }

    /// Wraps an open store.
    pub fn new(store: FileStore) -> Self {
        Self {
            store: Arc::new(store),
        }
    }

    /// The store underneath (for its statistics, atomic operations, …).
    pub fn file_store(&self) -> &FileStore {
        &self.store
    }

    /// Runs `op` on the store in tokio's blocking pool.
    async fn blocking<T, F>(&self, op: F) -> CacheStoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&FileStore) -> Result<T> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || op(&store))
            .await
            .map_err(|e| CacheStoreError::Backend(format!("the cache task failed: {e}")))?
            .map_err(|e| CacheStoreError::Backend(e.to_string()))
    }
}

/// Cot's timeout as an expiry, to the millisecond.
///
/// # Errors
/// `CacheStoreError::Backend` for a kind of timeout this adapter does not know
/// (`Timeout` is non-exhaustive).
pub fn expiry_of(timeout: Timeout) -> CacheStoreResult<Expiry> {
    match timeout {
        Timeout::Never => Ok(Expiry::Never),
        Timeout::After(duration) => Ok(Expiry::After(duration)),
        Timeout::AtDateTime(at) => Ok(match u64::try_from(at.timestamp_millis()) {
            Ok(ms) => Expiry::at_unix_ms(ms),
            // Before 1970: long expired.
            Err(_) => Expiry::At(std::time::UNIX_EPOCH),
        }),
        other => Err(CacheStoreError::Backend(format!(
            "unsupported timeout {other:?}"
        ))),
    }
}

impl CacheStore for CotStore {
    async fn get(&self, key: &str) -> CacheStoreResult<Option<Value>> {
        let key = key.to_owned();
        let Some(bytes) = self.blocking(move |store| store.get(&key)).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CacheStoreError::Deserialize(e.to_string()))
    }

    async fn insert(&self, key: String, value: Value, expiry: Timeout) -> CacheStoreResult<()> {
        let expiry = expiry_of(expiry)?;
        let bytes =
            serde_json::to_vec(&value).map_err(|e| CacheStoreError::Serialize(e.to_string()))?;
        self.blocking(move |store| store.insert(&key, &bytes, expiry))
            .await
    }

    async fn remove(&self, key: &str) -> CacheStoreResult<()> {
        let key = key.to_owned();
        self.blocking(move |store| store.remove(&key)).await
    }

    async fn clear(&self) -> CacheStoreResult<()> {
        self.blocking(FileStore::clear).await
    }

    async fn approx_size(&self) -> CacheStoreResult<usize> {
        let size = self.blocking(FileStore::approx_size).await?;
        Ok(usize::try_from(size).unwrap_or(usize::MAX))
    }

    async fn contains_key(&self, key: &str) -> CacheStoreResult<bool> {
        let key = key.to_owned();
        self.blocking(move |store| store.contains_key(&key)).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timeouts_map_to_the_millisecond() {
        assert_eq!(expiry_of(Timeout::Never).ok(), Some(Expiry::Never));
        let after = Duration::from_millis(300);
        assert_eq!(
            expiry_of(Timeout::After(after)).ok(),
            Some(Expiry::After(after))
        );
        let at = cot::config::Timeout::After(Duration::from_millis(1)).canonicalize();
        let Timeout::AtDateTime(datetime) = at else {
            panic!("canonicalize gives a date-time: {at:?}");
        };
        let ms = u64::try_from(datetime.timestamp_millis()).expect("after 1970");
        assert_eq!(expiry_of(at).ok(), Some(Expiry::at_unix_ms(ms)));
    }
}
