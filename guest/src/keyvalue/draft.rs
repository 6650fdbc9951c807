//! `wasi:keyvalue` at 0.2.0-draft (wasmtime's and wasmCloud's draft): the
//! `list-keys` cursor is a number ([`FileStore::list_keys_numbered`]),
//! `increment` counts in `u64` ([`FileStore::increment_unsigned`]), and there
//! is no compare-and-swap.

use std::rc::Rc;

use super::exports::wasi::keyvalue0_2_0_draft::atomics;
use super::exports::wasi::keyvalue0_2_0_draft::batch;
use super::exports::wasi::keyvalue0_2_0_draft::store::{self, BucketBorrow, Error, KeyResponse};
use super::{Component, OpenError, Pairs};
use crate::{Expiry, FileStore};

/// An open bucket: one cache directory.
pub(super) struct Bucket(Rc<FileStore>);

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

    fn list_keys(&self, cursor: Option<u64>) -> Result<KeyResponse, Error> {
        let page = self.0.list_keys_numbered(cursor).map_err(other)?;
        Ok(KeyResponse {
            keys: page.keys,
            cursor: page.cursor,
        })
    }
}

impl atomics::Guest for Component {
    fn increment(bucket: BucketBorrow<'_>, key: String, delta: u64) -> Result<u64, Error> {
        store_of(&bucket)
            .increment_unsigned(&key, delta)
            .map_err(other)
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
