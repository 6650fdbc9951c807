//! The on-disk formats — the one place they are defined: entry files, lock
//! files and the census file.
//!
//! # Entry files
//!
//! Every entry is one file holding a fixed 44-byte header, the key, then the value.
//! All integers are little-endian.
//!
//! | offset   | size        | field        | meaning                                                    |
//! |----------|-------------|--------------|------------------------------------------------------------|
//! | 0        | 4           | `magic`      | `b"FCAC"` — "FileCAChe"                                    |
//! | 4        | 2           | `version`    | `2` (written), or `1`; any other value is refused          |
//! | 6        | 2           | `flags`      | `0`; reserved, a non-zero value is refused                 |
//! | 8        | 8           | `expires_at` | Unix time in milliseconds; `u64::MAX` means never          |
//! | 16       | 4           | `key_len`    | length of the key in bytes (UTF-8)                         |
//! | 20       | 8           | `value_len`  | length of the value in bytes                               |
//! | 28       | 16          | `checksum`   | over bytes 0..28, key, value: see below                    |
//! | 44       | `key_len`   | `key`        | the key itself (detects hash collisions, allows listing)   |
//! | 44+k     | `value_len` | `value`      | the value                                                  |
//!
//! The file length must be exactly `44 + key_len + value_len`. The checksum of
//! version 2 is XXH3-128 with the seed [`CHECKSUM_SEED`], little-endian; of
//! version 1, the first 16 bytes of blake3 keyed with
//! `blake3::derive_key(CHECKSUM_CONTEXT, b"")`. Either way a torn write, a
//! damaged file or a file of any other origin fails the check; neither is
//! meant to resist forgery (whoever can write the directory can write a valid
//! entry). Version 2 only changes the checksum: XXH3 reads at memory speed,
//! where blake3 cost more than the rest of a 4 KiB read (and, inside a wasm
//! component, runs without SIMD). Entries of both versions are read; new ones
//! are written as version 2. Decoding never panics: a short file, wrong magic,
//! unknown version or flags, length mismatch, bad checksum or non-UTF-8 key is
//! a [`DecodeError`], which the store treats as a miss and removes.
//!
//! # Entry file timestamps
//!
//! Two of an entry file's timestamps carry meaning, so that eviction can judge an
//! entry with one `stat` and no read:
//!
//! - the **modification time** is its last use: set when it is written, moved
//!   forward by `get` (at most every `bounded::TOUCH_INTERVAL`, 100 ms);
//! - the **access time** is its expiry (`expires_at`), set when it is written;
//!   an entry that never expires gets [`NEVER_HINT_SECS`], far in the future.
//!   It is a hint only — `get` always decides from the header. (With `relatime`
//!   or `noatime` mounts, reads never move an access time that is in the future;
//!   a `strictatime` mount would, making entries look expired to eviction early.)
//!
//! # Lock files
//!
//! A key lock (`locks/<64 hex>.lock`, see `crate::exclusion`) is a 32-byte file:
//!
//! | offset | size | field         | meaning                                              |
//! |--------|------|---------------|------------------------------------------------------|
//! | 0      | 4    | `magic`       | `b"FCLK"`                                            |
//! | 4      | 2    | `version`     | `1`                                                  |
//! | 6      | 2    | `reserved`    | `0`                                                  |
//! | 8      | 16   | `owner`       | random token of the holder, unique per acquisition   |
//! | 24     | 8    | `acquired_at` | Unix time in milliseconds (for people reading it)    |
//!
//! Only the holder reads its content, to check it still holds the lock; whether a
//! lock is abandoned is judged by the file's modification time alone, because a
//! holder that died between creating the file and writing it leaves it empty.

//!
//! # The census file
//!
//! `census-3` (at the cache root) holds the size of the cache as the handles with
//! a size limit have reported it, and what each writing handle has reserved
//! (see `crate::bounded`); 4 144 bytes plus 32 per reservation:
//!
//! | offset | size | field            | meaning                                                  |
//! |--------|------|------------------|----------------------------------------------------------|
//! | 0      | 4    | `magic`          | `b"FCCN"`                                                |
//! | 4      | 2    | `version`        | `3` (its own: version 2 had no reservations, version 1 no shard changes) |
//! | 6      | 1    | `flags`          | bit 0 `extrapolated`: the count is the first one, from part of the shards; the first complete recount replaces it whatever the drift. Other bits `0` (refused otherwise) |
//! | 7      | 1    | `reserved`       | `0` (refused otherwise)                                  |
//! | 8      | 8    | `entries`        | entry files, signed (a drifted count may dip below zero) |
//! | 16     | 8    | `bytes`          | bytes of entry files, signed                             |
//! | 24     | 8    | `reconciled_at`  | Unix ms of the last correction from a full recount, or of the start of a recount of a stale count |
//! | 32     | 4096 | `shard_changes`  | per shard 0..256: entries (8), then bytes (8), signed: the sum of all changes reported to that shard (recounts use their differences; corrections leave them alone) |
//! | 4128   | 8    | `reservations`   | `n`, the number of reservations, at most `MAX_RESERVATIONS` (1 024) |
//! | 4136   | 32 × `n` | reservations | each: `owner` (8, a handle's random token), `entries` (8) and `bytes` (8) reserved, signed, `renewed_at` (8, Unix ms) |
//! | 4136 + 32 × `n` | 8 | `checksum` | first 8 bytes of keyed blake3 over all the bytes before it |
//!
//! It is replaced whole (temporary file, then `rename`) by a writer holding its
//! lock; a missing or damaged census file, or one of another version, is
//! rebuilt from a recount.

use std::sync::LazyLock;

/// The version of the lock file format.
pub const LOCK_VERSION: u16 = 1;
/// The four bytes every entry file starts with.
pub const MAGIC: [u8; 4] = *b"FCAC";
/// The format version this build writes.
pub const VERSION: u16 = 2;
/// The older format version this build reads too (blake3 checksum).
pub const VERSION_BLAKE3: u16 = 1;
/// The seed of the XXH3-128 checksum of version 2.
pub const CHECKSUM_SEED: u64 = 0x6663_6163_6865_7632; // "fcachev2"
/// Size of the fixed header, in bytes.
pub const HEADER_LEN: usize = 44;
/// `expires_at` value meaning "never expires".
pub const NEVER: u64 = u64::MAX;
/// blake3 key-derivation context of the version 1 checksum.
pub const CHECKSUM_CONTEXT: &str = "filecache 2026-11 entry checksum v1";

const CHECKED_HEADER_LEN: usize = 28;
const CHECKSUM_LEN: usize = 16;

static CHECKSUM_KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key(CHECKSUM_CONTEXT, b""));

/// Why bytes are not a valid entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header.
    #[error("file is {len} bytes, shorter than the {HEADER_LEN}-byte header")]
    TooShort {
        /// Length of the file (or of the bytes read).
        len: usize,
    },
    /// The first four bytes are not `b"FCAC"`.
    #[error("bad magic bytes {found:02x?}")]
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// A version this build does not know.
    #[error("unknown format version {found} (this build reads {VERSION_BLAKE3} and {VERSION})")]
    UnknownVersion {
        /// The version found.
        found: u16,
    },
    /// Reserved flag bits are set.
    #[error("unknown flags {found:#06x}")]
    UnknownFlags {
        /// The flags found.
        found: u16,
    },
    /// The lengths in the header do not add up to the file length.
    #[error("header announces {expected} bytes but the file has {actual}")]
    LengthMismatch {
        /// Length the header implies.
        expected: u128,
        /// Actual length.
        actual: u64,
    },
    /// The checksum does not match the content.
    #[error("checksum mismatch")]
    BadChecksum,
    /// The stored key is not UTF-8.
    #[error("stored key is not UTF-8")]
    KeyNotUtf8,
}

/// A decoded entry, borrowing from the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The format version it was written in.
    pub version: u16,
    /// Expiry in Unix milliseconds, [`NEVER`] for none.
    pub expires_at: u64,
    /// The stored key.
    pub key: &'a str,
    /// Offset of the value within the decoded bytes.
    pub value_offset: usize,
    /// The stored value.
    pub value: &'a [u8],
}

impl EntryRef<'_> {
    /// Whether the entry is expired at `now_ms` (Unix milliseconds).
    pub fn is_expired_at(&self, now_ms: u64) -> bool {
        is_expired(self.expires_at, now_ms)
    }
}

/// Encodes the header and key of an entry; the value follows them in the file.
///
/// Returned buffer has `HEADER_LEN + key.len()` bytes and spare capacity for
/// `spare` more, so small values can be appended without reallocation.
pub fn encode_head(expires_at: u64, key: &str, value: &[u8], spare: usize) -> Vec<u8> {
    encode_head_as(VERSION, expires_at, key, value, spare)
}

/// [`encode_head`] in format version `version` (1 or 2).
fn encode_head_as(version: u16, expires_at: u64, key: &str, value: &[u8], spare: usize) -> Vec<u8> {
    let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    let mut buf = Vec::with_capacity(HEADER_LEN + key.len() + spare);
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&version.to_le_bytes());
    buf.extend_from_slice(&0u16.to_le_bytes());
    buf.extend_from_slice(&expires_at.to_le_bytes());
    buf.extend_from_slice(&key_len.to_le_bytes());
    buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    let checksum = checksum(version, &buf[..CHECKED_HEADER_LEN], key.as_bytes(), value);
    buf.extend_from_slice(&checksum);
    buf.extend_from_slice(key.as_bytes());
    buf
}

/// Encodes a whole entry into one buffer.
pub fn encode(expires_at: u64, key: &str, value: &[u8]) -> Vec<u8> {
    encode_as(VERSION, expires_at, key, value)
}

/// Encodes a whole entry in format version `version` (1 or 2): what an
/// older build wrote, for tests and the fuzz properties.
pub fn encode_as(version: u16, expires_at: u64, key: &str, value: &[u8]) -> Vec<u8> {
    let mut buf = encode_head_as(version, expires_at, key, value, value.len());
    buf.extend_from_slice(value);
    buf
}

/// The fixed header of an entry, checked for everything but the checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The format version.
    pub version: u16,
    /// Expiry in Unix milliseconds, [`NEVER`] for none.
    pub expires_at: u64,
    /// Length of the key in bytes.
    pub key_len: usize,
    /// Length of the value in bytes.
    pub value_len: u64,
    checksum: [u8; CHECKSUM_LEN],
}

impl Head {
    /// Whether the entry is expired at `now_ms` (Unix milliseconds).
    pub fn is_expired_at(&self, now_ms: u64) -> bool {
        is_expired(self.expires_at, now_ms)
    }
}

/// Decodes the header from the first bytes of a file of `file_len` bytes: checks
/// magic, version, flags and that the lengths add up to `file_len`. Cheap checks
/// only — the checksum needs the whole file ([`decode`]).
///
/// # Errors
/// A [`DecodeError`] naming the first check that fails.
pub fn decode_head(bytes: &[u8], file_len: u64) -> Result<Head, DecodeError> {
    let header = bytes.get(..HEADER_LEN).ok_or(DecodeError::TooShort {
        len: usize::try_from(file_len)
            .unwrap_or(usize::MAX)
            .min(bytes.len()),
    })?;
    let magic: [u8; 4] = array(&header[0..4]);
    if magic != MAGIC {
        return Err(DecodeError::BadMagic { found: magic });
    }
    let version = u16::from_le_bytes(array(&header[4..6]));
    if version != VERSION && version != VERSION_BLAKE3 {
        return Err(DecodeError::UnknownVersion { found: version });
    }
    let flags = u16::from_le_bytes(array(&header[6..8]));
    if flags != 0 {
        return Err(DecodeError::UnknownFlags { found: flags });
    }
    let key_len = u32::from_le_bytes(array(&header[16..20]));
    let value_len = u64::from_le_bytes(array(&header[20..28]));
    let expected = HEADER_LEN as u128 + u128::from(key_len) + u128::from(value_len);
    if expected != u128::from(file_len) {
        return Err(DecodeError::LengthMismatch {
            expected,
            actual: file_len,
        });
    }
    Ok(Head {
        version,
        expires_at: u64::from_le_bytes(array(&header[8..16])),
        key_len: key_len as usize,
        value_len,
        checksum: array(&header[CHECKED_HEADER_LEN..HEADER_LEN]),
    })
}

/// Decodes and verifies a whole entry file.
///
/// # Errors
/// A [`DecodeError`] naming the first check the bytes fail.
pub fn decode(bytes: &[u8]) -> Result<EntryRef<'_>, DecodeError> {
    let head = decode_head(bytes, bytes.len() as u64)?;
    // The lengths add up to `bytes.len()` now, so these slices are in bounds.
    let value_offset = HEADER_LEN + head.key_len;
    let key = &bytes[HEADER_LEN..value_offset];
    let value = &bytes[value_offset..];
    if checksum(head.version, &bytes[..CHECKED_HEADER_LEN], key, value) != head.checksum {
        return Err(DecodeError::BadChecksum);
    }
    let key = std::str::from_utf8(key).map_err(|_| DecodeError::KeyNotUtf8)?;
    Ok(EntryRef {
        version: head.version,
        expires_at: head.expires_at,
        key,
        value_offset,
        value,
    })
}

/// The access time, in Unix seconds, given to an entry that never expires
/// (in the year 2381; file systems that cannot store it keep their latest time).
pub const NEVER_HINT_SECS: u64 = 13_000_000_000;

/// The access time that tells eviction when an entry expires (see the module docs).
pub fn expiry_hint(expires_at_ms: u64) -> std::time::SystemTime {
    let since_epoch = if expires_at_ms == NEVER {
        std::time::Duration::from_secs(NEVER_HINT_SECS)
    } else {
        std::time::Duration::from_millis(expires_at_ms)
    };
    std::time::UNIX_EPOCH + since_epoch
}

/// The expiry (Unix ms, [`NEVER`] for none) that the access time `hint` tells:
/// the inverse of [`expiry_hint`].
pub fn expiry_from_hint(hint: std::time::SystemTime) -> u64 {
    match hint.duration_since(std::time::UNIX_EPOCH) {
        Ok(since_epoch) if since_epoch.as_secs() >= NEVER_HINT_SECS => NEVER,
        Ok(since_epoch) => u64::try_from(since_epoch.as_millis()).unwrap_or(NEVER),
        Err(_) => 0,
    }
}

/// The four bytes every lock file starts with.
pub const LOCK_MAGIC: [u8; 4] = *b"FCLK";
/// Size of a lock file, in bytes.
pub const LOCK_LEN: usize = 32;

/// Encodes the content of a lock file held by `owner` since `acquired_at_ms`.
pub fn encode_lock(owner: [u8; 16], acquired_at_ms: u64) -> [u8; LOCK_LEN] {
    let mut out = [0u8; LOCK_LEN];
    out[0..4].copy_from_slice(&LOCK_MAGIC);
    out[4..6].copy_from_slice(&LOCK_VERSION.to_le_bytes());
    out[8..24].copy_from_slice(&owner);
    out[24..32].copy_from_slice(&acquired_at_ms.to_le_bytes());
    out
}

/// The owner token of a lock file's content, if it is a whole lock file.
pub fn lock_owner(bytes: &[u8]) -> Option<[u8; 16]> {
    if bytes.len() != LOCK_LEN
        || bytes[0..4] != LOCK_MAGIC
        || bytes[4..6] != LOCK_VERSION.to_le_bytes()
    {
        return None;
    }
    Some(array(&bytes[8..24]))
}

/// The four bytes the census file starts with.
pub const CENSUS_MAGIC: [u8; 4] = *b"FCCN";
/// Size of a census file without reservations, in bytes.
pub const CENSUS_LEN: usize = RESERVATIONS_AT + 8;
/// The census file's own format version.
pub const CENSUS_VERSION: u16 = 3;
/// Shards whose changes the census file tracks: one per shard directory.
pub const CENSUS_SHARDS: usize = 256;
/// Most reservations a census file holds.
pub const MAX_RESERVATIONS: usize = 1024;
/// Where the census file's shard changes start.
const SHARD_CHANGES_AT: usize = 32;
/// Where the census file's number of reservations is.
const RESERVATION_COUNT_AT: usize = SHARD_CHANGES_AT + 16 * CENSUS_SHARDS;
/// Where the census file's reservations start.
const RESERVATIONS_AT: usize = RESERVATION_COUNT_AT + 8;
/// Size of one reservation in the census file.
const RESERVATION_LEN: usize = 32;

/// The content of the census file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CensusRecord {
    /// Entry files in the cache.
    pub entries: i64,
    /// Bytes of entry files.
    pub bytes: i64,
    /// Unix ms of the last correction from a full recount, or of the start
    /// of a recount of a stale count (0: none yet).
    pub reconciled_at: u64,
    /// Whether the count was extrapolated from part of the shards (by the
    /// first bounded handle) and no complete recount replaced it yet.
    pub extrapolated: bool,
    /// Per shard, the sum of the changes reported to it: `[entries, bytes]`.
    pub shard_changes: [[i64; 2]; CENSUS_SHARDS],
    /// What the handles writing now have reserved (at most
    /// `MAX_RESERVATIONS` (1 024)).
    pub reservations: Vec<Reservation>,
}

/// Growth one handle may add before it reports it, counted in the census
/// ahead of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The handle's random token.
    pub owner: u64,
    /// Entries reserved.
    pub entries: i64,
    /// Bytes reserved.
    pub bytes: i64,
    /// Unix ms when the handle last renewed it.
    pub renewed_at: u64,
}

impl Default for CensusRecord {
    fn default() -> Self {
        Self {
            entries: 0,
            bytes: 0,
            reconciled_at: 0,
            extrapolated: false,
            shard_changes: [[0; 2]; CENSUS_SHARDS],
            reservations: Vec::new(),
        }
    }
}

/// Encodes the census file (keeping the first `MAX_RESERVATIONS` (1 024)
/// reservations).
pub fn encode_census(record: &CensusRecord) -> Vec<u8> {
    let reservations = &record.reservations[..record.reservations.len().min(MAX_RESERVATIONS)];
    let sum_at = RESERVATIONS_AT + RESERVATION_LEN * reservations.len();
    let mut out = vec![0u8; sum_at + 8];
    out[0..4].copy_from_slice(&CENSUS_MAGIC);
    out[4..6].copy_from_slice(&CENSUS_VERSION.to_le_bytes());
    out[6] = u8::from(record.extrapolated);
    out[8..16].copy_from_slice(&record.entries.to_le_bytes());
    out[16..24].copy_from_slice(&record.bytes.to_le_bytes());
    out[24..32].copy_from_slice(&record.reconciled_at.to_le_bytes());
    let changes = out[SHARD_CHANGES_AT..RESERVATION_COUNT_AT].chunks_exact_mut(8);
    for (field, value) in changes.zip(record.shard_changes.iter().flatten()) {
        field.copy_from_slice(&value.to_le_bytes());
    }
    out[RESERVATION_COUNT_AT..RESERVATIONS_AT]
        .copy_from_slice(&(reservations.len() as u64).to_le_bytes());
    let slots = out[RESERVATIONS_AT..sum_at].chunks_exact_mut(RESERVATION_LEN);
    for (slot, reservation) in slots.zip(reservations) {
        slot[0..8].copy_from_slice(&reservation.owner.to_le_bytes());
        slot[8..16].copy_from_slice(&reservation.entries.to_le_bytes());
        slot[16..24].copy_from_slice(&reservation.bytes.to_le_bytes());
        slot[24..32].copy_from_slice(&reservation.renewed_at.to_le_bytes());
    }
    let sum = keyed_blake3(&out[..sum_at], b"", b"");
    out[sum_at..].copy_from_slice(&sum[..8]);
    out
}

/// Decodes the census file; `None` if it is not a whole, intact one of this
/// version.
pub fn decode_census(bytes: &[u8]) -> Option<CensusRecord> {
    if bytes.len() < CENSUS_LEN
        || bytes[0..4] != CENSUS_MAGIC
        || bytes[4..6] != CENSUS_VERSION.to_le_bytes()
        || bytes[6] > 1
        || bytes[7] != 0
    {
        return None;
    }
    let count = u64::from_le_bytes(array(&bytes[RESERVATION_COUNT_AT..RESERVATIONS_AT]));
    let count = usize::try_from(count)
        .ok()
        .filter(|&count| count <= MAX_RESERVATIONS)?;
    let sum_at = RESERVATIONS_AT + RESERVATION_LEN * count;
    if bytes.len() != sum_at + 8 || bytes[sum_at..] != keyed_blake3(&bytes[..sum_at], b"", b"")[..8]
    {
        return None;
    }
    let mut record = CensusRecord {
        entries: i64::from_le_bytes(array(&bytes[8..16])),
        bytes: i64::from_le_bytes(array(&bytes[16..24])),
        reconciled_at: u64::from_le_bytes(array(&bytes[24..32])),
        extrapolated: bytes[6] == 1,
        ..CensusRecord::default()
    };
    let fields = bytes[SHARD_CHANGES_AT..RESERVATION_COUNT_AT].chunks_exact(8);
    for (value, field) in record.shard_changes.iter_mut().flatten().zip(fields) {
        *value = i64::from_le_bytes(array(field));
    }
    record.reservations = bytes[RESERVATIONS_AT..sum_at]
        .chunks_exact(RESERVATION_LEN)
        .map(|slot| Reservation {
            owner: u64::from_le_bytes(array(&slot[0..8])),
            entries: i64::from_le_bytes(array(&slot[8..16])),
            bytes: i64::from_le_bytes(array(&slot[16..24])),
            renewed_at: u64::from_le_bytes(array(&slot[24..32])),
        })
        .collect();
    Some(record)
}

/// The file length a header announces (`44 + key_len + value_len`), if `bytes`
/// holds at least the lengths' part of a header with the right magic. Lets a
/// reader size its buffer from the first bytes it read; the full decode still
/// checks everything.
pub fn announced_len(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < CHECKED_HEADER_LEN || bytes[0..4] != MAGIC {
        return None;
    }
    let key_len = u32::from_le_bytes(array(&bytes[16..20]));
    let value_len = u64::from_le_bytes(array(&bytes[20..28]));
    (HEADER_LEN as u64)
        .checked_add(u64::from(key_len))?
        .checked_add(value_len)
}

/// Whether an entry with `expires_at` is expired at `now_ms`.
pub fn is_expired(expires_at: u64, now_ms: u64) -> bool {
    expires_at != NEVER && now_ms >= expires_at
}

/// The checksum of format version `version` over the checked header, key and
/// value.
fn checksum(version: u16, checked_header: &[u8], key: &[u8], value: &[u8]) -> [u8; CHECKSUM_LEN] {
    if version == VERSION_BLAKE3 {
        return keyed_blake3(checked_header, key, value);
    }
    let mut hasher = xxhash_rust::xxh3::Xxh3::with_seed(CHECKSUM_SEED);
    hasher.update(checked_header);
    hasher.update(key);
    hasher.update(value);
    hasher.digest128().to_le_bytes()
}

/// The first 16 bytes of blake3 keyed with the checksum key over the parts:
/// the checksum of entry format version 1, and of the census file.
fn keyed_blake3(first: &[u8], second: &[u8], third: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut hasher = blake3::Hasher::new_keyed(&CHECKSUM_KEY);
    hasher.update(first);
    hasher.update(second);
    hasher.update(third);
    let mut out = [0u8; CHECKSUM_LEN];
    hasher.finalize_xof().fill(&mut out);
    out
}

/// Copies a slice of known length into an array (lengths are fixed by the callers).
fn array<const N: usize>(slice: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// An example entry encoded in each format version, pinned byte for byte
    /// (version 2's checksum agrees with Python's `xxhash.xxh3_128`), and
    /// read back; the checksum catches a changed byte in both.
    #[test]
    fn encoded_examples_are_pinned_byte_for_byte() {
        let checksums = [
            (VERSION, "dd5061e34fb63960ecc2eb409c1e8827"), // XXH3-128, seed "fcachev2"
            (VERSION_BLAKE3, "1a028d4522e7ab927390c281d25f581b"), // keyed blake3, 16 bytes
        ];
        for (version, checksum) in checksums {
            let bytes = encode_as(version, 0x0102_0304_0506_0708, "ké", b"v!");
            let expected = [
                "46434143",                   // magic "FCAC"
                &hex(&version.to_le_bytes()), // version
                "0000",                       // flags
                "0807060504030201",           // expires_at
                "03000000",                   // key_len: "ké" is 3 UTF-8 bytes
                "0200000000000000",           // value_len 2
                checksum,
                "6bc3a9", // key
                "7621",   // value
            ]
            .concat();
            assert_eq!(hex(&bytes), expected, "version {version}");
            let entry = decode(&bytes).expect("decodes");
            assert_eq!(
                (entry.version, entry.key, entry.value),
                (version, "ké", &b"v!"[..])
            );
            let mut damaged = bytes.clone();
            damaged[45] ^= 1;
            assert_eq!(decode(&damaged), Err(DecodeError::BadChecksum));
        }
        assert_eq!(encode(1, "k", b"v"), encode_as(VERSION, 1, "k", b"v"));
        assert_eq!(&hex(&VERSION.to_le_bytes()), "0200");
    }

    #[test]
    fn lock_file_is_pinned_byte_for_byte() {
        let lock = encode_lock([0xab; 16], 0x0102_0304_0506_0708);
        let hex: String = lock.iter().map(|b| format!("{b:02x}")).collect();
        let expected = concat!(
            "46434c4b",                         // magic "FCLK"
            "0100",                             // version 1
            "0000",                             // reserved
            "abababababababababababababababab", // owner token
            "0807060504030201",                 // acquired_at
        );
        assert_eq!(hex, expected);
        assert_eq!(lock_owner(&lock), Some([0xab; 16]));
        assert_eq!(lock_owner(&lock[..31]), None);
        assert_eq!(lock_owner(b""), None);
    }

    #[test]
    fn census_file_is_pinned_and_checked() {
        let mut record = CensusRecord {
            entries: 3,
            bytes: -1,
            reconciled_at: 0x0102,
            extrapolated: true,
            ..CensusRecord::default()
        };
        record.shard_changes[0] = [1, 2];
        record.shard_changes[255] = [-1, 0x0304];
        let bytes = encode_census(&record);
        let hex = |range: std::ops::Range<usize>| -> String {
            bytes[range].iter().map(|b| format!("{b:02x}")).collect()
        };
        let expected = concat!(
            "4643434e",         // magic "FCCN"
            "0300",             // census version 3
            "01",               // flags: extrapolated
            "00",               // reserved
            "0300000000000000", // entries 3
            "ffffffffffffffff", // bytes -1
            "0201000000000000", // reconciled_at
            "0100000000000000", // shard 0: entries 1
            "0200000000000000", // shard 0: bytes 2
        );
        assert_eq!(hex(0..48), expected);
        assert_eq!(hex(48..64), "0".repeat(32), "shard 1: no changes");
        assert_eq!(
            hex(4112..4136),
            "ffffffffffffffff04030000000000000000000000000000",
            "shard 255: entries -1, bytes 0x0304; no reservations"
        );
        assert_eq!(bytes.len(), CENSUS_LEN);
        assert_eq!(decode_census(&bytes), Some(record.clone()));
        for flipped in [9, 100, 4127, 4128] {
            let mut damaged = bytes.clone();
            damaged[flipped] ^= 1;
            assert_eq!(decode_census(&damaged), None);
        }
        assert_eq!(decode_census(&bytes[..CENSUS_LEN - 1]), None);
        // Unknown flags and a non-zero reserved byte are refused, checksum or not.
        for (at, value) in [(6, 2), (7, 1)] {
            let mut unknown = bytes.clone();
            unknown[at] = value;
            let sum = keyed_blake3(&unknown[..CENSUS_LEN - 8], b"", b"");
            unknown[CENSUS_LEN - 8..].copy_from_slice(&sum[..8]);
            assert_eq!(decode_census(&unknown), None);
        }
        // A version 2 file (4 136 bytes, no reservations) is not this version.
        let mut version_two = bytes[..4136].to_vec();
        version_two[4] = 2;
        assert_eq!(decode_census(&version_two), None);
    }

    #[test]
    fn census_reservations_are_pinned_and_checked() {
        let reservation = Reservation {
            owner: 0x0a0b,
            entries: 32,
            bytes: -2,
            renewed_at: 0x0506,
        };
        let record = CensusRecord {
            reservations: vec![reservation; 2],
            ..CensusRecord::default()
        };
        let bytes = encode_census(&record);
        let hex: String = bytes[4128..4168]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let expected = concat!(
            "0200000000000000", // two reservations
            "0b0a000000000000", // owner
            "2000000000000000", // entries 32
            "feffffffffffffff", // bytes -2
            "0605000000000000", // renewed_at
        );
        assert_eq!(hex, expected);
        assert_eq!(bytes.len(), CENSUS_LEN + 2 * 32);
        assert_eq!(decode_census(&bytes), Some(record.clone()));
        // A count that does not match the length is refused.
        let mut miscounted = bytes.clone();
        miscounted[4128] = 1;
        let sum = keyed_blake3(&miscounted[..CENSUS_LEN - 8 + 64], b"", b"");
        miscounted[CENSUS_LEN - 8 + 64..].copy_from_slice(&sum[..8]);
        assert_eq!(decode_census(&miscounted), None);
        // Beyond the most a file holds, the first ones are kept.
        let crowded = CensusRecord {
            reservations: vec![reservation; MAX_RESERVATIONS + 1],
            ..CensusRecord::default()
        };
        let decoded = decode_census(&encode_census(&crowded)).expect("decodes");
        assert_eq!(decoded.reservations.len(), MAX_RESERVATIONS);
    }

    #[test]
    fn round_trip() {
        let bytes = encode(NEVER, "key", b"value");
        let entry = decode(&bytes).expect("valid");
        assert_eq!(entry.key, "key");
        assert_eq!(entry.value, b"value");
        assert_eq!(entry.expires_at, NEVER);
        assert!(!entry.is_expired_at(u64::MAX - 1));
        assert_eq!(&bytes[entry.value_offset..], b"value");
    }

    #[test]
    fn every_damage_kind_is_reported() {
        let good = encode(5, "k", b"value");
        assert_eq!(decode(&good[..10]), Err(DecodeError::TooShort { len: 10 }));
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(decode(&bad), Err(DecodeError::BadMagic { .. })));
        let mut bad = good.clone();
        bad[4] = 3;
        assert_eq!(decode(&bad), Err(DecodeError::UnknownVersion { found: 3 }));
        let mut bad = good.clone();
        bad[6] = 1;
        assert_eq!(decode(&bad), Err(DecodeError::UnknownFlags { found: 1 }));
        assert!(matches!(
            decode(&good[..good.len() - 1]),
            Err(DecodeError::LengthMismatch { .. })
        ));
        let mut bad = good.clone();
        *bad.last_mut().expect("non-empty") ^= 1;
        assert_eq!(decode(&bad), Err(DecodeError::BadChecksum));
        let mut bad = good.clone();
        bad[9] ^= 1; // expiry is covered by the checksum too
        assert_eq!(decode(&bad), Err(DecodeError::BadChecksum));
        // Absurd lengths never overflow or panic.
        let mut bad = good;
        bad[20..28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode(&bad),
            Err(DecodeError::LengthMismatch { .. })
        ));
    }
}
