//! The systems measured, behind one small trait: the raw `std::fs` floor,
//! filecache natively, filecache as a component in wasmtime, and cacache.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use filecache::{Expiry, FileStore, Options};
use filecache_host::{CacheRuntime, ComponentCache};

/// A cache under measurement, opened on one directory.
pub trait System {
    /// Stores a value.
    fn insert(&mut self, key: &str, value: &[u8]);
    /// Reads a value.
    fn get(&mut self, key: &str) -> Option<Vec<u8>>;
    /// Whether a key is present.
    fn contains(&mut self, key: &str) -> bool;
    /// Removes a key.
    fn remove(&mut self, key: &str);
}

/// Which system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `std::fs` on blake3-hex names: write temp (+ sync) + rename, read, metadata, remove.
    Raw,
    /// The `filecache` crate.
    Native,
    /// The filecache component in `filecache-host`, one instance reused.
    Component,
    /// cacache 13 (sync API; it never syncs, so it has no durable variant).
    Cacache,
}

impl Kind {
    /// Every system, the baseline first.
    pub const ALL: [Self; 4] = [Self::Raw, Self::Native, Self::Component, Self::Cacache];

    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw std::fs floor",
            Self::Native => "filecache native",
            Self::Component => "filecache component",
            Self::Cacache => "cacache 13",
        }
    }

    /// Whether the system can sync its writes.
    pub fn has_durable_mode(self) -> bool {
        self != Self::Cacache
    }

    /// Opens the system on `dir`.
    pub fn open(self, runtime: &CacheRuntime, dir: &Path, durable: bool) -> Box<dyn System> {
        fs::create_dir_all(dir).expect("create the benchmark directory");
        let options = Options {
            durable,
            ..Options::default()
        };
        match self {
            Self::Raw => Box::new(Raw::new(dir, durable)),
            Self::Native => Box::new(FileStore::open(dir, options).expect("open filecache")),
            Self::Component => Box::new(runtime.open(dir, &options).expect("open the component")),
            Self::Cacache => Box::new(Cacache(dir.to_path_buf())),
        }
    }
}

/// The physical limit of a one-file-per-entry design.
pub struct Raw {
    root: PathBuf,
    tmp: PathBuf,
    durable: bool,
    next_temp: u64,
}

impl Raw {
    fn new(root: &Path, durable: bool) -> Self {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).expect("tmp dir");
        Self {
            root: root.to_path_buf(),
            tmp,
            durable,
            next_temp: 0,
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        let hex = blake3::hash(key.as_bytes()).to_hex();
        let mut path = self.root.join(&hex[..2]);
        path.push(hex.as_str());
        path
    }
}

impl System for Raw {
    fn insert(&mut self, key: &str, value: &[u8]) {
        self.next_temp += 1;
        let temp = self.tmp.join(format!("{}.tmp", self.next_temp));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .expect("create temp");
        file.write_all(value).expect("write");
        if self.durable {
            file.sync_data().expect("sync");
        }
        drop(file);
        let path = self.path(key);
        if let Err(e) = fs::rename(&temp, &path) {
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "rename: {e}");
            fs::create_dir_all(path.parent().expect("shard")).expect("shard dir");
            fs::rename(&temp, &path).expect("rename");
        }
        if self.durable {
            fs::File::open(path.parent().expect("shard"))
                .and_then(|dir| dir.sync_all())
                .expect("sync dir");
        }
    }

    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        match fs::read(self.path(key)) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => panic!("read: {e}"),
        }
    }

    fn contains(&mut self, key: &str) -> bool {
        fs::metadata(self.path(key)).is_ok()
    }

    fn remove(&mut self, key: &str) {
        let _ = fs::remove_file(self.path(key));
    }
}

impl System for FileStore {
    fn insert(&mut self, key: &str, value: &[u8]) {
        FileStore::insert(self, key, value, Expiry::Never).expect("insert");
    }

    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        FileStore::get(self, key).expect("get")
    }

    fn contains(&mut self, key: &str) -> bool {
        self.contains_key(key).expect("contains")
    }

    fn remove(&mut self, key: &str) {
        FileStore::remove(self, key).expect("remove");
    }
}

impl System for ComponentCache {
    fn insert(&mut self, key: &str, value: &[u8]) {
        ComponentCache::insert(self, key, value, Expiry::Never).expect("insert");
    }

    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        ComponentCache::get(self, key).expect("get")
    }

    fn contains(&mut self, key: &str) -> bool {
        self.contains_key(key).expect("contains")
    }

    fn remove(&mut self, key: &str) {
        ComponentCache::remove(self, key).expect("remove");
    }
}

/// cacache, through its sync API.
pub struct Cacache(PathBuf);

impl System for Cacache {
    fn insert(&mut self, key: &str, value: &[u8]) {
        cacache::write_sync(&self.0, key, value).expect("cacache write");
    }

    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        match cacache::read_sync(&self.0, key) {
            Ok(bytes) => Some(bytes),
            Err(cacache::Error::EntryNotFound(..)) => None,
            Err(e) => panic!("cacache read: {e}"),
        }
    }

    fn contains(&mut self, key: &str) -> bool {
        cacache::metadata_sync(&self.0, key)
            .expect("cacache metadata")
            .is_some()
    }

    fn remove(&mut self, key: &str) {
        cacache::remove_sync(&self.0, key).expect("cacache remove");
    }
}
