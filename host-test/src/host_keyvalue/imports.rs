//! The import side of `wasi:keyvalue@0.2.0-draft`: bindings for its `imports`
//! world, implemented for the host state by calling the instance's
//! [`KeyValueStore`]. A bucket resource holds the bucket's name.

use wasmtime::component::{Linker, Resource};

use super::{KeyValueStore, StoreError};
use crate::sandbox::HostState;

/// The generated bindings.
pub(crate) mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:keyvalue/imports@0.2.0-draft",
        with: {
            "wasi:keyvalue/store@0.2.0-draft.bucket": super::OpenBucket,
        },
    });
}

use generated::wasi::keyvalue0_2_0_draft::{atomics, batch, store};

/// A bucket a guest opened: its name.
#[derive(Debug)]
pub struct OpenBucket(String);

/// Adds the `wasi:keyvalue@0.2.0-draft` imports, served by each instance's
/// store, to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    generated::Imports::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        linker,
        |state| state,
    )
}

impl From<StoreError> for store::Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AccessDenied => Self::AccessDenied,
            StoreError::Other(message) => Self::Other(message),
        }
    }
}

impl HostState {
    /// The instance's store, or `other` if it was made without one.
    fn key_value_store(&mut self) -> Result<&mut (dyn KeyValueStore + 'static), store::Error> {
        self.key_value
            .as_deref_mut()
            .ok_or_else(|| store::Error::Other("this host serves no keyvalue store".into()))
    }

    /// The store and the name of an open bucket.
    fn bucket_and_store(
        &mut self,
        bucket: &Resource<OpenBucket>,
    ) -> Result<(String, &mut (dyn KeyValueStore + 'static)), store::Error> {
        let name = self
            .table
            .get(bucket)
            .map_err(|e| store::Error::Other(e.to_string()))?
            .0
            .clone();
        Ok((name, self.key_value_store()?))
    }
}

impl store::Host for HostState {
    fn open(&mut self, identifier: String) -> Result<Resource<OpenBucket>, store::Error> {
        self.key_value_store()?.open(&identifier)?;
        self.table
            .push(OpenBucket(identifier))
            .map_err(|e| store::Error::Other(e.to_string()))
    }
}

impl store::HostBucket for HostState {
    fn get(
        &mut self,
        bucket: Resource<OpenBucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, store::Error> {
        let (name, kv) = self.bucket_and_store(&bucket)?;
        Ok(kv.get(&name, &key)?)
    }

    fn set(
        &mut self,
        bucket: Resource<OpenBucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), store::Error> {
        let (name, kv) = self.bucket_and_store(&bucket)?;
        Ok(kv.set(&name, &key, &value)?)
    }

    fn delete(&mut self, bucket: Resource<OpenBucket>, key: String) -> Result<(), store::Error> {
        let (name, kv) = self.bucket_and_store(&bucket)?;
        Ok(kv.delete(&name, &key)?)
    }

    fn exists(&mut self, bucket: Resource<OpenBucket>, key: String) -> Result<bool, store::Error> {
        let (name, kv) = self.bucket_and_store(&bucket)?;
        Ok(kv.exists(&name, &key)?)
    }

    fn list_keys(
        &mut self,
        bucket: Resource<OpenBucket>,
        cursor: Option<u64>,
    ) -> Result<store::KeyResponse, store::Error> {
        let (name, kv) = self.bucket_and_store(&bucket)?;
        let page = kv.list_keys(&name, cursor)?;
        Ok(store::KeyResponse {
            keys: page.keys,
            cursor: page.cursor,
        })
    }

    fn drop(&mut self, bucket: Resource<OpenBucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    fn increment(
        &mut self,
        bucket: Resource<OpenBucket>,
        key: String,
        delta: u64,
    ) -> Result<u64, store::Error> {
        let (name, kv) = self.bucket_and_store(&bucket)?;
        let delta = i64::try_from(delta)
            .map_err(|_| store::Error::Other(format!("the delta {delta} exceeds i64")))?;
        let total = kv.increment(&name, &key, delta)?;
        u64::try_from(total)
            .map_err(|_| store::Error::Other(format!("the counter {key} is negative: {total}")))
    }
}

impl batch::Host for HostState {
    fn get_many(
        &mut self,
        bucket: Resource<OpenBucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, store::Error> {
        let (name, kv) = self.bucket_and_store(&bucket)?;
        let values = kv.get_many(&name, &keys)?;
        Ok(keys
            .into_iter()
            .zip(values)
            .map(|(key, value)| value.map(|value| (key, value)))
            .collect())
    }

    fn set_many(
        &mut self,
        bucket: Resource<OpenBucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), store::Error> {
        let (name, kv) = self.bucket_and_store(&bucket)?;
        Ok(kv.set_many(&name, &key_values)?)
    }

    fn delete_many(
        &mut self,
        bucket: Resource<OpenBucket>,
        keys: Vec<String>,
    ) -> Result<(), store::Error> {
        let (name, kv) = self.bucket_and_store(&bucket)?;
        Ok(kv.delete_many(&name, &keys)?)
    }
}
