//! Listing the live keys in pages, shaped like `wasi:keyvalue`'s `list-keys`.
//!
//! Keys are listed in the order of their hashes (shard by shard, names sorted
//! within a shard). The cursor is the hash of the last key of a page, so a
//! listing resumes correctly whatever happened in between: a key that is live
//! for the whole listing is returned exactly once; a key inserted or removed
//! meanwhile may or may not be. Each page costs one listing of the shard
//! directories it touches and one small read (header and key) per entry; an
//! entry whose stored key does not hash to its file name (damage) is skipped.

use std::io;

use crate::error::{Error, MissingOk, Result};
use crate::format::{self, HEADER_LEN, Head};
use crate::layout::KeyHash;
use crate::options::now_ms;
use crate::platform::{self, Dir};
use crate::scan;
use crate::store::FileStore;

/// Keys returned per page.
pub const PAGE_SIZE: usize = 256;

/// One page of keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPage {
    /// Live keys, in hash order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` when the listing is complete.
    pub cursor: Option<String>,
}

impl FileStore {
    /// A page of live (unexpired) keys, starting after `cursor` (`None`: from
    /// the start). Pass the returned cursor to get the next page.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a cursor this cache did not hand out; an I/O
    /// error if a directory or entry cannot be read.
    pub fn list_keys(&self, cursor: Option<&str>) -> Result<KeyPage> {
        let after = match cursor {
            None => None,
            Some(cursor) => Some(KeyHash::from_hex(cursor).ok_or_else(|| {
                Error::invalid(format!(
                    "`{cursor}` is not a list-keys cursor of this cache"
                ))
            })?),
        };
        let first_shard = after.map_or(0, |hash| hash.shard());
        let now = now_ms();
        let mut page = KeyPage::default();
        for index in scan::shards(self.cache())? {
            if index < first_shard {
                continue;
            }
            let Some(dir) = scan::shard(self.cache(), index)? else {
                continue;
            };
            let mut hashes = scan::entry_hashes(&dir)?;
            hashes.sort_unstable();
            for hash in hashes {
                if after.is_some_and(|after| hash <= after) {
                    continue;
                }
                let Some((key, head)) = read_stored_key(&dir, &hash)? else {
                    continue;
                };
                if head.is_expired_at(now) || KeyHash::of(&key) != hash {
                    continue;
                }
                page.keys.push(key);
                if page.keys.len() == PAGE_SIZE {
                    page.cursor = Some(hash.hex());
                    return Ok(page);
                }
            }
        }
        Ok(page)
    }

    /// Every live key, page by page (see [`FileStore::list_keys`]).
    pub fn keys(&self) -> Keys<'_> {
        Keys {
            store: self,
            page: Vec::new().into_iter(),
            cursor: None,
            done: false,
        }
    }
}

/// The iterator of [`FileStore::keys`].
#[derive(Debug)]
pub struct Keys<'a> {
    store: &'a FileStore,
    page: std::vec::IntoIter<String>,
    cursor: Option<String>,
    done: bool,
}

impl Iterator for Keys<'_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(key) = self.page.next() {
                return Some(Ok(key));
            }
            if self.done {
                return None;
            }
            match self.store.list_keys(self.cursor.as_deref()) {
                Ok(page) => {
                    self.done = page.cursor.is_none();
                    self.cursor = page.cursor;
                    self.page = page.keys.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// The key and header stored in the entry file of `hash` in `dir`; `None` if
/// the file is gone or is not an entry (a damaged one is left for `get` to
/// retire).
fn read_stored_key(dir: &Dir, hash: &KeyHash) -> Result<Option<(String, Head)>> {
    let name = hash.file_name();
    match read_key_bytes(dir, name.as_str()).missing_ok() {
        Ok(Some(Some((bytes, head)))) => Ok(String::from_utf8(bytes).ok().map(|key| (key, head))),
        Ok(_) => Ok(None),
        Err(e) if platform::is_refused_link(&e) => Ok(None),
        Err(e) => Err(Error::io("read entry", &dir.path().join(name.as_str()), e)),
    }
}

fn read_key_bytes(dir: &Dir, name: &str) -> io::Result<Option<(Vec<u8>, Head)>> {
    const FIRST_READ: usize = 512;
    let file = dir.open_file(name)?;
    let file_len = file.stat()?.len;
    let mut bytes = vec![0u8; FIRST_READ.min(usize::try_from(file_len).unwrap_or(FIRST_READ))];
    let filled = platform::fill(&file, &mut bytes, 0)?;
    bytes.truncate(filled);
    let Ok(head) = format::decode_head(&bytes, file_len) else {
        return Ok(None);
    };
    let key_end = HEADER_LEN + head.key_len;
    if bytes.len() < key_end {
        let from = bytes.len();
        bytes.resize(key_end, 0);
        let filled = platform::fill(&file, &mut bytes, from)?;
        bytes.truncate(filled);
    }
    if bytes.len() < key_end {
        return Ok(None); // shrank under us: not a whole entry any more
    }
    bytes.truncate(key_end);
    bytes.drain(..HEADER_LEN);
    Ok(Some((bytes, head)))
}
