//! The backends the suite runs against: the native store, the component in
//! the wasmtime host, and (core cases) the Cot framework adapter.

use std::path::Path;
use std::sync::OnceLock;

use filecache::cot::CotStore;
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

/// The Cot adapter: a `cot::cache::Cache` (no prefix) over [`CotStore`], driven
/// from a shared tokio runtime. Runs the core cases: values go through Cot as
/// JSON (a byte string becomes an array of numbers), so cases that weigh entry
/// files by their raw value size, or use operations Cot does not have, are not
/// for it. `stats` is read from the store underneath.
#[derive(Debug, Clone, Copy)]
pub struct Cot;

/// An open cache through Cot.
pub struct CotCache {
    cache: cot::cache::Cache,
    store: CotStore,
}

impl std::fmt::Debug for CotCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CotCache").finish_non_exhaustive()
    }
}

fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => panic!("cannot start tokio: {e}"),
        }
    })
}

fn cot_failure(error: impl std::fmt::Display) -> Failure {
    Failure {
        kind: FailureKind::Io,
        message: error.to_string(),
    }
}

fn unsupported<T>(what: &str) -> Outcome<T> {
    Err(Failure {
        kind: FailureKind::Runtime,
        message: format!("{what} is not a Cot cache operation"),
    })
}

fn timeout_of(expiry: Expiry) -> cot::config::Timeout {
    use cot::config::Timeout;
    match expiry {
        Expiry::Never => Timeout::Never,
        Expiry::After(duration) => Timeout::After(duration),
        Expiry::At(time) => {
            let ms = time
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let utc = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
            Timeout::AtDateTime(utc.fixed_offset())
        }
    }
}

impl Backend for Cot {
    type Cache = CotCache;

    fn open(&self, dir: &Path, options: &Options) -> Outcome<CotCache> {
        let store = CotStore::open(dir, options.clone()).map_err(native_failure)?;
        let cache = cot::cache::Cache::new(store.clone(), None, cot::config::Timeout::Never);
        Ok(CotCache { cache, store })
    }

    fn writers(&self) -> usize {
        4
    }
}

impl CacheUnderTest for CotCache {
    fn get(&mut self, key: &str) -> Outcome<Option<Vec<u8>>> {
        tokio_runtime()
            .block_on(self.cache.get::<_, Vec<u8>>(key))
            .map_err(cot_failure)
    }
    fn insert(&mut self, key: &str, value: &[u8], expiry: Expiry) -> Outcome<()> {
        tokio_runtime()
            .block_on(
                self.cache
                    .insert_expiring(key, value.to_vec(), timeout_of(expiry)),
            )
            .map_err(cot_failure)
    }
    fn remove(&mut self, key: &str) -> Outcome<()> {
        tokio_runtime()
            .block_on(self.cache.remove(key))
            .map_err(cot_failure)
    }
    fn contains_key(&mut self, key: &str) -> Outcome<bool> {
        tokio_runtime()
            .block_on(self.cache.contains_key(key))
            .map_err(cot_failure)
    }
    fn clear(&mut self) -> Outcome<()> {
        tokio_runtime()
            .block_on(self.cache.clear())
            .map_err(cot_failure)
    }
    fn approx_size(&mut self) -> Outcome<u64> {
        tokio_runtime()
            .block_on(self.cache.approx_size())
            .map(|size| size as u64)
            .map_err(cot_failure)
    }
    fn stats(&mut self) -> Outcome<Stats> {
        self.store.file_store().stats().map_err(native_failure)
    }
    fn add(&mut self, _: &str, _: &[u8], _: Expiry) -> Outcome<bool> {
        unsupported("add")
    }
    fn increment(&mut self, _: &str, _: i64) -> Outcome<i64> {
        unsupported("increment")
    }
    fn compare_and_swap(
        &mut self,
        _: &str,
        _: Option<&[u8]>,
        _: &[u8],
        _: Expiry,
    ) -> Outcome<bool> {
        unsupported("compare-and-swap")
    }
    fn touch(&mut self, _: &str, _: Expiry) -> Outcome<bool> {
        unsupported("touch")
    }
    fn list_keys(&mut self, _: Option<&str>) -> Outcome<KeyPage> {
        unsupported("list-keys")
    }
}
