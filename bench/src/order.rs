//! Eviction order: how closely a bounded cache follows least-recently-used.
//!
//! A cache limited to [`ENTRIES`] entries is filled with `k0`…; after a pause
//! (so that reads move the entries' last use), the first tenth is read; then
//! half as many new keys are inserted, each evicting one entry. Exact LRU
//! evicts the oldest unread entries: all of the older unread half, 250 of the
//! newer half (11 %), no read and no new entry. Two cases: the evicting handle
//! wrote and read the entries itself, or other handles did (it then learns
//! them from its sweep).

use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use filecache::{Expiry, FileStore, Options};
use serde::Serialize;

use crate::Settings;
use crate::report::Results;

/// Entries of the cache (its limit).
const ENTRIES: usize = 5_000;

/// What survived one case.
#[derive(Debug, Clone, Serialize)]
pub struct Survival {
    /// Who wrote and read the entries.
    pub case: String,
    /// Read entries kept, percent.
    pub read_kept: f64,
    /// The older half of the unread entries evicted, percent.
    pub older_unread_evicted: f64,
    /// The newer half of the unread entries evicted, percent.
    pub newer_unread_evicted: f64,
    /// New entries kept, percent.
    pub new_kept: f64,
}

fn limited(limit: usize) -> Options {
    Options {
        max_entries: Some(limit as u64),
        ..Options::default()
    }
}

/// Runs both cases.
pub fn run(settings: &Settings, results: &mut Results) {
    let base = settings.dir.join("order");
    for (case, by_others) in [
        ("the evicting handle wrote and read them", false),
        ("other handles wrote and read them", true),
    ] {
        let dir = base.join(if by_others { "others" } else { "own" });
        results.order.push(survival(&dir, case, by_others));
    }
}

fn survival(dir: &Path, case: &str, by_others: bool) -> Survival {
    let value = [b'.'; 100];
    let read = ENTRIES / 10;
    let added = ENTRIES / 2;
    let key = |i: usize| format!("k{i}");
    let evicting = |dir: &Path| FileStore::open(dir, limited(ENTRIES)).expect("open");
    let mut store = if by_others {
        // Unbounded: it does not evict. A reader must be bounded to mark use.
        FileStore::open(dir, Options::default()).expect("open")
    } else {
        evicting(dir)
    };
    for i in 0..ENTRIES {
        store
            .insert(&key(i), &value, Expiry::Never)
            .expect("insert");
    }
    sleep(filecache::testing::TOUCH_INTERVAL + Duration::from_millis(50));
    if by_others {
        store = FileStore::open(dir, limited(10 * ENTRIES)).expect("open reader");
    }
    for i in 0..read {
        assert!(store.get(&key(i)).expect("get").is_some());
    }
    if by_others {
        store = evicting(dir);
    }
    for i in 0..added {
        store
            .insert(&format!("new{i}"), &value, Expiry::Never)
            .expect("insert");
    }
    let kept = |keys: &mut dyn Iterator<Item = String>| {
        let (mut total, mut kept) = (0, 0);
        for key in keys {
            total += 1;
            kept += usize::from(store.contains_key(&key).expect("contains"));
        }
        100.0 * kept as f64 / total as f64
    };
    let middle = read + (ENTRIES - read) / 2;
    let survival = Survival {
        case: case.into(),
        read_kept: kept(&mut (0..read).map(key)),
        older_unread_evicted: 100.0 - kept(&mut (read..middle).map(key)),
        newer_unread_evicted: 100.0 - kept(&mut (middle..ENTRIES).map(key)),
        new_kept: kept(&mut (0..added).map(|i| format!("new{i}"))),
    };
    eprintln!("bench: eviction order, {case}: {survival:?}");
    survival
}
