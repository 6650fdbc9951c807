//! Worker processes (`tests/src/bin/filecache-worker.rs`) for the tests that
//! run many processes on one cache: starting one, reading its JSON report,
//! and checking what a mixed workload and an increment workload must leave
//! behind. A test passes the worker's path (`env!("CARGO_BIN_EXE_filecache-worker")`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use filecache::{FileStore, Options};

use crate::values::check_stamped;

/// Starts the worker `exe` running `workload` on the cache in `dir`.
pub fn spawn(
    exe: &str,
    workload: &str,
    backend: &str,
    dir: &Path,
    id: usize,
    extra: &[&str],
) -> Child {
    Command::new(exe)
        .arg(workload)
        .args(["--backend", backend, "--id", &id.to_string()])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn filecache-worker")
}

/// Waits for a worker and parses its report; panics with its stderr if it failed.
pub fn report(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().expect("wait for worker");
    assert!(
        out.status.success(),
        "worker failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the worker prints one JSON report")
}

/// The names in `dir` (none if it is missing).
fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |listing| {
            listing
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        },
    )
}

/// How long [`assert_empties`] waits.
const EMPTYING_PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

/// Asserts that `dir` empties within [`EMPTYING_PATIENCE`]: a FUSE file
/// system (sshfs) keeps a file unlinked while open as `.fuse_hidden…` until
/// the exited worker's handle is released, which it learns of asynchronously
/// (later still on a machine stalled by other work).
fn assert_empties(dir: &Path, what: &str) {
    let deadline = std::time::Instant::now() + EMPTYING_PATIENCE;
    loop {
        let names = names_in(dir);
        if names.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} left in {}: {names:?}",
            dir.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// What the mixed workload's workers did together.
#[derive(Debug)]
pub struct MixedSummary {
    /// Operations done.
    pub ops: u64,
    /// Hits, each value checked whole.
    pub hits: u64,
    /// Each counter's total: the sum of every worker's increments.
    pub counters: BTreeMap<String, i64>,
}

/// Checks the reports of mixed-workload workers on the cache in `cache`: no
/// value read torn, no error, every counter the sum of every worker's
/// increments, every value left whole, nothing damaged, no temporary or lock
/// file left.
pub fn check_mixed(reports: &[serde_json::Value], cache: &Path) -> MixedSummary {
    let sum = |field: &str| -> u64 { reports.iter().map(|r| r[field].as_u64().unwrap_or(0)).sum() };
    for r in reports {
        assert_eq!(r["torn"], 0, "a reader saw a torn value: {r}");
        assert_eq!(r["errors"], 0, "unexpected errors: {r}");
    }
    let mut counters: BTreeMap<String, i64> = BTreeMap::new();
    for r in reports {
        if let Some(increments) = r["increments"].as_object() {
            for (key, n) in increments {
                *counters.entry(key.clone()).or_default() += n.as_i64().unwrap_or(0);
            }
        }
    }
    let store = FileStore::open(cache, Options::default()).expect("open");
    for (key, total) in &counters {
        let value = store.get(key).expect("get").expect("counter present");
        assert_eq!(
            String::from_utf8_lossy(&value),
            total.to_string(),
            "counter {key}: the increments of every worker add up"
        );
    }
    for key in 0..16 {
        if let Some(value) = store.get(&format!("v{key}")).expect("get") {
            assert!(check_stamped(&value).is_some(), "v{key} is whole");
        }
    }
    assert_eq!(store.stats().expect("stats").corrupt_removed, 0);
    assert_empties(&cache.join("tmp"), "a temporary file");
    assert_empties(&cache.join("locks"), "a lock file");
    MixedSummary {
        ops: sum("ops"),
        hits: sum("hits"),
        counters,
    }
}

/// Checks the reports of increment workers, `each` increments apiece, on the
/// cache in `cache`: none failed, and the counter `total` is exact.
pub fn check_increments(reports: &[serde_json::Value], cache: &Path, each: u64) -> u64 {
    for r in reports {
        assert_eq!(r["errors"], 0, "{r}");
        assert_eq!(r["done"].as_u64(), Some(each), "{r}");
    }
    let workers = reports.len() as u64;
    let total = workers * each;
    let store = FileStore::open(cache, Options::default()).expect("open");
    assert_eq!(
        store.get("total").expect("get"),
        Some(total.to_string().into_bytes()),
        "{workers} workers × {each} increments"
    );
    total
}
