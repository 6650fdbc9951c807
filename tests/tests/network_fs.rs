//! A cache directory shared over a network file system: two `sshfs` mounts of
//! one directory (a private `sshd` on 127.0.0.1, see `src/sshfs.rs`), worker
//! processes — native, and the component in a host process — split between
//! them as between two machines. The mixed workload
//! reads every value whole and keeps exact counters; increments from both
//! mounts add up exactly. A write replaces an entry that a reader on its mount
//! holds open after the other mount removed it. Writes, removals, evictions
//! and increments next to readers on one mount leave no hidden copy of a file
//! behind, and the sweep reclaims the copies libfuse lost. What this shows, and what other file systems give, is in
//! `docs/network-filesystems.md`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use filecache::{Expiry, FileStore, Options};

use filecache_conformance::sshfs::SshfsShare;
use filecache_conformance::workers::{self, report};

const WORKER: &str = env!("CARGO_BIN_EXE_filecache-worker");
/// Workers per mount: native processes, then one wasm instance (in a host
/// process of its own).
const PER_MOUNT: usize = 3;
const BACKENDS: [&str; PER_MOUNT] = ["native", "native", "wasm"];

fn share() -> Option<SshfsShare> {
    match SshfsShare::start() {
        Ok(share) => Some(share),
        Err(reason) => {
            eprintln!("\n*** SKIPPED: the cache over sshfs: {reason} ***\n");
            None
        }
    }
}

/// The options of an unbounded cache and of one bounded to `max_entries`,
/// each with its name.
fn unbounded_and_bounded(max_entries: u64) -> [(&'static str, Options); 2] {
    let bounded = Options {
        max_entries: Some(max_entries),
        ..Options::default()
    };
    [("unbounded", Options::default()), ("bounded", bounded)]
}

/// Runs `workload` in [`PER_MOUNT`] workers ([`BACKENDS`]) on each mount of the cache `name`.
fn run_on_both(share: &SshfsShare, name: &str, workload: &str, ops: u64) -> Vec<serde_json::Value> {
    let ops = ops.to_string();
    let children: Vec<_> = (0..2 * PER_MOUNT)
        .map(|i| {
            let mount: &Path = share.mounts()[i % 2];
            let extra = ["--ops", ops.as_str()];
            let backend = BACKENDS[i / 2];
            workers::spawn(WORKER, workload, backend, &mount.join(name), i + 1, &extra)
        })
        .collect();
    children.into_iter().map(report).collect()
}

#[test]
fn two_mounts_share_a_cache_under_a_mixed_workload() {
    let Some(share) = share() else { return };
    let reports = run_on_both(&share, "mixed", "mixed", 200);
    let summary = workers::check_mixed(&reports, &share.served().join("mixed"));
    eprintln!(
        "sshfs, 2 mounts × {BACKENDS:?}: {} ops, {} hits checked, 0 torn, 0 errors, counters exact ({:?})",
        summary.ops, summary.hits, summary.counters
    );
}

#[test]
fn increments_through_two_mounts_add_up_exactly() {
    let Some(share) = share() else { return };
    let reports = run_on_both(&share, "counter", "increment", 60);
    let total = workers::check_increments(&reports, &share.served().join("counter"), 60);
    eprintln!("sshfs, 2 mounts × {BACKENDS:?}: {total} increments, exact");
}

/// How long the reader of the first write holds the entry: well within the
/// writer's patience.
const BRIEF_HOLD: Duration = Duration::from_millis(200);

/// On one mount a reader holds an entry open; through the other the entry is
/// removed. sshfs then refuses to replace it until the reader lets go (the
/// file it would hide is gone), so a write waits the reader out — and a write
/// held up longer fails with an error that says why, leaving nothing behind.
/// Both ways of publishing run: replacing (unbounded) and adding only where
/// nothing is there (bounded, natively on Linux).
#[test]
fn a_write_replaces_an_entry_held_here_and_removed_through_the_other_mount() {
    let Some(share) = share() else { return };
    for (kind, options) in unbounded_and_bounded(100) {
        let here = share.mounts()[0].join(kind);
        let writer = FileStore::open(&here, options.clone()).expect("open on mount a");
        let remover =
            FileStore::open(share.mounts()[1].join(kind), options).expect("open on mount b");
        let read = |key| remover.get(key).expect("get through mount b");
        let held_entry = || {
            writer.insert("k", b"old", Expiry::Never).expect("insert");
            let entry = filecache::testing::entry_path(&here, "k");
            let held = File::open(entry).expect("hold the entry");
            remover.remove("k").expect("remove through mount b");
            held
        };

        let held = held_entry();
        let reader = thread::spawn(move || {
            thread::sleep(BRIEF_HOLD);
            drop(held);
        });
        let written = writer.insert("k", b"new", Expiry::Never);
        reader.join().expect("the reader thread");
        if let Err(e) = written {
            panic!("{kind}: the write did not wait for the reader: {e}");
        }
        assert_eq!(read("k").as_deref(), Some(&b"new"[..]), "{kind}");

        let held = held_entry();
        let Err(err) = writer.insert("k", b"newer", Expiry::Never) else {
            panic!("{kind}: a write reported success though its entry was held throughout");
        };
        assert!(err.to_string().contains("held open"), "{kind}: {err}");
        drop(held);
        assert_eq!(read("k"), None, "{kind}: a failed write is not there");
        writer
            .insert("k", b"newest", Expiry::Never)
            .expect("insert");
        assert_eq!(read("k").as_deref(), Some(&b"newest"[..]), "{kind}");
        let staged = fs::read_dir(share.served().join(kind).join("tmp"))
            .expect("list tmp/")
            .count();
        assert_eq!(staged, 0, "{kind}: files left in tmp/");
    }
}

/// The `.fuse_hidden…` files anywhere under `dir`.
fn hidden_copies(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(hidden_copies(&path));
        } else if entry
            .file_name()
            .to_string_lossy()
            .starts_with(".fuse_hidden")
        {
            found.push(path);
        }
    }
    found
}

/// How long hidden copies may take to go once every file is closed: sshfs
/// learns of a close after it returns.
const HIDING_PATIENCE: Duration = Duration::from_secs(20);

/// sshfs hides a file it removes or replaces while a process on its mount
/// holds it open, and deletes the hidden copy at the last close — unless that
/// close lands while the hiding is under way (see the `platform` module docs
/// of `filecache`). Readers close entries just before writers replace or
/// remove them, on one mount: each key has one writer at a time (as a
/// web application's requests for one key mostly do), so every hidden copy
/// must go. Bounded (evicting) and unbounded, with increments (lock files).
#[test]
fn writes_next_to_readers_on_one_mount_leave_no_hidden_copies() {
    let Some(share) = share() else { return };
    for (kind, options) in unbounded_and_bounded(6) {
        let dir = share.mounts()[0].join(format!("hiding-{kind}"));
        let store = Arc::new(FileStore::open(&dir, options).expect("open"));
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let store = Arc::clone(&store);
                thread::spawn(move || {
                    for i in 0..600u64 {
                        let key = format!("k{}", i % 8);
                        match thread {
                            0 if i % 7 == 0 => store.remove(&key).expect("remove"),
                            0 => {
                                let value = format!("value {i}");
                                store
                                    .insert(&key, value.as_bytes(), Expiry::Never)
                                    .expect("insert");
                            }
                            1 => {
                                store.increment("n", 1).expect("increment");
                            }
                            _ => {
                                store.get(&key).expect("get");
                            }
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("a worker thread");
        }
        drop(store);
        assert_no_hidden_copies(&share.served().join(format!("hiding-{kind}")), kind);
    }
}

/// The component cannot ask what file system it is on: it learns it from the
/// sweep stamp, or its own probe (see `filecache`'s `sweep` module), at its
/// first write. On one mount a wasm worker runs the mixed workload (one writer
/// per key, as in the test above) while another reads the same keys just
/// before they are replaced or removed.
#[test]
fn a_wasm_writer_next_to_a_wasm_reader_leaves_no_hidden_copies() {
    let Some(share) = share() else { return };
    let dir = share.mounts()[0].join("hiding-wasm");
    let writer = workers::spawn(WORKER, "mixed", "wasm", &dir, 1, &["--ops", "1500"]);
    let reader = workers::spawn(WORKER, "read", "wasm", &dir, 2, &["--ops", "4000"]);
    let served = share.served().join("hiding-wasm");
    workers::check_mixed(&[report(writer), report(reader)], &served);
    let stamp = fs::read(served.join("swept")).expect("the sweep stamp");
    assert!(
        !stamp.is_empty(),
        "the stamp is marked: sshfs keeps removed open files"
    );
    assert_no_hidden_copies(&served, "wasm");
}

/// Two writers of one key on one mount at the same moment can still leave a
/// hidden copy that libfuse keeps until unmount; the sweep of a cache on FUSE
/// reclaims those older than the lease: in `tmp/` and `locks/` at every
/// sweep, in the shards a sixteenth at a time. Copies are planted on the
/// server's side (as lost ones are: nothing on the mount holds them), and one
/// is held open on the mount: removing it must not cut its reader off.
#[test]
fn the_sweep_reclaims_hidden_copies_libfuse_lost() {
    let Some(share) = share() else { return };
    let mount = share.mounts()[0].join("reclaim");
    let served = share.served().join("reclaim");
    let store = FileStore::open(&mount, Options::default()).expect("open");
    store.insert("k", b"v", Expiry::Never).expect("insert");
    plant_lost_copies(&served);
    let mut held = File::open(mount.join("tmp").join(LOST_IN_TMP)).expect("hold one open");
    let store = FileStore::open(&mount, Options::default()).expect("open");
    store
        .insert("k", b"w", Expiry::Never)
        .expect("insert: the sweep is due");

    let mut read = String::new();
    std::io::Read::read_to_string(&mut held, &mut read).expect("read the held copy");
    assert_eq!(read, "lost in tmp", "a copy held open stays readable");
    drop(held);
    assert_one_sweep_reclaimed(&served);
}

/// The component's sweep reclaims them too (it holds what it removes once
/// the stamp says FUSE).
#[test]
fn a_wasm_sweep_reclaims_hidden_copies_libfuse_lost() {
    let Some(share) = share() else { return };
    let mount = share.mounts()[0].join("reclaim-wasm");
    let served = share.served().join("reclaim-wasm");
    let wasm_writes = |id| {
        report(workers::spawn(
            WORKER,
            "mixed",
            "wasm",
            &mount,
            id,
            &["--ops", "20"],
        ))
    };
    wasm_writes(1);
    plant_lost_copies(&served);
    wasm_writes(2);
    assert_one_sweep_reclaimed(&served);
}

/// The name of the copy [`plant_lost_copies`] plants in `tmp/`.
const LOST_IN_TMP: &str = ".fuse_hidden00000a0000000001";

/// Plants hidden copies an hour old on the server's side of the cache at
/// `served` (whose stamp must be marked already): one in `tmp/`, one in
/// `locks/`, one in each shard; and makes the sweep due.
fn plant_lost_copies(served: &Path) {
    let stamp = fs::read(served.join("swept")).expect("the sweep stamp");
    assert!(
        !stamp.is_empty(),
        "the stamp is marked: sshfs keeps removed open files"
    );
    let plant = |sub: &str, name: &str| {
        fs::create_dir_all(served.join(sub)).expect("directory");
        let path = served.join(sub).join(name);
        fs::write(&path, format!("lost in {sub}")).expect("plant");
        age_by_an_hour(&path);
    };
    plant("tmp", LOST_IN_TMP);
    plant("locks", ".fuse_hidden00000b0000000002");
    for shard in 0..256 {
        plant(
            &format!("{shard:02x}"),
            &format!(".fuse_hidden{shard:016x}"),
        );
    }
    age_by_an_hour(&served.join("swept"));
}

fn age_by_an_hour(path: &Path) {
    File::options()
        .write(true)
        .open(path)
        .and_then(|file| {
            file.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        })
        .expect("age");
}

/// Asserts that one sweep reclaimed the copies [`plant_lost_copies`] planted
/// in `tmp/`, `locks/` and one group of 16 shards, and no more (within
/// [`HIDING_PATIENCE`]: a copy held open goes at its last close).
fn assert_one_sweep_reclaimed(served: &Path) {
    let deadline = Instant::now() + HIDING_PATIENCE;
    let left = || {
        let mut left = hidden_copies(served);
        left.sort();
        left
    };
    let mut now_left = left();
    while now_left.len() > 256 - 16 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        now_left = left();
    }
    let left_in = |sub: &str| {
        now_left
            .iter()
            .any(|path| path.parent() == Some(&served.join(sub)))
    };
    assert!(!left_in("tmp") && !left_in("locks"), "left: {now_left:?}");
    assert_eq!(
        now_left.len(),
        256 - 16,
        "one group of 16 shards reclaimed: {now_left:?}"
    );
}

/// Asserts that no hidden copy is left under `served` once sshfs has learnt
/// of every close (within [`HIDING_PATIENCE`]).
fn assert_no_hidden_copies(served: &Path, kind: &str) {
    let deadline = Instant::now() + HIDING_PATIENCE;
    let mut left = hidden_copies(served);
    while !left.is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        left = hidden_copies(served);
    }
    assert!(
        left.is_empty(),
        "{kind}: {} hidden copies left: {left:?}",
        left.len()
    );
}
