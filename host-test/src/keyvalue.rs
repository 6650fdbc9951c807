//! The `wasi:keyvalue` component (world `keyvalue`, 0.2.0-draft2) in wasmtime:
//! [`KeyValueRuntime`] compiles and pre-instantiates it once; each
//! [`KeyValueInstance`] has its own directory preopened as the root of its
//! buckets (`open("name")` is the cache in `<root>/name`).
//!
//! ```no_run
//! use filecache_host::HostConfig;
//! use filecache_host::keyvalue::KeyValueRuntime;
//! # fn main() -> Result<(), filecache_host::keyvalue::KeyValueError> {
//! let runtime = KeyValueRuntime::new(HostConfig::keyvalue())?;
//! let mut kv = runtime.instantiate("./buckets".as_ref())?;
//! let bucket = kv.open("sessions")?;
//! kv.set(&bucket, "k", b"v")?;
//! assert_eq!(kv.increment(&bucket, "hits", 1)?, 1);
//! # Ok(()) }
//! ```

use std::path::Path;

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::sandbox::{HostState, Prepared};
use crate::{HostConfig, HostError};

/// The generated bindings, kept private.
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "keyvalue",
    });
}

use generated::exports::wasi::keyvalue::atomics::CasError as WitCasError;
use generated::exports::wasi::keyvalue::store::Error as WitError;

/// Where each instance finds its buckets.
pub const GUEST_ROOT: &str = "/kv";

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
    /// The runtime failed: compile, link, instantiate, or a trap.
    #[error(transparent)]
    Host(#[from] HostError),
}

impl From<WitError> for KeyValueError {
    fn from(error: WitError) -> Self {
        match error {
            WitError::NoSuchStore => Self::NoSuchStore,
            WitError::AccessDenied => Self::AccessDenied,
            WitError::Other(message) => Self::Other(message),
        }
    }
}

fn trap(error: wasmtime::Error) -> KeyValueError {
    KeyValueError::Host(HostError::Runtime(error))
}

/// What `get-many` returns: for each key asked, the pair, or `None` if absent.
pub type Pairs = Vec<Option<(String, Vec<u8>)>>;

/// An open bucket of an instance.
#[derive(Debug)]
pub struct Bucket(ResourceAny);

/// A compare-and-swap in progress (consumed by [`KeyValueInstance::swap`]).
#[derive(Debug)]
pub struct Cas(ResourceAny);

/// Why a swap did not happen.
#[derive(Debug)]
pub enum SwapFailure {
    /// The value changed since the handle was made: a fresh handle to retry with.
    Changed(Cas),
    /// The store failed.
    Store(KeyValueError),
}

/// The compiled, pre-instantiated `wasi:keyvalue` component.
#[derive(Debug)]
pub struct KeyValueRuntime(Prepared<generated::KeyvaluePre<HostState>>);

impl KeyValueRuntime {
    /// Compiles the component (see [`HostConfig::keyvalue`]) and links it with WASI.
    ///
    /// # Errors
    /// The runtime's failure to read, compile or link it.
    pub fn new(config: HostConfig) -> Result<Self, KeyValueError> {
        Prepared::new(config, |pre| generated::KeyvaluePre::new(pre).map_err(trap)).map(Self)
    }

    /// A fresh instance whose buckets live in `root` (created if missing).
    ///
    /// # Errors
    /// The runtime's failure to make the instance.
    pub fn instantiate(&self, root: &Path) -> Result<KeyValueInstance, KeyValueError> {
        let env = [("FILECACHE_KEYVALUE_ROOT", GUEST_ROOT)];
        let mut store = self.0.store(root, GUEST_ROOT, &env)?;
        let instance = self.0.pre.instantiate(&mut store).map_err(trap)?;
        Ok(KeyValueInstance { store, instance })
    }
}

/// One instance of the component, with typed calls into `wasi:keyvalue`.
pub struct KeyValueInstance {
    store: Store<HostState>,
    instance: generated::Keyvalue,
}

impl std::fmt::Debug for KeyValueInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyValueInstance").finish_non_exhaustive()
    }
}

impl KeyValueInstance {
    /// `store.open(identifier)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn open(&mut self, identifier: &str) -> Result<Bucket, KeyValueError> {
        let store = self.instance.wasi_keyvalue_store();
        let bucket = store
            .call_open(&mut self.store, identifier)
            .map_err(trap)??;
        Ok(Bucket(bucket))
    }

    /// `bucket.get(key)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn get(&mut self, bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>, KeyValueError> {
        let api = self.instance.wasi_keyvalue_store().bucket();
        Ok(api
            .call_get(&mut self.store, bucket.0, key)
            .map_err(trap)??)
    }

    /// `bucket.set(key, value)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn set(&mut self, bucket: &Bucket, key: &str, value: &[u8]) -> Result<(), KeyValueError> {
        let api = self.instance.wasi_keyvalue_store().bucket();
        Ok(api
            .call_set(&mut self.store, bucket.0, key, value)
            .map_err(trap)??)
    }

    /// `bucket.delete(key)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn delete(&mut self, bucket: &Bucket, key: &str) -> Result<(), KeyValueError> {
        let api = self.instance.wasi_keyvalue_store().bucket();
        Ok(api
            .call_delete(&mut self.store, bucket.0, key)
            .map_err(trap)??)
    }

    /// `bucket.exists(key)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn exists(&mut self, bucket: &Bucket, key: &str) -> Result<bool, KeyValueError> {
        let api = self.instance.wasi_keyvalue_store().bucket();
        Ok(api
            .call_exists(&mut self.store, bucket.0, key)
            .map_err(trap)??)
    }

    /// `bucket.list-keys(cursor)`: the keys of one page and the next cursor.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn list_keys(
        &mut self,
        bucket: &Bucket,
        cursor: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>), KeyValueError> {
        let api = self.instance.wasi_keyvalue_store().bucket();
        let page = api
            .call_list_keys(&mut self.store, bucket.0, cursor)
            .map_err(trap)??;
        Ok((page.keys, page.cursor))
    }

    /// `atomics.increment(bucket, key, delta)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn increment(
        &mut self,
        bucket: &Bucket,
        key: &str,
        delta: i64,
    ) -> Result<i64, KeyValueError> {
        let api = self.instance.wasi_keyvalue_atomics();
        Ok(api
            .call_increment(&mut self.store, bucket.0, key, delta)
            .map_err(trap)??)
    }

    /// `cas.new(bucket, key)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn cas(&mut self, bucket: &Bucket, key: &str) -> Result<Cas, KeyValueError> {
        let api = self.instance.wasi_keyvalue_atomics().cas();
        let cas = api
            .call_new(&mut self.store, bucket.0, key)
            .map_err(trap)??;
        Ok(Cas(cas))
    }

    /// `cas.current()`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn current(&mut self, cas: &Cas) -> Result<Option<Vec<u8>>, KeyValueError> {
        let api = self.instance.wasi_keyvalue_atomics().cas();
        Ok(api.call_current(&mut self.store, cas.0).map_err(trap)??)
    }

    /// `atomics.swap(cas, value)`; consumes the handle.
    ///
    /// # Errors
    /// A trap (the swap's own outcome is the inner result).
    pub fn swap(
        &mut self,
        cas: Cas,
        value: &[u8],
    ) -> Result<Result<(), SwapFailure>, KeyValueError> {
        let api = self.instance.wasi_keyvalue_atomics();
        Ok(
            match api.call_swap(&mut self.store, cas.0, value).map_err(trap)? {
                Ok(()) => Ok(()),
                Err(WitCasError::CasFailed(fresh)) => Err(SwapFailure::Changed(Cas(fresh))),
                Err(WitCasError::StoreError(e)) => Err(SwapFailure::Store(e.into())),
            },
        )
    }

    /// `batch.get-many(bucket, keys)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn get_many(&mut self, bucket: &Bucket, keys: &[String]) -> Result<Pairs, KeyValueError> {
        let api = self.instance.wasi_keyvalue_batch();
        Ok(api
            .call_get_many(&mut self.store, bucket.0, keys)
            .map_err(trap)??)
    }

    /// `batch.set-many(bucket, key-values)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn set_many(
        &mut self,
        bucket: &Bucket,
        key_values: &[(String, Vec<u8>)],
    ) -> Result<(), KeyValueError> {
        let api = self.instance.wasi_keyvalue_batch();
        Ok(api
            .call_set_many(&mut self.store, bucket.0, key_values)
            .map_err(trap)??)
    }

    /// `batch.delete-many(bucket, keys)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn delete_many(&mut self, bucket: &Bucket, keys: &[String]) -> Result<(), KeyValueError> {
        let api = self.instance.wasi_keyvalue_batch();
        Ok(api
            .call_delete_many(&mut self.store, bucket.0, keys)
            .map_err(trap)??)
    }
}
