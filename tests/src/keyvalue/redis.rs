//! The host-served `wasi:keyvalue` on Redis ([`RedisStore`]): each case gets
//! a `redis-server` of its own ([`RedisServer`]); each connection is a client
//! of it. Cursors are numbers (Redis's `SCAN` cursor), increments signed, and
//! compare-and-swap a handle that remembers the value it saw.

use filecache_host::host_keyvalue::{KeyValueStore, RedisStore, StoreError};

use super::{Connection, Cursor, KeyValueBackend, KeyValueError, Kv, Pairs, Swap};
use crate::redis_server::{self, RedisServer};

/// Redis, through [`RedisStore`].
#[derive(Debug, Clone, Copy)]
pub struct Redis;

/// One client of the case's server.
#[derive(Debug)]
pub struct RedisConnection(RedisStore);

/// A compare-and-swap handle: the key and the value seen.
#[derive(Debug)]
pub struct RedisCas {
    bucket: String,
    key: String,
    seen: Option<Vec<u8>>,
}

/// The namespace the suite's buckets live in.
const NAMESPACE: &str = "conformance";

fn error(e: StoreError) -> KeyValueError {
    match e {
        StoreError::AccessDenied => KeyValueError::AccessDenied,
        StoreError::Other(message) => KeyValueError::Other(message),
    }
}

impl KeyValueBackend for Redis {
    type Place = RedisServer;
    type Connection = RedisConnection;

    fn place(&self) -> RedisServer {
        RedisServer::start()
    }

    fn connect(&self, server: &RedisServer) -> RedisConnection {
        RedisConnection(RedisStore::connect(&server.url(), NAMESPACE).expect("connect to redis"))
    }

    fn skip_reason(&self) -> Option<String> {
        redis_server::unavailable()
    }
}

impl Connection for RedisConnection {
    type Bucket = String;
    type Cas = RedisCas;

    fn open(&mut self, identifier: &str) -> Kv<String> {
        self.0.open(identifier).map_err(error)?;
        Ok(identifier.to_owned())
    }
    fn get(&mut self, bucket: &String, key: &str) -> Kv<Option<Vec<u8>>> {
        self.0.get(bucket, key).map_err(error)
    }
    fn set(&mut self, bucket: &String, key: &str, value: &[u8]) -> Kv<()> {
        self.0.set(bucket, key, value).map_err(error)
    }
    fn delete(&mut self, bucket: &String, key: &str) -> Kv<()> {
        self.0.delete(bucket, key).map_err(error)
    }
    fn exists(&mut self, bucket: &String, key: &str) -> Kv<bool> {
        self.0.exists(bucket, key).map_err(error)
    }
    fn list_keys(
        &mut self,
        bucket: &String,
        cursor: Option<&Cursor>,
    ) -> Kv<(Vec<String>, Option<Cursor>)> {
        let number = match cursor {
            None => None,
            Some(Cursor::Number(number)) => Some(*number),
            Some(Cursor::Text(_)) => panic!("Redis cursors are numbers"),
        };
        let page = self.0.list_keys(bucket, number).map_err(error)?;
        Ok((page.keys, page.cursor.map(Cursor::Number)))
    }
    fn signed_increments(&self) -> bool {
        true
    }
    fn increment(&mut self, bucket: &String, key: &str, delta: i64) -> Kv<i64> {
        self.0.increment(bucket, key, delta).map_err(error)
    }
    fn has_compare_and_swap(&self) -> bool {
        true
    }
    fn cas(&mut self, bucket: &String, key: &str) -> Kv<RedisCas> {
        Ok(RedisCas {
            bucket: bucket.clone(),
            key: key.to_owned(),
            seen: self.get(bucket, key)?,
        })
    }
    fn current(&mut self, cas: &RedisCas) -> Kv<Option<Vec<u8>>> {
        Ok(cas.seen.clone())
    }
    fn swap(&mut self, cas: RedisCas, value: &[u8]) -> Kv<Swap<RedisCas>> {
        let swapped = self
            .0
            .compare_and_swap(&cas.bucket, &cas.key, cas.seen.as_deref(), value)
            .map_err(error)?;
        if swapped {
            return Ok(Swap::Done);
        }
        let fresh = self.cas(&cas.bucket, &cas.key)?;
        Ok(Swap::Changed(fresh))
    }
    fn get_many(&mut self, bucket: &String, keys: &[String]) -> Kv<Pairs> {
        let values = self.0.get_many(bucket, keys).map_err(error)?;
        Ok(keys
            .iter()
            .zip(values)
            .map(|(key, value)| value.map(|value| (key.clone(), value)))
            .collect())
    }
    fn set_many(&mut self, bucket: &String, pairs: &[(String, Vec<u8>)]) -> Kv<()> {
        self.0.set_many(bucket, pairs).map_err(error)
    }
    fn delete_many(&mut self, bucket: &String, keys: &[String]) -> Kv<()> {
        self.0.delete_many(bucket, keys).map_err(error)
    }
}
