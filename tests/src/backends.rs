//! The backends the suite runs against: the native store, and the component in
//! the wasmtime host.

use std::path::Path;
use std::sync::OnceLock;

use filecache::{Error, Expiry, FileStore, KeyPage, Options, Stats};
use filecache_host::{CacheError, CacheRuntime, ComponentCache, HostConfig, HostError};

use crate::{Backend, CacheUnderTest, Failure, FailureKind, Outcome};

/// The `filecache` crate, called directly.
#[derive(Debug, Clone, Copy)]
pub struct Native;

/// An open native cache.
#[derive(Debug)]
pub struct NativeCache(FileStore);

fn native_failure(error: Error) -> Failure {
    let kind = match &error {
        Error::InvalidInput { .. } => FailureKind::InvalidInput,
        Error::Io { .. } => FailureKind::Io,
        Error::StorageFull { .. } => FailureKind::StorageFull,
        Error::Busy { .. } => FailureKind::Busy,
        Error::Corrupt { .. } => FailureKind::Corrupt,
        _ => FailureKind::Runtime,
    };
    Failure {
        kind,
        message: error.to_string(),
    }
}

impl Backend for Native {
    type Cache = NativeCache;

    fn open(&self, dir: &Path, options: &Options) -> Outcome<NativeCache> {
        FileStore::open(dir, options.clone())
            .map(NativeCache)
            .map_err(native_failure)
    }

    fn writers(&self) -> usize {
        8
    }
}

impl CacheUnderTest for NativeCache {
    fn get(&mut self, key: &str) -> Outcome<Option<Vec<u8>>> {
        self.0.get(key).map_err(native_failure)
    }
    fn insert(&mut self, key: &str, value: &[u8], expiry: Expiry) -> Outcome<()> {
        self.0.insert(key, value, expiry).map_err(native_failure)
    }
    fn remove(&mut self, key: &str) -> Outcome<()> {
        self.0.remove(key).map_err(native_failure)
    }
    fn contains_key(&mut self, key: &str) -> Outcome<bool> {
        self.0.contains_key(key).map_err(native_failure)
    }
    fn add(&mut self, key: &str, value: &[u8], expiry: Expiry) -> Outcome<bool> {
        self.0.add(key, value, expiry).map_err(native_failure)
    }
    fn increment(&mut self, key: &str, delta: i64) -> Outcome<i64> {
        self.0.increment(key, delta).map_err(native_failure)
    }
    fn compare_and_swap(
        &mut self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        expiry: Expiry,
    ) -> Outcome<bool> {
        self.0
            .compare_and_swap(key, expected, new, expiry)
            .map_err(native_failure)
    }
    fn touch(&mut self, key: &str, expiry: Expiry) -> Outcome<bool> {
        self.0.touch(key, expiry).map_err(native_failure)
    }
    fn clear(&mut self) -> Outcome<()> {
        self.0.clear().map_err(native_failure)
    }
    fn approx_size(&mut self) -> Outcome<u64> {
        self.0.approx_size().map_err(native_failure)
    }
    fn stats(&mut self) -> Outcome<Stats> {
        self.0.stats().map_err(native_failure)
    }
    fn list_keys(&mut self, cursor: Option<&str>) -> Outcome<KeyPage> {
        self.0.list_keys(cursor).map_err(native_failure)
    }
}

/// The component, each cache in its own instance of one pre-instantiated component.
#[derive(Debug, Clone, Copy)]
pub struct Component;

/// The runtime shared by all component caches of this process (compiled once).
///
/// # Panics
/// If the component cannot be compiled: nothing in the suite can run then.
pub fn runtime() -> &'static CacheRuntime {
    static RUNTIME: OnceLock<CacheRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| match CacheRuntime::new(HostConfig::default()) {
        Ok(runtime) => runtime,
        Err(e) => panic!("cannot load the filecache component: {e}"),
    })
}

fn component_failure(error: HostError) -> Failure {
    let kind = match &error {
        HostError::Cache(CacheError::InvalidInput(_)) => FailureKind::InvalidInput,
        HostError::Cache(CacheError::Io { .. }) => FailureKind::Io,
        HostError::Cache(CacheError::StorageFull { .. }) => FailureKind::StorageFull,
        HostError::Cache(CacheError::Busy(_)) => FailureKind::Busy,
        HostError::Cache(CacheError::Corrupt(_)) => FailureKind::Corrupt,
        HostError::Runtime(_) => FailureKind::Runtime,
    };
    Failure {
        kind,
        message: error.to_string(),
    }
}

impl Backend for Component {
    type Cache = ComponentCache;

    fn open(&self, dir: &Path, options: &Options) -> Outcome<ComponentCache> {
        runtime().open(dir, options).map_err(component_failure)
    }

    fn writers(&self) -> usize {
        4
    }
}

impl CacheUnderTest for ComponentCache {
    fn get(&mut self, key: &str) -> Outcome<Option<Vec<u8>>> {
        ComponentCache::get(self, key).map_err(component_failure)
    }
    fn insert(&mut self, key: &str, value: &[u8], expiry: Expiry) -> Outcome<()> {
        ComponentCache::insert(self, key, value, expiry).map_err(component_failure)
    }
    fn remove(&mut self, key: &str) -> Outcome<()> {
        ComponentCache::remove(self, key).map_err(component_failure)
    }
    fn contains_key(&mut self, key: &str) -> Outcome<bool> {
        ComponentCache::contains_key(self, key).map_err(component_failure)
    }
    fn add(&mut self, key: &str, value: &[u8], expiry: Expiry) -> Outcome<bool> {
        ComponentCache::add(self, key, value, expiry).map_err(component_failure)
    }
    fn increment(&mut self, key: &str, delta: i64) -> Outcome<i64> {
        ComponentCache::increment(self, key, delta).map_err(component_failure)
    }
    fn compare_and_swap(
        &mut self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        expiry: Expiry,
    ) -> Outcome<bool> {
        ComponentCache::compare_and_swap(self, key, expected, new, expiry)
            .map_err(component_failure)
    }
    fn touch(&mut self, key: &str, expiry: Expiry) -> Outcome<bool> {
        ComponentCache::touch(self, key, expiry).map_err(component_failure)
    }
    fn clear(&mut self) -> Outcome<()> {
        ComponentCache::clear(self).map_err(component_failure)
    }
    fn approx_size(&mut self) -> Outcome<u64> {
        ComponentCache::approx_size(self).map_err(component_failure)
    }
    fn stats(&mut self) -> Outcome<Stats> {
        ComponentCache::stats(self).map_err(component_failure)
    }
    fn list_keys(&mut self, cursor: Option<&str>) -> Outcome<KeyPage> {
        ComponentCache::list_keys(self, cursor).map_err(component_failure)
    }
}
