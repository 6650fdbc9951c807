//! Torture tests: many native processes and wasm instances (each in a host
//! process of its own) on one cache directory; writers killed in the middle of
//! their writes; a full disk.
//!
//! `cargo test` runs a short version; `just torture` (`FILECACHE_TORTURE=long`)
//! runs the long one. Each test prints its figures on stderr (`--nocapture`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use filecache::{Expiry, FileStore, Options};
use filecache_conformance::tools;
use filecache_conformance::values::check_stamped;
use filecache_conformance::workers::{self, report};

const WORKER: &str = env!("CARGO_BIN_EXE_filecache-worker");

/// How hard to push.
struct Scale {
    native: usize,
    wasm: usize,
    mixed_ops: u64,
    increments: u64,
    kill_rounds: usize,
    wasm_kill_every: usize,
}

fn scale() -> Scale {
    if std::env::var("FILECACHE_TORTURE").as_deref() == Ok("long") {
        Scale {
            native: 6,
            wasm: 4,
            mixed_ops: 5000,
            increments: 1000,
            kill_rounds: 500,
            wasm_kill_every: 10,
        }
    } else {
        Scale {
            native: 3,
            wasm: 2,
            mixed_ops: 600,
            increments: 200,
            kill_rounds: 120,
            wasm_kill_every: 20,
        }
    }
}

/// A xorshift generator seeded with `seed`: each call gives a number below its argument.
fn random_below(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |bound| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    }
}

/// Held by every test while it runs: shared by most, so that they run side by
/// side; alone by the tests that starve the CPU or kill writers all along, so
/// that no other test's timing (a key's wait after kills) suffers from them.
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The machine shared with the other tests.
fn shared_machine() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The machine to this test alone.
fn machine_alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "torture: {line}");
}

fn spawn(workload: &str, backend: &str, dir: &Path, id: usize, extra: &[&str]) -> Child {
    workers::spawn(WORKER, workload, backend, dir, id, extra)
}

fn files_in(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |listing| listing.count())
}

/// One backend name per worker: `native` processes first, then `wasm` ones.
fn backends(scale: &Scale) -> Vec<&'static str> {
    std::iter::repeat_n("native", scale.native)
        .chain(std::iter::repeat_n("wasm", scale.wasm))
        .collect()
}

#[test]
fn processes_and_instances_share_a_cache_under_a_mixed_workload() {
    let _machine = shared_machine();
    let scale = scale();
    let dir = tempfile::tempdir().expect("temp dir");
    let ops = scale.mixed_ops.to_string();
    let children: Vec<Child> = backends(&scale)
        .iter()
        .enumerate()
        .map(|(id, backend)| spawn("mixed", backend, dir.path(), id + 1, &["--ops", &ops]))
        .collect();
    let reports: Vec<serde_json::Value> = children.into_iter().map(report).collect();
    let summary = workers::check_mixed(&reports, dir.path());
    say(&format!(
        "mixed workload: {} processes + {} wasm instances, {} ops, {} hits checked, 0 torn, 0 errors, counters exact ({:?})",
        scale.native, scale.wasm, summary.ops, summary.hits, summary.counters
    ));
}

#[test]
fn increments_from_every_process_and_instance_add_up_exactly() {
    let _machine = shared_machine();
    let scale = scale();
    let dir = tempfile::tempdir().expect("temp dir");
    let ops = scale.increments.to_string();
    let started = Instant::now();
    let children: Vec<Child> = backends(&scale)
        .iter()
        .enumerate()
        .map(|(id, backend)| spawn("increment", backend, dir.path(), id + 1, &["--ops", &ops]))
        .collect();
    let reports: Vec<serde_json::Value> = children.into_iter().map(report).collect();
    let total = workers::check_increments(&reports, dir.path(), scale.increments);
    say(&format!(
        "increments: {} processes + {} wasm instances × {} = {total}, exact, in {:.1?}",
        scale.native,
        scale.wasm,
        scale.increments,
        started.elapsed()
    ));
}

/// Files the cache must never touch: beside the cache, and foreign files inside it.
fn plant_bystanders(root: &Path, cache: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let shard = cache.join("ab");
    let bystanders = [
        root.join("outside").join("precious.txt"),
        root.join("outside").join("0".repeat(64)),
        cache.join("README.txt"),
        shard.join("notes.txt"),
        cache.join("tmp").join("keep-me.tmp"),
        cache.join("locks").join("keep-me.lock"),
    ];
    bystanders
        .iter()
        .map(|path| {
            fs::create_dir_all(path.parent().expect("parent")).expect("dir");
            let content = format!("bystander {}", path.display()).into_bytes();
            fs::write(path, &content).expect("plant");
            (path.clone(), content)
        })
        .collect()
}

#[test]
fn writers_killed_mid_write_leave_whole_values_and_no_blocked_keys() {
    let _machine = shared_machine();
    const LEASE_MS: u64 = 300;
    let scale = scale();
    let root = tempfile::tempdir().expect("temp dir");
    let cache = root.path().join("cache");
    let bystanders = plant_bystanders(root.path(), &cache);
    let lease = LEASE_MS.to_string();
    let args = [
        "--lease-ms",
        lease.as_str(),
        "--keys",
        "12",
        "--ops",
        "1000000",
    ];
    let mut next = random_below(0x2545_f491);
    let (mut native_kills, mut wasm_kills, mut finished_early) = (0, 0, 0);
    // Temporary and lock files seen right after a kill: proof that kills landed mid-write.
    let mut left_behind = std::collections::BTreeSet::new();
    let started = Instant::now();
    for round in 0..scale.kill_rounds {
        let wasm = round % scale.wasm_kill_every == 0;
        let backend = if wasm { "wasm" } else { "native" };
        let mut children = vec![
            spawn("churn", backend, &cache, 2 * round, &args),
            spawn("churn", "native", &cache, 2 * round + 1, &args),
        ];
        // A wasm worker spends its first few hundred milliseconds compiling.
        let pause = if wasm { 400 + next(600) } else { 3 + next(40) };
        std::thread::sleep(Duration::from_millis(pause));
        for child in &mut children {
            if child.try_wait().expect("poll").is_some() {
                finished_early += 1;
                continue;
            }
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
        if wasm {
            wasm_kills += 1;
            native_kills += 1;
        } else {
            native_kills += 2;
        }
        for sub in ["tmp", "locks"] {
            for entry in fs::read_dir(cache.join(sub))
                .into_iter()
                .flatten()
                .flatten()
            {
                left_behind.insert((sub, entry.file_name()));
            }
        }
    }
    assert_eq!(
        finished_early, 0,
        "every worker was still writing when killed"
    );
    let left_temps = left_behind.iter().filter(|(sub, _)| *sub == "tmp").count() - 1; // minus the bystander
    let left_locks = left_behind.len() - left_temps - 2;
    assert!(
        left_temps > 0,
        "no kill landed in the middle of a write: the test proves nothing"
    );

    // No key stays blocked past the lease: an atomic operation on every key gets through.
    let options = Options {
        lease: Duration::from_millis(LEASE_MS),
        lock_timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let store = FileStore::open(&cache, options.clone()).expect("open");
    let mut longest_wait = Duration::ZERO;
    for counter in ["c0", "c1", "c2", "c3"] {
        let started = Instant::now();
        store
            .increment(counter, 1)
            .expect("the counter is not stuck");
        longest_wait = longest_wait.max(started.elapsed());
    }
    for key in 0..12 {
        let started = Instant::now();
        store
            .touch(&format!("v{key}"), Expiry::Never)
            .expect("the key is not stuck");
        longest_wait = longest_wait.max(started.elapsed());
    }
    assert!(
        longest_wait < Duration::from_millis(LEASE_MS + 700),
        "a key stayed blocked for {longest_wait:?}, past the {LEASE_MS} ms lease"
    );

    // Every key reads a whole value or nothing.
    for key in 0..12 {
        if let Some(value) = store.get(&format!("v{key}")).expect("get") {
            assert!(check_stamped(&value).is_some(), "v{key} is whole");
        }
    }
    for counter in ["c0", "c1", "c2", "c3"] {
        let value = store.get(counter).expect("get").expect("present");
        assert!(
            String::from_utf8_lossy(&value).parse::<i64>().is_ok(),
            "{counter} is an integer"
        );
    }
    assert_eq!(
        store.stats().expect("stats").corrupt_removed,
        0,
        "no torn entry"
    );

    // Leftovers are reclaimed by the first write of a handle once they (and
    // the last sweep) are older than the lease.
    std::thread::sleep(Duration::from_millis(LEASE_MS + 100));
    let writer = FileStore::open(&cache, options).expect("reopen");
    writer
        .insert("after the kills", b"v", Expiry::Never)
        .expect("insert");
    drop(writer);
    assert_eq!(
        files_in(&cache.join("tmp")),
        1,
        "only the bystander is left in tmp/"
    );
    assert_eq!(
        files_in(&cache.join("locks")),
        1,
        "only the bystander is left in locks/"
    );
    for (path, content) in &bystanders {
        assert_eq!(
            fs::read(path).ok().as_ref(),
            Some(content),
            "{} was touched",
            path.display()
        );
    }
    say(&format!(
        "kills: {native_kills} native + {wasm_kills} wasm workers SIGKILLed in {:.1?}; \
         they left {left_temps} temporary and {left_locks} lock files, all reclaimed; \
         longest wait for a key afterwards {longest_wait:.1?}; every value whole",
        started.elapsed()
    ));
}

/// Entry files in the cache, counted straight from the directories.
fn entries_on_disk(cache: &Path) -> usize {
    let Ok(shards) = fs::read_dir(cache) else {
        return 0;
    };
    shards
        .flatten()
        .filter(|shard| shard.file_name().len() == 2)
        .map(|shard| {
            fs::read_dir(shard.path()).map_or(0, |entries| {
                entries
                    .flatten()
                    .filter(|entry| entry.file_name().len() == 64)
                    .count()
            })
        })
        .sum()
}

/// The limit of the bounded-fill tests.
const LIMIT: usize = 2000;

/// The bound the README states for a bounded cache with `writers` handles
/// writing at once: `limit + (P − 1) × (F + 1) + 1` entries, `F` = limit / 256
/// (between 1 and 32), plus the drift a recount leaves alone (3 % of the limit).
fn documented_bound(writers: usize) -> usize {
    let flush_every = (LIMIT / 256).clamp(1, 32);
    LIMIT + (writers - 1) * (flush_every + 1) + 1 + LIMIT * 3 / 100
}

/// One bounded-fill worker per backend of `scale`, each inserting `2 × LIMIT`
/// new keys into the cache at `dir` limited to `LIMIT`.
fn spawn_bounded_fill(scale: &Scale, dir: &Path) -> Vec<Child> {
    let ops = (2 * LIMIT).to_string();
    let limit = LIMIT.to_string();
    backends(scale)
        .iter()
        .enumerate()
        .map(|(id, backend)| {
            spawn(
                "fill",
                backend,
                dir,
                id + 1,
                &["--ops", &ops, "--max-entries", &limit],
            )
        })
        .collect()
}

/// The most entry files the cache at `dir` held, counted every 5 ms until `done`.
fn peak_entries_until(dir: &Path, done: &std::sync::atomic::AtomicBool) -> usize {
    let mut peak = 0;
    while !done.load(std::sync::atomic::Ordering::Acquire) {
        peak = peak.max(entries_on_disk(dir));
        std::thread::sleep(Duration::from_millis(5));
    }
    peak.max(entries_on_disk(dir))
}

/// What the workers of a bounded fill run under, besides each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conditions {
    /// Nothing else.
    Quiet,
    /// A busy thread per CPU competing with them, and one worker at a time
    /// stopped (`SIGSTOP`) for 20–200 ms, every 10–40 ms: handles that run
    /// slowly and stall mid-write, mid-flush or holding the census lock.
    StarvedAndPaused,
}

/// Every process and instance inserts `2 × LIMIT` new keys into one cache
/// limited to `LIMIT`, while a monitor counts the entry files every 5 ms; the
/// peak must stay within the documented bound, and afterwards the shared count
/// must agree with the disk.
fn fill_a_bounded_cache(scale: &Scale, label: &str, conditions: Conditions) {
    let dir = tempfile::tempdir().expect("temp dir");
    let done = std::sync::atomic::AtomicBool::new(false);
    let children = spawn_bounded_fill(scale, dir.path());
    // The workers not yet reaped, which alone may be stopped: a pause holds
    // the lock from `SIGSTOP` to `SIGCONT`.
    let running = std::sync::Mutex::new(children.iter().map(|c| Some(c.id())).collect());
    let (peak, reports, pauses) = std::thread::scope(|scope| {
        let monitor = scope.spawn(|| peak_entries_until(dir.path(), &done));
        let pauser = (conditions == Conditions::StarvedAndPaused).then(|| {
            for _ in 0..std::thread::available_parallelism().map_or(2, usize::from) {
                scope.spawn(|| {
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        std::hint::black_box(());
                    }
                });
            }
            scope.spawn(|| pause_workers_until(&done, &running))
        });
        let reports: Vec<serde_json::Value> = children
            .into_iter()
            .enumerate()
            .map(|(i, child)| {
                running.lock().expect("workers")[i] = None;
                report(child)
            })
            .collect();
        done.store(true, std::sync::atomic::Ordering::Release);
        let pauses = pauser.map_or(0, |pauser| pauser.join().expect("pauser"));
        (monitor.join().expect("monitor"), reports, pauses)
    });
    for r in &reports {
        assert_eq!(r["errors"], 0, "{r}");
    }
    let workers = scale.native + scale.wasm;
    let inserted = workers * 2 * LIMIT;
    let last = entries_on_disk(dir.path());
    let bound = documented_bound(workers);
    assert!(
        peak <= bound,
        "{label}: peak {peak} entries for a limit of {LIMIT} ({workers} writers; bound {bound})"
    );
    assert!(
        last <= bound,
        "{label}: after the writers stop: {last} entries"
    );
    // Every handle reported its changes when it closed, so the shared count
    // agrees with the disk, within the drift a recount leaves alone.
    let census = filecache::testing::census(dir.path()).expect("a whole census file");
    assert!(
        census.entries.abs_diff(last as i64) <= (LIMIT * 3 / 100) as u64,
        "{label}: the census counts {} entries, the disk holds {last}",
        census.entries
    );
    let paused = if pauses > 0 {
        format!(", {pauses} pauses")
    } else {
        String::new()
    };
    say(&format!(
        "bounded fill ({label}): {} processes + {} wasm instances inserted {inserted} new keys into a cache limited to {LIMIT}: peak {peak} ({:+.1}%, bound {bound}), final {last}, census {}{paused}",
        scale.native,
        scale.wasm,
        (peak as f64 / LIMIT as f64 - 1.0) * 100.0,
        census.entries
    ));
}

/// Writes after which a bounded handle has corrected a drift of the shared
/// count: two recount passes that agree (a pass starts every 2 048 writes in
/// a cache this small, and lists the cache in a few hundred more), with room
/// to spare.
const RECOVERY_WRITES: usize = 8_000;

/// The bounded fill while writers are killed: every worker writes to the end,
/// and meanwhile a further writer at a time is started and `SIGKILL`ed after
/// 50–300 ms, before it can report what it wrote (40 of them; 166 with
/// `FILECACHE_TORTURE=long`). What a killed handle wrote and never reported
/// was reserved in the shared count, so the cache stays within the bound.
/// Its reservation over-counts what it did not use; once a lease old it is
/// counted as entries, and one bounded handle writing alone then corrects
/// the excess by its recounts: the cache fills up to its limit again.
#[test]
fn a_bounded_cache_with_killed_writers_stays_within_its_bound_and_its_count_heals() {
    let _machine = machine_alone();
    let scale = scale();
    let dir = tempfile::tempdir().expect("temp dir");
    let limit = LIMIT.to_string();
    let bounded = ["--max-entries", limit.as_str()];
    let children = spawn_bounded_fill(&scale, dir.path());
    let done = std::sync::atomic::AtomicBool::new(false);
    let (peak, kills) = std::thread::scope(|scope| {
        let monitor = scope.spawn(|| peak_entries_until(dir.path(), &done));
        let killer = scope.spawn(|| {
            let mut next = random_below(0x5851_f42d);
            let mut kills = 0;
            while kills < scale.kill_rounds / 3 && !done.load(std::sync::atomic::Ordering::Acquire)
            {
                let endless = [&["--ops", "1000000"][..], &bounded].concat();
                let mut child = spawn("fill", "native", dir.path(), 1000 + kills, &endless);
                std::thread::sleep(Duration::from_millis(50 + next(250)));
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                kills += 1;
            }
            kills
        });
        for child in children {
            let r = report(child);
            assert_eq!(r["errors"], 0, "{r}");
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        (
            monitor.join().expect("monitor"),
            killer.join().expect("killer"),
        )
    });
    let writers = scale.native + scale.wasm + 1;
    let bound = documented_bound(writers);
    let after_kills = entries_on_disk(dir.path());
    assert!(
        peak <= bound,
        "peak {peak} entries with {kills} writers killed (bound {bound})"
    );
    // A census lock or a reservation the last killed writer left is a second
    // old, so taken for abandoned by the recovering handle's first flush.
    std::thread::sleep(Duration::from_millis(1100));
    let recovery = RECOVERY_WRITES.to_string();
    let recovering = ["--ops", &recovery, "--lease-ms", "1000"];
    let r = report(spawn(
        "fill",
        "native",
        dir.path(),
        999,
        &[&recovering[..], &bounded].concat(),
    ));
    assert_eq!(r["errors"], 0, "{r}");
    let recovered = entries_on_disk(dir.path());
    let healed = LIMIT - LIMIT * 3 / 100 - (LIMIT / 256).clamp(1, 32);
    assert!(
        (healed..=documented_bound(1)).contains(&recovered),
        "{recovered} entries after one handle wrote {RECOVERY_WRITES} (expected {healed} to {})",
        documented_bound(1)
    );
    say(&format!(
        "killed writers: {} processes + {} wasm instances filled a cache limited to {LIMIT} while {kills} more writers were killed: peak {peak} ({:+.1}%; bound {bound}), {after_kills} after; one handle writing {RECOVERY_WRITES} brought it to {recovered} (bound {})",
        scale.native,
        scale.wasm,
        (peak as f64 / LIMIT as f64 - 1.0) * 100.0,
        documented_bound(1)
    ));
}

/// Until `done`, stops one of the `running` workers (`SIGSTOP`) for 20–200 ms
/// every 10–40 ms, and continues it; how many pauses it made.
fn pause_workers_until(
    done: &std::sync::atomic::AtomicBool,
    running: &std::sync::Mutex<Vec<Option<u32>>>,
) -> usize {
    let mut next = random_below(0x9e37_79b9);
    let signal = |name: &str, pid: u32| {
        let sent = Command::new("kill")
            .args([name, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        // A worker may exit between the pick and the signal; one still running
        // must take it.
        sent || name == "-STOP"
    };
    let mut pauses = 0;
    while !done.load(std::sync::atomic::Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(10 + next(30)));
        let running = running.lock().expect("workers");
        let pids: Vec<u32> = running.iter().flatten().copied().collect();
        let Some(&pid) = pids.get(usize::try_from(next(pids.len().max(1) as u64)).unwrap_or(0))
        else {
            continue;
        };
        if signal("-STOP", pid) {
            pauses += 1;
            std::thread::sleep(Duration::from_millis(20 + next(180)));
            assert!(signal("-CONT", pid), "could not continue worker {pid}");
        }
    }
    pauses
}

#[test]
fn a_bounded_cache_filled_by_every_process_and_instance_stays_near_its_limit() {
    let _machine = shared_machine();
    fill_a_bounded_cache(&scale(), "warm", Conditions::Quiet);
}

/// The bounded fill with the CPU starved and workers stopped mid-run: the
/// bound holds for handles that run slowly and stall anywhere (for less than
/// the lease).
#[test]
fn a_bounded_cache_filled_by_starved_and_paused_writers_stays_within_its_bound() {
    let _machine = machine_alone();
    fill_a_bounded_cache(&scale(), "starved, paused", Conditions::StarvedAndPaused);
}

/// Drops the page cache (`/proc/sys/vm/drop_caches`), so that the workers
/// start as on a machine that just booted: binaries, the component and the
/// cache's files come from the disk, and the first processes run slowly while
/// the others start. Whether it could.
fn drop_page_cache() -> bool {
    Command::new("sync").status().is_ok_and(|s| s.success())
        && fs::write("/proc/sys/vm/drop_caches", b"3").is_ok()
}

/// The bounded fill from a cold start: the same bound must hold when the
/// workers start late and run slowly.
#[test]
fn a_bounded_cache_filled_from_a_cold_start_stays_within_its_bound() {
    let _machine = shared_machine();
    if !drop_page_cache() {
        let reason =
            "cannot drop the page cache here (needs root and a writable /proc/sys/vm/drop_caches)";
        if std::env::var_os("FILECACHE_REQUIRE_COLD").is_some() {
            panic!("FILECACHE_REQUIRE_COLD is set but {reason}");
        }
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: cold-start bounded fill: {reason} ***\n"
        );
        return;
    }
    fill_a_bounded_cache(&scale(), "cold", Conditions::Quiet);
}

#[test]
fn a_full_disk_fails_clearly_and_loses_nothing() {
    let _machine = shared_machine();
    if !tools::namespace_allows("mount -t tmpfs -o size=64k tmpfs /mnt", &[]) {
        let reason = "`unshare -rm` cannot mount a small tmpfs here (needs user namespaces)";
        tools::skip_unless_required(
            "full-disk torture test",
            reason,
            "FILECACHE_REQUIRE_FULL_DISK",
        );
        return;
    }
    for backend in ["native", "wasm"] {
        let mount = tempfile::tempdir().expect("mount point");
        let script = r#"mount -t tmpfs -o size=4m tmpfs "$1" && exec "$2" full-disk --backend "$3" --dir "$1/cache""#;
        let args = [mount.path().as_os_str(), WORKER.as_ref(), backend.as_ref()];
        let out = tools::in_namespace(script, &args).expect("run the worker in a namespace");
        tools::expect_success(&out, backend);
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
        say(&format!(
            "full disk ({backend}): 4 MiB tmpfs filled with {} entries; then {}",
            r["filled_entries"], r["failure"]
        ));
    }
}
