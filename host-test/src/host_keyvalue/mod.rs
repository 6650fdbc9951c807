//! `wasi:keyvalue@0.2.0-draft` served by the host: a guest that imports it
//! (such as `examples/kv-plugin`) is linked to a [`KeyValueStore`] the host
//! chooses — `RedisStore` (feature `redis`) puts its buckets in a Redis
//! server, so the same plugin that runs on filecache's component on one
//! machine runs on a store many machines share.
//!
//! A bucket is a name; the store keeps every bucket's keys apart. The import
//! glue (bindings and their implementation for the host state) is in the
//! private module `imports`; `crate::visits::VisitsRuntime::on_host_store`
//! links a guest to it.

pub(crate) mod imports;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::RedisStore;

/// What a [`KeyValueStore`] call can fail with: `wasi:keyvalue`'s `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The bucket name is refused (`access-denied`).
    #[error("access denied")]
    AccessDenied,
    /// The store failed (`other`), with what it said.
    #[error("{0}")]
    Other(String),
}

/// One page of a bucket's keys, and where the next begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    /// The keys of this page.
    pub keys: Vec<String>,
    /// The cursor of the next page; `None` after the last.
    pub cursor: Option<u64>,
}

/// A key-value store behind `wasi:keyvalue`: one connection, used by one
/// instance at a time. Values are bytes; counters are decimal text.
pub trait KeyValueStore: Send {
    /// Checks that `bucket` may be opened.
    ///
    /// # Errors
    /// [`StoreError::AccessDenied`] for a refused name; the store's failure.
    fn open(&mut self, bucket: &str) -> Result<(), StoreError>;
    /// The value of `key`, if any.
    ///
    /// # Errors
    /// The store's failure.
    fn get(&mut self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// The store's failure.
    fn set(&mut self, bucket: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Deletes `key` (absent is fine).
    ///
    /// # Errors
    /// The store's failure.
    fn delete(&mut self, bucket: &str, key: &str) -> Result<(), StoreError>;
    /// Whether `key` holds a value.
    ///
    /// # Errors
    /// The store's failure.
    fn exists(&mut self, bucket: &str, key: &str) -> Result<bool, StoreError>;
    /// One page of the bucket's keys, from `cursor` (`None`: the first page).
    /// Every key present for the whole listing is listed.
    ///
    /// # Errors
    /// The store's failure.
    fn list_keys(&mut self, bucket: &str, cursor: Option<u64>) -> Result<KeyPage, StoreError>;
    /// Adds `delta` to the counter `key` (absent: 0), atomically; the new value.
    ///
    /// # Errors
    /// A value that is not a counter, an overflow, the store's failure.
    fn increment(&mut self, bucket: &str, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// Sets `key` to `new` if it still holds `expected` (`None`: absent),
    /// atomically; whether it did.
    ///
    /// # Errors
    /// The store's failure.
    fn compare_and_swap(
        &mut self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError>;
    /// The values of `keys`, in order (`None` where absent).
    ///
    /// # Errors
    /// The store's failure.
    fn get_many(
        &mut self,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Sets every pair.
    ///
    /// # Errors
    /// The store's failure.
    fn set_many(&mut self, bucket: &str, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError>;
    /// Deletes every key (absent ones are fine).
    ///
    /// # Errors
    /// The store's failure.
    fn delete_many(&mut self, bucket: &str, keys: &[String]) -> Result<(), StoreError>;
}
