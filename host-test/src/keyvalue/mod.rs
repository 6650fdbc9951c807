//! The `wasi:keyvalue` component (world `keyvalue`) in wasmtime:
//! [`KeyValueRuntime`] compiles and pre-instantiates it once; each
//! [`KeyValueInstance`] has its own directory preopened as the root of its
//! buckets (`open("name")` is the cache in `<root>/name`). The component
//! exports both drafts; a [`Bucket`] is opened through one of them
//! ([`Version`]) and every call on it goes through that draft's exports.
//!
//! ```no_run
//! use filecache_host::HostConfig;
//! use filecache_host::keyvalue::{KeyValueRuntime, Version};
//! # fn main() -> Result<(), filecache_host::keyvalue::KeyValueError> {
//! let runtime = KeyValueRuntime::new(HostConfig::keyvalue())?;
//! let mut kv = runtime.instantiate("./buckets".as_ref())?;
//! let bucket = kv.open(Version::Draft2, "sessions")?;
//! kv.set(&bucket, "k", b"v")?;
//! assert_eq!(kv.increment(&bucket, "hits", 1)?, 1);
//! # Ok(()) }
//! ```

mod error;

use std::path::Path;

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use self::error::trap;
pub use self::error::{KeyValueError, SwapFailure};
use crate::HostConfig;
use crate::sandbox::{HostState, Prepared};

/// The generated bindings, kept private.
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "keyvalue",
    });
}

use generated::exports::wasi::keyvalue0_2_0_draft as draft;
use generated::exports::wasi::keyvalue0_2_0_draft2 as draft2;

/// Where each instance finds its buckets.
pub const GUEST_ROOT: &str = "/kv";

/// The `wasi:keyvalue` draft a bucket is used through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `0.2.0-draft2` (Spin's): string cursors, signed increments, compare-and-swap.
    Draft2,
    /// `0.2.0-draft` (wasmtime's and wasmCloud's): numeric cursors, unsigned
    /// increments, no compare-and-swap.
    Draft,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Draft2 => "0.2.0-draft2",
            Self::Draft => "0.2.0-draft",
        })
    }
}

/// What `get-many` returns: for each key asked, the pair, or `None` if absent.
pub type Pairs = Vec<Option<(String, Vec<u8>)>>;

/// An open bucket of an instance, and the draft it was opened through.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    resource: ResourceAny,
    version: Version,
}

impl Bucket {
    /// The draft this bucket is used through.
    pub fn version(&self) -> Version {
        self.version
    }
}

/// Where the next page of `list-keys` starts; only meaningful to the bucket's draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// A `0.2.0-draft2` cursor.
    Text(String),
    /// A `0.2.0-draft` cursor.
    Number(u64),
}

/// A compare-and-swap in progress (consumed by [`KeyValueInstance::swap`]).
#[derive(Debug)]
pub struct Cas(ResourceAny);

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

/// Calls `$call` on the bucket's draft: `$api` names the interface (`store`,
/// `atomics`, `batch`) or `bucket` (the `bucket` resource of `store`); the
/// trap and the store's error are mapped, the result is returned as is.
macro_rules! on_bucket {
    ($self:ident, $bucket:expr, bucket . $call:ident ( $($arg:expr),* )) => {
        match $bucket.version {
            Version::Draft2 => $self.instance.wasi_keyvalue0_2_0_draft2_store().bucket()
                .$call(&mut $self.store, $bucket.resource, $($arg),*).map_err(trap)?
                .map_err(KeyValueError::from),
            Version::Draft => $self.instance.wasi_keyvalue0_2_0_draft_store().bucket()
                .$call(&mut $self.store, $bucket.resource, $($arg),*).map_err(trap)?
                .map_err(KeyValueError::from),
        }
    };
    ($self:ident, $bucket:expr, batch . $call:ident ( $($arg:expr),* )) => {
        match $bucket.version {
            Version::Draft2 => $self.instance.wasi_keyvalue0_2_0_draft2_batch()
                .$call(&mut $self.store, $bucket.resource, $($arg),*).map_err(trap)?
                .map_err(KeyValueError::from),
            Version::Draft => $self.instance.wasi_keyvalue0_2_0_draft_batch()
                .$call(&mut $self.store, $bucket.resource, $($arg),*).map_err(trap)?
                .map_err(KeyValueError::from),
        }
    };
}

impl KeyValueInstance {
    /// `store.open(identifier)` of the draft `version`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn open(&mut self, version: Version, identifier: &str) -> Result<Bucket, KeyValueError> {
        let resource = match version {
            Version::Draft2 => self
                .instance
                .wasi_keyvalue0_2_0_draft2_store()
                .call_open(&mut self.store, identifier)
                .map_err(trap)??,
            Version::Draft => self
                .instance
                .wasi_keyvalue0_2_0_draft_store()
                .call_open(&mut self.store, identifier)
                .map_err(trap)??,
        };
        Ok(Bucket { resource, version })
    }

    /// `bucket.get(key)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn get(&mut self, bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>, KeyValueError> {
        on_bucket!(self, bucket, bucket.call_get(key))
    }

    /// `bucket.set(key, value)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn set(&mut self, bucket: &Bucket, key: &str, value: &[u8]) -> Result<(), KeyValueError> {
        on_bucket!(self, bucket, bucket.call_set(key, value))
    }

    /// `bucket.delete(key)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn delete(&mut self, bucket: &Bucket, key: &str) -> Result<(), KeyValueError> {
        on_bucket!(self, bucket, bucket.call_delete(key))
    }

    /// `bucket.exists(key)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn exists(&mut self, bucket: &Bucket, key: &str) -> Result<bool, KeyValueError> {
        on_bucket!(self, bucket, bucket.call_exists(key))
    }

    /// `bucket.list-keys(cursor)`: the keys of one page and the next cursor.
    ///
    /// # Errors
    /// The store's error, a trap, or a cursor of the other draft.
    pub fn list_keys(
        &mut self,
        bucket: &Bucket,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<String>, Option<Cursor>), KeyValueError> {
        let resource = bucket.resource;
        match (bucket.version, cursor) {
            (Version::Draft2, None | Some(Cursor::Text(_))) => {
                let text = match cursor {
                    Some(Cursor::Text(text)) => Some(text.as_str()),
                    _ => None,
                };
                let api = self.instance.wasi_keyvalue0_2_0_draft2_store().bucket();
                let page = api
                    .call_list_keys(&mut self.store, resource, text)
                    .map_err(trap)??;
                Ok((page.keys, page.cursor.map(Cursor::Text)))
            }
            (Version::Draft, None | Some(Cursor::Number(_))) => {
                let number = match cursor {
                    Some(Cursor::Number(number)) => Some(*number),
                    _ => None,
                };
                let api = self.instance.wasi_keyvalue0_2_0_draft_store().bucket();
                let page = api
                    .call_list_keys(&mut self.store, resource, number)
                    .map_err(trap)??;
                Ok((page.keys, page.cursor.map(Cursor::Number)))
            }
            (version, Some(_)) => Err(KeyValueError::OtherVersion {
                operation: "a cursor of the other draft",
                version,
            }),
        }
    }

    /// `atomics.increment(bucket, key, delta)` of `0.2.0-draft2` (signed).
    ///
    /// # Errors
    /// The store's error, a trap, or a bucket of `0.2.0-draft`.
    pub fn increment(
        &mut self,
        bucket: &Bucket,
        key: &str,
        delta: i64,
    ) -> Result<i64, KeyValueError> {
        self.expect(bucket, Version::Draft2, "a signed increment")?;
        let api = self.instance.wasi_keyvalue0_2_0_draft2_atomics();
        Ok(api
            .call_increment(&mut self.store, bucket.resource, key, delta)
            .map_err(trap)??)
    }

    /// `atomics.increment(bucket, key, delta)` of `0.2.0-draft` (unsigned).
    ///
    /// # Errors
    /// The store's error, a trap, or a bucket of `0.2.0-draft2`.
    pub fn increment_unsigned(
        &mut self,
        bucket: &Bucket,
        key: &str,
        delta: u64,
    ) -> Result<u64, KeyValueError> {
        self.expect(bucket, Version::Draft, "an unsigned increment")?;
        let api = self.instance.wasi_keyvalue0_2_0_draft_atomics();
        Ok(api
            .call_increment(&mut self.store, bucket.resource, key, delta)
            .map_err(trap)??)
    }

    /// `cas.new(bucket, key)` (`0.2.0-draft2` only).
    ///
    /// # Errors
    /// The store's error, a trap, or a bucket of `0.2.0-draft`.
    pub fn cas(&mut self, bucket: &Bucket, key: &str) -> Result<Cas, KeyValueError> {
        self.expect(bucket, Version::Draft2, "compare-and-swap")?;
        let api = self.instance.wasi_keyvalue0_2_0_draft2_atomics().cas();
        let cas = api
            .call_new(&mut self.store, bucket.resource, key)
            .map_err(trap)??;
        Ok(Cas(cas))
    }

    /// `cas.current()`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn current(&mut self, cas: &Cas) -> Result<Option<Vec<u8>>, KeyValueError> {
        let api = self.instance.wasi_keyvalue0_2_0_draft2_atomics().cas();
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
        let api = self.instance.wasi_keyvalue0_2_0_draft2_atomics();
        Ok(
            match api.call_swap(&mut self.store, cas.0, value).map_err(trap)? {
                Ok(()) => Ok(()),
                Err(draft2::atomics::CasError::CasFailed(fresh)) => {
                    Err(SwapFailure::Changed(Cas(fresh)))
                }
                Err(draft2::atomics::CasError::StoreError(e)) => Err(SwapFailure::Store(e.into())),
            },
        )
    }

    /// `batch.get-many(bucket, keys)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn get_many(&mut self, bucket: &Bucket, keys: &[String]) -> Result<Pairs, KeyValueError> {
        on_bucket!(self, bucket, batch.call_get_many(keys))
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
        on_bucket!(self, bucket, batch.call_set_many(key_values))
    }

    /// `batch.delete-many(bucket, keys)`.
    ///
    /// # Errors
    /// The store's error, or a trap.
    pub fn delete_many(&mut self, bucket: &Bucket, keys: &[String]) -> Result<(), KeyValueError> {
        on_bucket!(self, bucket, batch.call_delete_many(keys))
    }

    /// Refuses a call the bucket's draft does not have.
    fn expect(
        &self,
        bucket: &Bucket,
        version: Version,
        operation: &'static str,
    ) -> Result<(), KeyValueError> {
        if bucket.version == version {
            Ok(())
        } else {
            Err(KeyValueError::OtherVersion {
                operation,
                version: bucket.version,
            })
        }
    }
}
