//! [`RedisStore`]: `wasi:keyvalue` buckets in a Redis server. A key `k` of
//! bucket `b` is the Redis key `<namespace>:<b>:k`, so buckets (and
//! namespaces sharing a server) never see each other's keys. Listing is
//! `SCAN … MATCH`, whose cursor is the page cursor; increments are `INCRBY`;
//! compare-and-swap is one Lua script (`EVAL`), so no other client's write can
//! come between its compare and its set; `set-many` is one `MSET`.

use redis::{Client, Connection};

use super::{KeyPage, KeyValueStore, StoreError};

/// Keys asked per `SCAN` step (a hint to Redis, not a page size).
const SCAN_COUNT: usize = 100;

/// Sets `KEYS[1]` to `ARGV[2]` if it holds `ARGV[1]` (with `ARGV[3] == "1"`)
/// or is absent (with `ARGV[3] == "0"`); 1 if it did, 0 if not.
const COMPARE_AND_SWAP: &str = r"
local current = redis.call('GET', KEYS[1])
local matches
if ARGV[3] == '1' then
  matches = current == ARGV[1]
else
  matches = current == false
end
if matches then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// A connection to a Redis server, holding the buckets of one namespace.
pub struct RedisStore {
    connection: Connection,
    namespace: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

fn failure(error: redis::RedisError) -> StoreError {
    StoreError::Other(format!("redis: {error}"))
}

/// `text` with Redis's glob characters escaped, for `MATCH`.
fn glob_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

impl RedisStore {
    /// Connects to the server at `url` (`redis://host:port/db`); buckets live
    /// under `namespace`.
    ///
    /// # Errors
    /// The client's failure to parse `url` or to connect.
    pub fn connect(url: &str, namespace: &str) -> Result<Self, StoreError> {
        let connection = Client::open(url)
            .and_then(|client| client.get_connection())
            .map_err(failure)?;
        Ok(Self {
            connection,
            namespace: namespace.to_owned(),
        })
    }

    /// The prefix of every key of `bucket`.
    fn prefix(&self, bucket: &str) -> String {
        format!("{}:{bucket}:", self.namespace)
    }

    fn key(&self, bucket: &str, key: &str) -> String {
        format!("{}{key}", self.prefix(bucket))
    }

    fn keys(&self, bucket: &str, keys: &[String]) -> Vec<String> {
        keys.iter().map(|key| self.key(bucket, key)).collect()
    }
}

impl KeyValueStore for RedisStore {
    fn open(&mut self, bucket: &str) -> Result<(), StoreError> {
        // Keys are prefixed by the bucket and a colon: a bucket name with a
        // colon could reach into another bucket's keys.
        if bucket.is_empty() || bucket.contains(':') {
            return Err(StoreError::AccessDenied);
        }
        redis::cmd("PING")
            .query::<String>(&mut self.connection)
            .map(drop)
            .map_err(failure)
    }

    fn get(&mut self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        redis::cmd("GET")
            .arg(self.key(bucket, key))
            .query(&mut self.connection)
            .map_err(failure)
    }

    fn set(&mut self, bucket: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        redis::cmd("SET")
            .arg(self.key(bucket, key))
            .arg(value)
            .query(&mut self.connection)
            .map_err(failure)
    }

    fn delete(&mut self, bucket: &str, key: &str) -> Result<(), StoreError> {
        redis::cmd("DEL")
            .arg(self.key(bucket, key))
            .query::<u64>(&mut self.connection)
            .map(drop)
            .map_err(failure)
    }

    fn exists(&mut self, bucket: &str, key: &str) -> Result<bool, StoreError> {
        redis::cmd("EXISTS")
            .arg(self.key(bucket, key))
            .query(&mut self.connection)
            .map_err(failure)
    }

    fn list_keys(&mut self, bucket: &str, cursor: Option<u64>) -> Result<KeyPage, StoreError> {
        let prefix = self.prefix(bucket);
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor.unwrap_or(0))
            .arg("MATCH")
            .arg(format!("{}*", glob_literal(&prefix)))
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query(&mut self.connection)
            .map_err(failure)?;
        Ok(KeyPage {
            keys: keys
                .into_iter()
                .filter_map(|key| key.strip_prefix(&prefix).map(str::to_owned))
                .collect(),
            cursor: (next != 0).then_some(next),
        })
    }

    fn increment(&mut self, bucket: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        redis::cmd("INCRBY")
            .arg(self.key(bucket, key))
            .arg(delta)
            .query(&mut self.connection)
            .map_err(failure)
    }

    fn compare_and_swap(
        &mut self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let swapped: i64 = redis::cmd("EVAL")
            .arg(COMPARE_AND_SWAP)
            .arg(1)
            .arg(self.key(bucket, key))
            .arg(expected.unwrap_or_default())
            .arg(new)
            .arg(if expected.is_some() { "1" } else { "0" })
            .query(&mut self.connection)
            .map_err(failure)?;
        Ok(swapped == 1)
    }

    fn get_many(
        &mut self,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        redis::cmd("MGET")
            .arg(self.keys(bucket, keys))
            .query(&mut self.connection)
            .map_err(failure)
    }

    fn set_many(&mut self, bucket: &str, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut mset = redis::cmd("MSET");
        for (key, value) in pairs {
            mset.arg(self.key(bucket, key)).arg(value);
        }
        mset.query(&mut self.connection).map_err(failure)
    }

    fn delete_many(&mut self, bucket: &str, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        redis::cmd("DEL")
            .arg(self.keys(bucket, keys))
            .query::<u64>(&mut self.connection)
            .map(drop)
            .map_err(failure)
    }
}
