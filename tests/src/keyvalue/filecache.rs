//! The filecache component's `wasi:keyvalue` in the wasmtime host, through
//! one draft: [`FilecacheKeyValue`] runs the suite on a fresh root directory
//! per case, each connection a fresh instance of the component.

use std::sync::OnceLock;

use filecache_host::HostConfig;
use filecache_host::keyvalue::{
    Bucket, Cas, KeyValueInstance, KeyValueRuntime, SwapFailure, Version,
};
use tempfile::TempDir;

use super::{Connection, Cursor, KeyValueBackend, Kv, Pairs, Swap};

/// The compiled component, shared by every case of the test binary.
pub fn runtime() -> &'static KeyValueRuntime {
    static RUNTIME: OnceLock<KeyValueRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| match KeyValueRuntime::new(HostConfig::keyvalue()) {
        Ok(runtime) => runtime,
        Err(e) => panic!("cannot load the keyvalue component: {e}"),
    })
}

/// `filecache-keyvalue.wasm`, called through the draft `Version`.
#[derive(Debug, Clone, Copy)]
pub struct FilecacheKeyValue(pub Version);

/// One instance of the component, used through one draft.
#[derive(Debug)]
pub struct FilecacheConnection {
    instance: KeyValueInstance,
    version: Version,
}

impl KeyValueBackend for FilecacheKeyValue {
    type Place = TempDir;
    type Connection = FilecacheConnection;

    fn place(&self) -> TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    fn connect(&self, place: &TempDir) -> FilecacheConnection {
        FilecacheConnection {
            instance: runtime().instantiate(place.path()).expect("instantiate"),
            version: self.0,
        }
    }
}

impl Connection for FilecacheConnection {
    type Bucket = Bucket;
    type Cas = Cas;

    fn open(&mut self, identifier: &str) -> Kv<Bucket> {
        self.instance.open(self.version, identifier)
    }
    fn get(&mut self, bucket: &Bucket, key: &str) -> Kv<Option<Vec<u8>>> {
        self.instance.get(bucket, key)
    }
    fn set(&mut self, bucket: &Bucket, key: &str, value: &[u8]) -> Kv<()> {
        self.instance.set(bucket, key, value)
    }
    fn delete(&mut self, bucket: &Bucket, key: &str) -> Kv<()> {
        self.instance.delete(bucket, key)
    }
    fn exists(&mut self, bucket: &Bucket, key: &str) -> Kv<bool> {
        self.instance.exists(bucket, key)
    }
    fn list_keys(
        &mut self,
        bucket: &Bucket,
        cursor: Option<&Cursor>,
    ) -> Kv<(Vec<String>, Option<Cursor>)> {
        self.instance.list_keys(bucket, cursor)
    }
    fn signed_increments(&self) -> bool {
        self.version == Version::Draft2
    }
    fn increment(&mut self, bucket: &Bucket, key: &str, delta: i64) -> Kv<i64> {
        match self.version {
            Version::Draft2 => self.instance.increment(bucket, key, delta),
            Version::Draft => {
                let delta = u64::try_from(delta).expect("a non-negative delta");
                let total = self.instance.increment_unsigned(bucket, key, delta)?;
                Ok(i64::try_from(total).expect("a counter below 2^63"))
            }
        }
    }
    fn has_compare_and_swap(&self) -> bool {
        self.version == Version::Draft2
    }
    fn cas(&mut self, bucket: &Bucket, key: &str) -> Kv<Cas> {
        self.instance.cas(bucket, key)
    }
    fn current(&mut self, cas: &Cas) -> Kv<Option<Vec<u8>>> {
        self.instance.current(cas)
    }
    fn swap(&mut self, cas: Cas, value: &[u8]) -> Kv<Swap<Cas>> {
        match self.instance.swap(cas, value)? {
            Ok(()) => Ok(Swap::Done),
            Err(SwapFailure::Changed(fresh)) => Ok(Swap::Changed(fresh)),
            Err(SwapFailure::Store(e)) => Err(e),
        }
    }
    fn get_many(&mut self, bucket: &Bucket, keys: &[String]) -> Kv<Pairs> {
        self.instance.get_many(bucket, keys)
    }
    fn set_many(&mut self, bucket: &Bucket, pairs: &[(String, Vec<u8>)]) -> Kv<()> {
        self.instance.set_many(bucket, pairs)
    }
    fn delete_many(&mut self, bucket: &Bucket, keys: &[String]) -> Kv<()> {
        self.instance.delete_many(bucket, keys)
    }
}
