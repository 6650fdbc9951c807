//! `wasi:keyvalue` at 0.2.0-draft2 (Spin's draft). A `cas` handle remembers
//! the value it saw; `swap` is `compare_and_swap` against it, so it fails if
//! anything changed the key since — and then hands back a fresh handle, as the
//! interface asks.

use std::rc::Rc;

use super::exports::wasi::keyvalue0_2_0_draft2::atomics::{self, CasError};
use super::exports::wasi::keyvalue0_2_0_draft2::batch;
use super::exports::wasi::keyvalue0_2_0_draft2::store::{self, BucketBorrow, Error, KeyResponse};
use super::{Component, OpenError, Pairs};
use crate::{Expiry, FileStore};

/// An open bucket: one cache directory.
pub(super) struct Bucket(Rc<FileStore>);

/// A compare-and-swap in progress: the key and the value it observed.
pub(super) struct Cas {
    store: Rc<FileStore>,
    key: String,
    observed: Option<Vec<u8>>,
}

fn other(error: crate::Error) -> Error {
    Error::Other(error.to_string())
}

fn store_of<'a>(bucket: &'a BucketBorrow<'_>) -> &'a FileStore {
    &bucket.get::<Bucket>().0
}

impl store::Guest for Component {
    type Bucket = Bucket;

    fn open(identifier: String) -> Result<store::Bucket, Error> {
        match super::open_bucket(&identifier) {
            Ok(cache) => Ok(store::Bucket::new(Bucket(cache))),
            Err(OpenError::Refused) => Err(Error::AccessDenied),
            Err(OpenError::Store(e)) => Err(other(e)),
        }
    }
}

impl store::GuestBucket for Bucket {
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.0.get(&key).map_err(other)
    }

    fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.0.insert(&key, &value, Expiry::Never).map_err(other)
    }

    fn delete(&self, key: String) -> Result<(), Error> {
        self.0.remove(&key).map_err(other)
    }

    fn exists(&self, key: String) -> Result<bool, Error> {
        self.0.contains_key(&key).map_err(other)
    }

    fn list_keys(&self, cursor: Option<String>) -> Result<KeyResponse, Error> {
        let page = self.0.list_keys(cursor.as_deref()).map_err(other)?;
        Ok(KeyResponse {
            keys: page.keys,
            cursor: page.cursor,
        })
    }
}

impl Cas {
    /// A handle on `key` that observes its value now.
    fn observe(store: Rc<FileStore>, key: String) -> Result<Self, Error> {
        let observed = store.get(&key).map_err(other)?;
        Ok(Self {
            store,
            key,
            observed,
        })
    }
}

impl atomics::Guest for Component {
    type Cas = Cas;

    fn increment(bucket: BucketBorrow<'_>, key: String, delta: i64) -> Result<i64, Error> {
        store_of(&bucket).increment(&key, delta).map_err(other)
    }

    fn swap(cas: atomics::Cas, value: Vec<u8>) -> Result<(), CasError> {
        let cas: Cas = cas.into_inner();
        let swapped = cas
            .store
            .compare_and_swap(&cas.key, cas.observed.as_deref(), &value, Expiry::Never)
            .map_err(|e| CasError::StoreError(other(e)))?;
        if swapped {
            return Ok(());
        }
        let fresh = Cas::observe(cas.store, cas.key).map_err(CasError::StoreError)?;
        Err(CasError::CasFailed(atomics::Cas::new(fresh)))
    }
}

impl atomics::GuestCas for Cas {
    fn new(bucket: BucketBorrow<'_>, key: String) -> Result<atomics::Cas, Error> {
        let store = Rc::clone(&bucket.get::<Bucket>().0);
        Ok(atomics::Cas::new(Cas::observe(store, key)?))
    }

    fn current(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.observed.clone())
    }
}

impl batch::Guest for Component {
    fn get_many(bucket: BucketBorrow<'_>, keys: Vec<String>) -> Result<Pairs, Error> {
        super::get_many(store_of(&bucket), keys).map_err(other)
    }

    fn set_many(bucket: BucketBorrow<'_>, key_values: Vec<(String, Vec<u8>)>) -> Result<(), Error> {
        super::set_many(store_of(&bucket), key_values).map_err(other)
    }

    fn delete_many(bucket: BucketBorrow<'_>, keys: Vec<String>) -> Result<(), Error> {
        super::delete_many(store_of(&bucket), keys).map_err(other)
    }
}
