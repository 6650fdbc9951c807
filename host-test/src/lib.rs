//! filecache-host: runs the filecache component inside a wasmtime host.
//!
//! A small library any Rust wasm host can embed: [`CacheRuntime`] compiles and
//! pre-instantiates the component once; [`CacheRuntime::open`] gives a fresh
//! instance its own preopened directory (with blocking file I/O on the calling
//! thread, and a memory limit) and opens the cache there, returning a
//! [`ComponentCache`] with a typed API mirroring [`filecache::FileStore`].
//!
//! ```
//! use filecache_host::{CacheRuntime, HostConfig};
//! # fn main() -> Result<(), filecache_host::HostError> {
//! # let dir = tempfile::tempdir().expect("temp dir");
//! # let my_cache = dir.path().join("my-cache");
//! let runtime = CacheRuntime::new(HostConfig::default())?;
//! let mut cache = runtime.open(&my_cache, &filecache::Options::default())?;
//! cache.insert("k", b"v", filecache::Expiry::Never)?;
//! assert_eq!(cache.get("k")?, Some(b"v".to_vec()));
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod bindings;
mod error;
pub mod host_keyvalue;
pub mod keyvalue;
pub mod plugin;
pub mod precompiled;
mod sandbox;
pub mod visits;

use std::path::Path;

use wasmtime::component::ResourceAny;
use wasmtime::{Engine, Store};

use bindings::{GuestCache, wit};
use sandbox::{HostState, Prepared};

pub use error::{CacheError, HostError};

/// Paths of the components `build.rs` built for `wasm32-wasip2`.
pub mod artifacts {
    include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
}

/// The directory, inside the guest, where [`CacheRuntime::open`] preopens the cache.
pub const GUEST_CACHE_DIR: &str = "/cache";

/// How instances are set up.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The most linear memory one instance may grow to, in bytes. Default: 512 MiB.
    pub memory_limit: usize,
    /// The component file. Default: [`artifacts::CACHE_COMPONENT`].
    pub component: std::path::PathBuf,
    /// How many instances may live at once, if instances come from a pool
    /// (memory and tables reserved once and reused: a fresh instance then costs
    /// tens of microseconds, not hundreds). `None` allocates each instance on
    /// its own, with no limit. Default: `Some(128)`.
    pub pooled_instances: Option<u32>,
    /// Where compiled components are kept between processes, so that every
    /// process after the first loads the component instead of compiling it
    /// (see [`precompiled`]). `None` compiles every time. Default:
    /// [`precompiled::default_dir`].
    pub precompiled_dir: Option<std::path::PathBuf>,
}

impl HostConfig {
    /// The defaults, for the plugin example composed with the cache
    /// ([`plugin::PluginRuntime`]).
    pub fn plugin() -> Self {
        Self {
            component: artifacts::PLUGIN_COMPOSED.into(),
            ..Self::default()
        }
    }

    /// The defaults, for the keyvalue plugin example composed with the
    /// `wasi:keyvalue` component ([`visits::VisitsRuntime`]).
    pub fn kv_plugin() -> Self {
        Self {
            component: artifacts::KV_PLUGIN_COMPOSED.into(),
            ..Self::default()
        }
    }

    /// The defaults, for the `wasi:keyvalue` component ([`keyvalue::KeyValueRuntime`]).
    pub fn keyvalue() -> Self {
        Self {
            component: artifacts::KEYVALUE_COMPONENT.into(),
            ..Self::default()
        }
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            memory_limit: 512 * 1024 * 1024,
            component: artifacts::CACHE_COMPONENT.into(),
            pooled_instances: Some(128),
            precompiled_dir: precompiled::default_dir(),
        }
    }
}

/// The compiled, pre-instantiated component; cheap to share across threads.
#[derive(Debug)]
pub struct CacheRuntime(Prepared<bindings::CachePre<HostState>>);

impl CacheRuntime {
    /// Compiles the component (or loads it precompiled, see
    /// [`HostConfig::precompiled_dir`]) and links it with WASI.
    ///
    /// # Errors
    /// [`HostError::Runtime`] if the component cannot be read, compiled or linked.
    pub fn new(config: HostConfig) -> Result<Self, HostError> {
        Prepared::new(config, |pre| {
            bindings::CachePre::new(pre).map_err(HostError::Runtime)
        })
        .map(Self)
    }

    /// Whether the component was compiled or loaded precompiled, and how long
    /// that took.
    pub fn loaded(&self) -> &precompiled::Loaded {
        &self.0.loaded
    }

    /// The wasmtime engine the component was compiled with.
    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// Instantiates the component with `host_dir` preopened at
    /// [`GUEST_CACHE_DIR`] and opens the cache there.
    ///
    /// # Errors
    /// [`HostError::Cache`] if the guest refuses (bad options, I/O failure);
    /// [`HostError::Runtime`] if instantiation fails or the guest traps.
    pub fn open(
        &self,
        host_dir: &Path,
        options: &filecache::Options,
    ) -> Result<ComponentCache, HostError> {
        self.instantiate(host_dir)?.open(options)
    }

    /// A fresh instance with `host_dir` (created if missing) preopened at
    /// [`GUEST_CACHE_DIR`], not yet holding an open cache.
    ///
    /// # Errors
    /// [`HostError::Runtime`] if the directory cannot be created or opened, or
    /// instantiation fails.
    pub fn instantiate(&self, host_dir: &Path) -> Result<CacheInstance, HostError> {
        let mut store = self.0.store(host_dir, GUEST_CACHE_DIR, &[])?;
        let instance = self
            .0
            .pre
            .instantiate(&mut store)
            .map_err(HostError::Runtime)?;
        Ok(CacheInstance { store, instance })
    }
}

/// A fresh instance of the component, its directory preopened, no cache open yet.
pub struct CacheInstance {
    store: Store<HostState>,
    instance: bindings::Cache,
}

impl std::fmt::Debug for CacheInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheInstance").finish_non_exhaustive()
    }
}

impl CacheInstance {
    /// Opens the cache in the preopened directory.
    ///
    /// # Errors
    /// [`HostError::Cache`] if the guest refuses (bad options, I/O failure);
    /// [`HostError::Runtime`] if the guest traps.
    pub fn open(mut self, options: &filecache::Options) -> Result<ComponentCache, HostError> {
        let wit_options = bindings::options_to_wit(options);
        let handle = self
            .instance
            .filecache_cache_store()
            .cache()
            .call_open(&mut self.store, GUEST_CACHE_DIR, wit_options)
            .map_err(HostError::Runtime)??;
        Ok(ComponentCache {
            store: self.store,
            instance: self.instance,
            handle,
            close_on_drop: true,
        })
    }
}

/// One cache opened inside its own component instance.
pub struct ComponentCache {
    store: Store<HostState>,
    instance: bindings::Cache,
    handle: ResourceAny,
    /// Whether dropping this closes the guest's cache first (its destructor
    /// reports what the handle changed); see [`ComponentCache::discard`].
    close_on_drop: bool,
}

impl std::fmt::Debug for ComponentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentCache").finish_non_exhaustive()
    }
}

impl ComponentCache {
    fn call<T>(
        &mut self,
        f: impl FnOnce(
            &GuestCache<'_>,
            &mut Store<HostState>,
            ResourceAny,
        ) -> wasmtime::Result<Result<T, wit::Error>>,
    ) -> Result<T, HostError> {
        let guest = self.instance.filecache_cache_store().cache();
        Ok(f(&guest, &mut self.store, self.handle).map_err(HostError::Runtime)??)
    }

    /// See [`filecache::FileStore::get`].
    ///
    /// # Errors
    /// The guest's error, or a trap.
    pub fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.call(|g, s, h| g.call_get(s, h, key))
    }

    /// See [`filecache::FileStore::insert`].
    ///
    /// # Errors
    /// The guest's error, or a trap.
    pub fn insert(
        &mut self,
        key: &str,
        value: &[u8],
        expiry: filecache::Expiry,
    ) -> Result<(), HostError> {
        let expiry = bindings::expiry_to_wit(expiry);
        self.call(|g, s, h| g.call_insert(s, h, key, value, expiry))
    }

    /// See [`filecache::FileStore::remove`].
    ///
    /// # Errors
    /// The guest's error, or a trap.
    pub fn remove(&mut self, key: &str) -> Result<(), HostError> {
        self.call(|g, s, h| g.call_remove(s, h, key))
    }

    /// See [`filecache::FileStore::add`].
    ///
    /// # Errors
    /// The guest's error, or a trap.
    pub fn add(
        &mut self,
        key: &str,
        value: &[u8],
        expiry: filecache::Expiry,
    ) -> Result<bool, HostError> {
        let expiry = bindings::expiry_to_wit(expiry);
        self.call(|g, s, h| g.call_add(s, h, key, value, expiry))
    }

    /// See [`filecache::FileStore::increment`].
    ///
    /// # Errors
    /// The guest's error, or a trap.
    pub fn increment(&mut self, key: &str, delta: i64) -> Result<i64, HostError> {
        self.call(|g, s, h| g.call_increment(s, h, key, delta))
    }

    /// See [`filecache::FileStore::compare_and_swap`].
    ///
    /// # Errors
    /// The guest's error, or a trap.
    pub fn compare_and_swap(
        &mut self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        expiry: filecache::Expiry,
    ) -> Result<bool, HostError> {
        let expiry = bindings::expiry_to_wit(expiry);
        self.call(|g, s, h| g.call_compare_and_swap(s, h, key, expected, new, expiry))
    }

    /// See [`filecache::FileStore::touch`].
    ///
    /// # Errors
    /// The guest's error, or a trap.
    pub fn touch(&mut self, key: &str, expiry: filecache::Expiry) -> Result<bool, HostError> {
        let expiry = bindings::expiry_to_wit(expiry);
        self.call(|g, s, h| g.call_touch(s, h, key, expiry))
    }

    /// See [`filecache::FileStore::contains_key`].
    ///
    /// # Errors
    /// The guest's error, or a trap.
    pub fn contains_key(&mut self, key: &str) -> Result<bool, HostError> {
        self.call(|g, s, h| g.call_contains_key(s, h, key))
    }

    /// See [`filecache::FileStore::clear`].
    ///
    /// # Errors
    /// The guest's error, or a trap.
    pub fn clear(&mut self) -> Result<(), HostError> {
        self.call(|g, s, h| g.call_clear(s, h))
    }

    /// See [`filecache::FileStore::approx_size`].
    ///
    /// # Errors
    /// The guest's error, or a trap.
    pub fn approx_size(&mut self) -> Result<u64, HostError> {
        self.call(|g, s, h| g.call_approx_size(s, h))
    }

    /// See [`filecache::FileStore::list_keys`].
    ///
    /// # Errors
    /// The guest's error, or a trap.
    pub fn list_keys(&mut self, cursor: Option<&str>) -> Result<filecache::KeyPage, HostError> {
        self.call(|g, s, h| g.call_list_keys(s, h, cursor))
            .map(|page| filecache::KeyPage {
                keys: page.keys,
                cursor: page.cursor,
            })
    }

    /// See [`filecache::FileStore::stats`].
    ///
    /// # Errors
    /// The guest's error, or a trap.
    pub fn stats(&mut self) -> Result<filecache::Stats, HostError> {
        self.call(|g, s, h| g.call_stats(s, h))
            .map(bindings::stats_from_wit)
    }

    /// Throws the instance away without closing the cache in it, as a host
    /// that instantiates per request does when the guest keeps its handle
    /// (in a static, say): the guest's destructor never runs.
    pub fn discard(mut self) {
        self.close_on_drop = false;
    }
}

impl Drop for ComponentCache {
    fn drop(&mut self) {
        if self.close_on_drop {
            // Release the guest resource; a failure here only means the instance is gone.
            let _ = self.handle.resource_drop(&mut self.store);
        }
    }
}
