//! The operations that read, decide and write as one step: `add`, `increment`,
//! `compare_and_swap` and `touch`. Each runs under the key's lock
//! ([`crate::exclusion`]), so they are linearizable with one another across
//! threads, processes and wasm instances.
//!
//! Plain `insert` and `remove` take no lock (they stay one `rename` or one
//! `unlink`). So that an atomic operation never overwrites a plain write that
//! landed while it was deciding, it reads the entry file again just before
//! publishing and starts over if the bytes changed; a plain write then counts as
//! having happened before the atomic operation (or after it, if it lands after
//! the final `rename`).

use std::borrow::Cow;

use crate::cache_dir::{CacheDir, Missing, Sub};
use crate::error::{Error, MissingOk, Result};
use crate::exclusion::{self, KeyLock};
use crate::format::{self, NEVER};
use crate::layout::KeyHash;
use crate::options::{Expiry, expired_now};
use crate::platform;
use crate::publish::{self, Entry};
use crate::store::FileStore;

/// How many times an operation starts over because its lock was lost or the
/// entry changed under it, before it gives up with [`Error::Busy`].
const ATTEMPTS: usize = 64;

/// The live value under a key, as an atomic operation sees it.
#[derive(Debug)]
struct Current {
    value: Vec<u8>,
    expires_at: u64,
}

/// What an operation decided after seeing the current value.
enum Decision<'v, T> {
    /// Leave the entry as it is and return this.
    Keep(T),
    /// Replace the entry and return `result`.
    Write {
        value: Cow<'v, [u8]>,
        expires_at: u64,
        result: T,
    },
}

impl FileStore {
    /// Stores `value` under `key` only if no live value is there (absent,
    /// expired or damaged). Returns whether it stored it.
    ///
    /// # Errors
    /// As for [`FileStore::insert`], and [`Error::Busy`] if the key's lock could
    /// not be had within [`crate::Options::lock_timeout`].
    pub fn add(&self, key: &str, value: &[u8], expiry: Expiry) -> Result<bool> {
        self.check_value(value)?;
        self.read_modify_write(key, |current| {
            Ok(match current {
                Some(_) => Decision::Keep(false),
                None => Decision::Write {
                    value: Cow::Borrowed(value),
                    expires_at: expiry.deadline_ms(),
                    result: true,
                },
            })
        })
    }

    /// Adds `delta` to the integer stored under `key` and returns the new value.
    /// An absent (or expired) key counts as 0 and is created without expiry; an
    /// existing entry keeps its expiry. Integers are stored as ASCII decimal
    /// text (`b"-42"`), so `get` reads them too.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the stored value is not a decimal integer that
    /// fits in an `i64`, or if the sum overflows (the value is then unchanged);
    /// otherwise as for [`FileStore::add`].
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.add_to_counter(key, delta)
    }

    /// [`FileStore::increment`] in unsigned integers (`wasi:keyvalue`
    /// 0.2.0-draft's `u64`), on the same decimal text: a counter below 2^63
    /// reads the same either way.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the stored value is not a decimal integer that
    /// fits in a `u64` (a negative one does not), or if the sum overflows;
    /// otherwise as for [`FileStore::add`].
    pub fn increment_unsigned(&self, key: &str, delta: u64) -> Result<u64> {
        self.add_to_counter(key, delta)
    }

    fn add_to_counter<N: Counter>(&self, key: &str, delta: N) -> Result<N> {
        self.read_modify_write(key, |current| {
            let (old, expires_at) = match current {
                Some(current) => (parse_integer::<N>(key, &current.value)?, current.expires_at),
                None => (N::ZERO, NEVER),
            };
            let new = old.checked_add(delta).ok_or_else(|| {
                Error::invalid(format!(
                    "incrementing `{key}` ({old}) by {delta} overflows {}",
                    N::NAME
                ))
            })?;
            Ok(Decision::Write {
                value: Cow::Owned(new.to_string().into_bytes()),
                expires_at,
                result: new,
            })
        })
    }

    /// Replaces the value under `key` with `new` (expiring at `expiry`) only if
    /// the live value is `expected` — or, with `expected: None`, only if there
    /// is no live value. Returns whether it swapped.
    ///
    /// # Errors
    /// As for [`FileStore::add`].
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        expiry: Expiry,
    ) -> Result<bool> {
        self.check_value(new)?;
        self.read_modify_write(key, |current| {
            let matches = match (&current, expected) {
                (None, None) => true,
                (Some(current), Some(expected)) => current.value == expected,
                _ => false,
            };
            Ok(if matches {
                Decision::Write {
                    value: Cow::Borrowed(new),
                    expires_at: expiry.deadline_ms(),
                    result: true,
                }
            } else {
                Decision::Keep(false)
            })
        })
    }

    /// Gives the live value under `key` a new expiry, without the caller having
    /// to supply the value again. Returns false if there is no live value.
    ///
    /// # Errors
    /// As for [`FileStore::add`].
    pub fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        self.read_modify_write(key, |current| {
            Ok(match current {
                None => Decision::Keep(false),
                Some(current) => Decision::Write {
                    value: Cow::Owned(current.value),
                    expires_at: expiry.deadline_ms(),
                    result: true,
                },
            })
        })
    }

    /// Runs `decide` on the live value under `key` while holding the key's lock,
    /// and publishes what it decided. See the module documentation.
    fn read_modify_write<'v, T>(
        &self,
        key: &str,
        mut decide: impl FnMut(Option<Current>) -> Result<Decision<'v, T>>,
    ) -> Result<T> {
        self.check_key(key)?;
        let hash = KeyHash::of(key);
        let mut lock = self.lock(&hash, key)?;
        for _ in 0..ATTEMPTS {
            let before = read_raw(self.cache(), &hash)?;
            let current = before.as_deref().and_then(|bytes| live_entry(bytes, key));
            let (value, expires_at, result) = match decide(current)? {
                Decision::Keep(result) => {
                    lock.release()?;
                    return Ok(result);
                }
                Decision::Write {
                    value,
                    expires_at,
                    result,
                } => (value, expires_at, result),
            };
            self.check_value(&value)?;
            let entry = Entry {
                key,
                value: &value,
                expires_at,
            };
            let durable = self.options().durable;
            self.before_write(&entry, || before.as_ref().map(|bytes| bytes.len() as u64));
            let (staged, written_at) = publish::stage(self.cache(), &hash, &entry, durable)?;
            if !lock.is_held()? {
                // Paused past the lease and reclaimed by another writer: publish nothing.
                drop(staged);
                lock = self.lock(&hash, key)?;
                continue;
            }
            if read_raw(self.cache(), &hash)? != before {
                continue; // a plain insert or remove landed meanwhile: decide again
            }
            publish::commit(self.cache(), &hash, staged, durable)?;
            lock.release()?;
            self.after_write(
                &hash,
                &entry,
                written_at,
                before.map(|bytes| bytes.len() as u64),
            );
            return Ok(result);
        }
        Err(Error::Busy {
            what: format!("the entry `{key}` kept changing while an atomic operation ran"),
        })
    }

    fn lock(&self, hash: &KeyHash, key: &str) -> Result<KeyLock> {
        exclusion::acquire(self.cache(), hash, &self.lock_policy(), key)
    }
}

/// The whole entry file of `hash`, or `None` if there is none (a symbolic
/// link in its place reads as damage: empty).
fn read_raw(cache: &CacheDir, hash: &KeyHash) -> Result<Option<Vec<u8>>> {
    let name = hash.file_name();
    let read = cache
        .retry(Sub::Shard(hash.shard()), Missing::Leave, |shard| {
            let file = shard.open_file(name.as_str())?;
            let len = file.stat()?.len;
            platform::read_whole(&file, len)
        })
        .missing_ok();
    match read {
        Ok(bytes) => Ok(bytes.flatten()),
        Err(e) if platform::is_refused_link(&e) => Ok(Some(Vec::new())),
        Err(e) => Err(Error::io("read entry", &cache.entry_path(hash), e)),
    }
}

/// The live value in an entry file's bytes: `None` if damaged, expired, or the
/// entry of another key (a hash collision) — all of which a write replaces.
fn live_entry(bytes: &[u8], key: &str) -> Option<Current> {
    let entry = format::decode(bytes).ok()?;
    if entry.key != key || expired_now(entry.expires_at) {
        return None;
    }
    Some(Current {
        value: entry.value.to_vec(),
        expires_at: entry.expires_at,
    })
}

/// The integers a counter holds, stored as ASCII decimal text.
trait Counter: Copy + std::fmt::Display + std::str::FromStr {
    const ZERO: Self;
    /// What the integer is, for error messages.
    const NAME: &'static str;
    fn checked_add(self, other: Self) -> Option<Self>;
}

impl Counter for i64 {
    const ZERO: Self = 0;
    const NAME: &'static str = "64-bit integer";
    fn checked_add(self, other: Self) -> Option<Self> {
        i64::checked_add(self, other)
    }
}

impl Counter for u64 {
    const ZERO: Self = 0;
    const NAME: &'static str = "unsigned 64-bit integer";
    fn checked_add(self, other: Self) -> Option<Self> {
        u64::checked_add(self, other)
    }
}

fn parse_integer<N: Counter>(key: &str, value: &[u8]) -> Result<N> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse::<N>().ok())
        .ok_or_else(|| {
            Error::invalid(format!(
                "the value under `{key}` is not a decimal {}, so it cannot be incremented",
                N::NAME
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_strictly() {
        assert_eq!(parse_integer::<i64>("k", b"-42").ok(), Some(-42));
        assert_eq!(parse_integer::<i64>("k", b"0").ok(), Some(0));
        for bad in [
            &b""[..],
            b"1.5",
            b" 1",
            b"1 ",
            b"x",
            b"99999999999999999999",
            b"\xff",
        ] {
            assert!(parse_integer::<i64>("k", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_integer::<u64>("k", b"18446744073709551615").ok(),
            Some(u64::MAX)
        );
        assert!(parse_integer::<u64>("k", b"-1").is_err());
    }

    #[test]
    fn unsigned_counters_share_the_signed_text() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileStore::open(dir.path(), crate::Options::default()).expect("open");
        assert_eq!(store.increment("n", 40).ok(), Some(40));
        assert_eq!(store.increment_unsigned("n", 2).ok(), Some(42));
        assert_eq!(store.get("n").ok().flatten().as_deref(), Some(&b"42"[..]));
        assert_eq!(
            store.increment_unsigned("n", u64::MAX - 42).ok(),
            Some(u64::MAX)
        );
        let overflow = store.increment_unsigned("n", 1).expect_err("overflow");
        assert!(matches!(overflow, Error::InvalidInput { .. }), "{overflow}");
        assert!(store.increment("n", 1).is_err(), "beyond an i64");
        store.increment("negative", -1).expect("increment");
        let negative = store
            .increment_unsigned("negative", 1)
            .expect_err("negative");
        assert!(matches!(negative, Error::InvalidInput { .. }), "{negative}");
        assert_eq!(
            store.get("n").ok().flatten().as_deref(),
            Some(u64::MAX.to_string().as_bytes())
        );
    }
}
