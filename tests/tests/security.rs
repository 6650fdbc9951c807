//! Security defaults: caches private to their user, and read-only media.
//! (Confinement — links planted inside a cache — is in the conformance suite,
//! `src/cases.rs`, so every backend runs it.)
//!
//! The read-only test mounts a cache directory read-only in a user namespace
//! (`unshare -rm`, as the full-disk torture test does) and runs the
//! `filecache-worker` there, natively and with the component.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use std::time::Duration;

use filecache::{Expiry, FileStore, Options};
use filecache_conformance::jco::Jco;
use filecache_conformance::tools;
use filecache_host::{CacheRuntime, HostConfig};

const WORKER: &str = env!("CARGO_BIN_EXE_filecache-worker");

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every directory and file below `root` (and `root` itself), with its mode.
fn modes_below(root: &Path) -> Vec<(String, bool, u32)> {
    let mut found = vec![(root.display().to_string(), true, mode(root))];
    for entry in fs::read_dir(root).expect("list") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(modes_below(&path));
        } else {
            found.push((path.display().to_string(), false, mode(&path)));
        }
    }
    found
}

/// Checks that every directory found has `dir_mode` and every file `file_mode`.
fn assert_modes(found: &[(String, bool, u32)], dir_mode: u32, file_mode: u32) {
    for (path, is_dir, mode) in found {
        let expected = if *is_dir { dir_mode } else { file_mode };
        assert_eq!(*mode, expected, "{path} is {mode:o}");
    }
}

/// Makes a cache of every kind of file: entries in shards, a lock taken and
/// released (`locks/`), the census of a bounded handle, the tag and stamp.
fn fill_every_kind_of_file(root: &Path, options: &Options) {
    let bounded = Options {
        max_entries: Some(100),
        ..options.clone()
    };
    let cache = FileStore::open(root, bounded).expect("open");
    for i in 0..20 {
        cache
            .insert(&format!("k{i}"), b"value", Expiry::Never)
            .expect("insert");
    }
    cache.increment("n", 1).expect("increment");
    drop(cache);
    assert!(root.join("census-3").is_file(), "the census was written");
    assert!(root.join("locks").is_dir(), "a lock was taken");
}

/// With the default options, everything the cache creates is private to the
/// user — the directories it makes (missing parents of the cache included)
/// `0700`, its files `0600` — whatever the umask lets through (022 here).
#[test]
fn a_new_cache_is_private_to_its_user() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("parent").join("cache");
    fill_every_kind_of_file(&root, &Options::default());
    let found = modes_below(&dir.path().join("parent"));
    assert!(found.len() > 25, "{found:?}");
    assert_modes(&found, 0o700, 0o600);
}

/// `group_shared` opts into a cache for the users of one group: directories
/// `2770` (new files take the directory's group), files `0660`, even under a
/// umask of 022 that would take the group's write permission away.
#[test]
fn a_group_shared_cache_lets_the_group_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("shared");
    let options = Options {
        group_shared: true,
        ..Options::default()
    };
    fill_every_kind_of_file(&root, &options);
    assert_modes(&modes_below(&root), 0o2770, 0o660);
}

/// A component has no file modes to set: `filecache-host` makes the directory
/// it preopens private when it creates it, so whatever modes the host gives
/// the files inside, no other user can reach them.
#[test]
fn the_host_preopens_a_private_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("component-cache");
    let runtime = CacheRuntime::new(HostConfig::default()).expect("runtime");
    let mut cache = runtime.open(&root, &Options::default()).expect("open");
    cache.insert("k", b"v", Expiry::Never).expect("insert");
    assert_eq!(mode(&root), 0o700, "the preopened directory");
}

/// Mounts `$1` read-only on itself (in a namespace of its own).
const BIND_READ_ONLY: &str = r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1""#;

/// A cache shipped on read-only media (a container layer, a read-only mount):
/// hits are served; expired and damaged entries are misses, counted, and
/// left in place; `keys`, `size` and `stats` work; every write fails with an
/// I/O error that names the read-only file system — natively, in the
/// component on jco, and in the component in `filecache-host` (wasmtime-wasi
/// reports `EROFS` as a plain `io` error: the host tells the component its
/// directory is read-only, see `filecache::READ_ONLY_MEDIA_VARIABLE`). Each
/// backend runs in a worker process inside a user namespace.
#[test]
fn a_read_only_cache_serves_what_it_can_and_refuses_writes_clearly() {
    let probe = tempfile::tempdir().expect("temp dir");
    if !tools::namespace_allows(BIND_READ_ONLY, &[probe.path().as_os_str()]) {
        let reason =
            "`unshare -rm` cannot bind-mount a directory read-only here (needs user namespaces)";
        // Where namespaces work, CI requires the full-disk test: this one too.
        tools::skip_unless_required(
            "read-only media test",
            reason,
            "FILECACHE_REQUIRE_FULL_DISK",
        );
        return;
    }
    for backend in ["native", "wasm", "jco"] {
        if backend == "jco"
            && let Some(reason) = filecache_conformance::Backend::skip_reason(&Jco)
        {
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: read-only media on {reason} ***\n"
            );
            continue;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("cache");
        let cache = FileStore::open(&root, Options::default()).expect("open");
        cache
            .insert("live", b"still here", Expiry::Never)
            .expect("insert");
        cache
            .insert("expired", b"gone", Expiry::After(Duration::from_millis(1)))
            .expect("insert");
        cache
            .insert("damaged", b"torn", Expiry::Never)
            .expect("insert");
        let damaged = cache.entry_path("damaged");
        let mut bytes = fs::read(&damaged).expect("read");
        bytes[0] ^= 0xff; // bad magic: damage `contains-key` sees too
        fs::write(&damaged, bytes).expect("damage");
        drop(cache);
        std::thread::sleep(Duration::from_millis(20));
        let before = modes_below(&root);
        let script =
            format!(r#"{BIND_READ_ONLY} && exec "$2" read-only --backend "$3" --dir "$1""#);
        let args = [root.as_os_str(), WORKER.as_ref(), backend.as_ref()];
        let out = tools::in_namespace(&script, &args).expect("run the worker in a namespace");
        tools::expect_success(&out, backend);
        assert_eq!(modes_below(&root), before, "nothing changed on disk");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
        let messages = report.as_object().expect("one message per write");
        let named = messages.values().all(|message| {
            message
                .as_str()
                .is_some_and(|m| m.contains("read-only file system"))
        });
        assert!(
            named,
            "{backend}: every write names the read-only file system: {report}"
        );
        let _ = writeln!(
            std::io::stderr(),
            "read-only ({backend}): insert fails with {}",
            report["insert"]
        );
    }
}
