//! `filecache-worker`: one process of the torture tests (`tests/tests/torture.rs`).
//! It opens a cache with one backend — the native crate, or the component in its
//! own wasmtime host — runs a workload on it and prints a one-line JSON report.
//!
//! ```text
//! filecache-worker WORKLOAD --backend native|wasm|jco --dir DIR [--id N] [--ops N]
//!                  [--keys N] [--lease-ms N]
//!   mixed       every operation at random on a small key set; checks every value read
//!   read        reads only, at random on the mixed workload's key set; checks every value
//!   increment   --ops increments of the key `total`
//!   churn       inserts (some of several MiB), increments and adds until killed
//!   fill        --ops inserts of new keys (with --max-entries, into a bounded cache)
//!   full-disk   fills a small file system and checks nothing is lost (exit 1 if so)
//!   read-only   on a read-only mount of a cache prepared by the test (entries
//!               `live`, `expired`, `damaged`): reads work, writes fail clearly
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use filecache::{Expiry, Options};
use filecache_conformance::backends::{Component, Native};
use filecache_conformance::jco::Jco;
use filecache_conformance::values::{check_stamped, stamped};
use filecache_conformance::{Backend, CacheUnderTest, Failure, FailureKind};

/// Counter keys of the mixed workload.
const COUNTERS: [&str; 4] = ["c0", "c1", "c2", "c3"];

struct Args {
    workload: String,
    backend: String,
    dir: PathBuf,
    id: u64,
    ops: u64,
    keys: u64,
    lease_ms: Option<u64>,
    max_entries: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let workload = args.next().ok_or("no workload given")?;
    let mut parsed = Args {
        workload,
        backend: "native".into(),
        dir: PathBuf::new(),
        id: 0,
        ops: 1000,
        keys: 16,
        lease_ms: None,
        max_entries: None,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--backend" => parsed.backend = value.clone(),
            "--dir" => parsed.dir = PathBuf::from(&value),
            "--id" => parsed.id = number()?,
            "--ops" => parsed.ops = number()?,
            "--keys" => parsed.keys = number()?.max(1),
            "--lease-ms" => parsed.lease_ms = Some(number()?),
            "--max-entries" => parsed.max_entries = Some(number()?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if parsed.dir.as_os_str().is_empty() {
        return Err("--dir is required".into());
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("filecache-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match args.backend.as_str() {
        "native" => run(&Native, &args),
        "wasm" => run(&Component, &args),
        "jco" => run(&Jco, &args),
        other => Err(format!("unknown backend {other}")),
    };
    match outcome {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("filecache-worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run<B: Backend>(backend: &B, args: &Args) -> Result<serde_json::Value, String> {
    let mut options = Options::default();
    if let Some(lease) = args.lease_ms {
        options.lease = Duration::from_millis(lease);
    }
    options.max_entries = args.max_entries;
    let mut cache = backend
        .open(&args.dir, &options)
        .map_err(|e| format!("open: {e:?}"))?;
    let mut rng = Rng::new(args.id.wrapping_mul(0x9e37_79b9) ^ 0x5eed);
    match args.workload.as_str() {
        "mixed" => Ok(mixed(&mut cache, args, &mut rng)),
        "read" => Ok(read(&mut cache, args, &mut rng)),
        "increment" => Ok(increments(&mut cache, args)),
        "churn" => churn(&mut cache, args, &mut rng),
        "fill" => Ok(fill(&mut cache, args)),
        "full-disk" => full_disk(&mut cache, &args.dir),
        "read-only" => read_only(&mut cache),
        other => Err(format!("unknown workload {other}")),
    }
}

/// What a workload saw.
#[derive(Default)]
struct Tally {
    ops: u64,
    hits: u64,
    torn: u64,
    errors: u64,
    samples: Vec<String>,
    increments: BTreeMap<String, i64>,
}

impl Tally {
    /// The report of a workload that reads (and perhaps writes) values.
    fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "ops": self.ops,
            "hits": self.hits,
            "torn": self.torn,
            "errors": self.errors,
            "samples": self.samples,
            "increments": self.increments,
        })
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.samples.len() < 5 {
            self.samples.push(what);
        }
    }

    /// Checks a value read from a value key: it must be whole, as some writer wrote it.
    fn check(&mut self, key: &str, value: Option<Vec<u8>>) {
        if let Some(value) = value {
            self.hits += 1;
            if check_stamped(&value).is_none() {
                self.torn += 1;
                self.error(format!(
                    "torn value under {key}: {} bytes starting {:02x?}",
                    value.len(),
                    &value[..value.len().min(16)]
                ));
            }
        }
    }
}

/// Every operation at random on a small key set.
fn mixed<C: CacheUnderTest>(cache: &mut C, args: &Args, rng: &mut Rng) -> serde_json::Value {
    let mut tally = Tally::default();
    let mut seq = 0;
    // Sizes come from their own stream, so drawing one never disturbs the choices.
    let mut value_rng = Rng::new(rng.below(u64::MAX));
    for _ in 0..args.ops {
        tally.ops += 1;
        let key = format!("v{}", rng.below(args.keys));
        let roll = rng.below(100);
        let mut value = || {
            seq += 1;
            stamped(args.id, seq, value_len(&mut value_rng))
        };
        let outcome: Result<(), String> = match roll {
            0..30 => cache
                .get(&key)
                .map(|value| tally.check(&key, value))
                .map_err(|e| format!("get: {e:?}")),
            30..52 => cache
                .insert(&key, &value(), Expiry::Never)
                .map_err(|e| format!("insert: {e:?}")),
            52..58 => cache.remove(&key).map_err(|e| format!("remove: {e:?}")),
            58..64 => cache
                .add(&key, &value(), Expiry::Never)
                .map(drop)
                .map_err(|e| format!("add: {e:?}")),
            64..78 => {
                let counter = COUNTERS[rng.below(COUNTERS.len() as u64) as usize];
                let delta = 1 + rng.below(5) as i64;
                match cache.increment(counter, delta) {
                    Ok(_) => {
                        *tally.increments.entry(counter.to_owned()).or_default() += delta;
                        Ok(())
                    }
                    Err(e) => Err(format!("increment: {e:?}")),
                }
            }
            78..86 => match cache.get(&key) {
                Ok(current) => {
                    tally.check(&key, current.clone());
                    cache
                        .compare_and_swap(&key, current.as_deref(), &value(), Expiry::Never)
                        .map(drop)
                        .map_err(|e| format!("compare-and-swap: {e:?}"))
                }
                Err(e) => Err(format!("get: {e:?}")),
            },
            86..92 => cache
                .touch(&key, Expiry::After(Duration::from_secs(3600)))
                .map(drop)
                .map_err(|e| format!("touch: {e:?}")),
            92..96 => cache
                .contains_key(&key)
                .map(drop)
                .map_err(|e| format!("contains-key: {e:?}")),
            _ => cache
                .insert(&key, &value(), Expiry::After(Duration::from_millis(30)))
                .map_err(|e| format!("insert with ttl: {e:?}")),
        };
        if let Err(e) = outcome {
            tally.error(e);
        }
    }
    tally.report()
}

/// Reads only, at random on the mixed workload's key set.
fn read<C: CacheUnderTest>(cache: &mut C, args: &Args, rng: &mut Rng) -> serde_json::Value {
    let mut tally = Tally::default();
    for _ in 0..args.ops {
        tally.ops += 1;
        let key = format!("v{}", rng.below(args.keys));
        match cache.get(&key) {
            Ok(value) => tally.check(&key, value),
            Err(e) => tally.error(format!("get: {e:?}")),
        }
    }
    tally.report()
}

/// Value sizes from a few bytes to a few hundred KiB.
fn value_len(rng: &mut Rng) -> usize {
    const LENS: [usize; 8] = [24, 40, 100, 500, 4096, 9000, 30_000, 200_000];
    LENS[rng.below(LENS.len() as u64) as usize] + rng.below(64) as usize
}

/// `--ops` increments of one key.
fn increments<C: CacheUnderTest>(cache: &mut C, args: &Args) -> serde_json::Value {
    let mut tally = Tally::default();
    let mut done = 0u64;
    for _ in 0..args.ops {
        tally.ops += 1;
        match cache.increment("total", 1) {
            Ok(_) => done += 1,
            Err(e) => tally.error(format!("increment: {e:?}")),
        }
    }
    serde_json::json!({ "ops": tally.ops, "done": done, "errors": tally.errors, "samples": tally.samples })
}

/// Inserts `--ops` new keys, each 100 bytes.
fn fill<C: CacheUnderTest>(cache: &mut C, args: &Args) -> serde_json::Value {
    let mut tally = Tally::default();
    for i in 0..args.ops {
        tally.ops += 1;
        let value = stamped(args.id, i, 100);
        if let Err(e) = cache.insert(&format!("w{}-{i}", args.id), &value, Expiry::Never) {
            tally.error(format!("insert: {e:?}"));
        }
    }
    let evicted = cache.stats().map_or(0, |stats| stats.evicted);
    serde_json::json!({ "ops": tally.ops, "errors": tally.errors, "samples": tally.samples, "evicted": evicted })
}

/// Writes until killed: large values so that kills land mid-write, increments
/// and adds so that they land while locks are held.
fn churn<C: CacheUnderTest>(
    cache: &mut C,
    args: &Args,
    rng: &mut Rng,
) -> Result<serde_json::Value, String> {
    let mut seq = 0;
    for _ in 0..args.ops {
        let key = format!("v{}", rng.below(args.keys));
        seq += 1;
        let len = match rng.below(10) {
            0..3 => 1_000_000 + rng.below(3_000_000) as usize,
            _ => value_len(rng),
        };
        let outcome = match rng.below(10) {
            0..6 => cache.insert(&key, &stamped(args.id, seq, len), Expiry::Never),
            6..8 => cache
                .increment(COUNTERS[rng.below(4) as usize], 1)
                .map(drop),
            8 => cache
                .add(&key, &stamped(args.id, seq, len), Expiry::Never)
                .map(drop),
            _ => cache.get(&key).map(drop),
        };
        outcome.map_err(|e| format!("churn: {e:?}"))?;
    }
    Ok(serde_json::json!({ "ops": args.ops }))
}

/// Fills the (small) file system under the cache until it is full, and checks
/// that a full disk loses nothing and leaves nothing behind.
fn full_disk<C: CacheUnderTest>(cache: &mut C, dir: &Path) -> Result<serde_json::Value, String> {
    let require = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!("full disk: {what}"))
        }
    };
    let precious = stamped(1, 1, 1000);
    cache
        .insert("precious", &precious, Expiry::Never)
        .map_err(|e| format!("first insert: {e:?}"))?;
    let chunk = stamped(2, 0, 64 * 1024);
    let mut filled = 0;
    let full = loop {
        match cache.insert(&format!("fill{filled}"), &chunk, Expiry::Never) {
            Ok(()) => filled += 1,
            Err(e) => break e,
        }
        if filled > 100_000 {
            return Err("the file system never filled up".into());
        }
    };
    require(
        &format!("the failure is storage-full, not {full:?}"),
        full.kind == FailureKind::StorageFull,
    )?;
    let overwrite = cache.insert("precious", &stamped(3, 3, 512 * 1024), Expiry::Never);
    require(
        &format!("overwriting on a full disk fails: {overwrite:?}"),
        overwrite
            .as_ref()
            .is_err_and(|e| e.kind == FailureKind::StorageFull),
    )?;
    let kept = cache.get("precious").map_err(|e| format!("get: {e:?}"))?;
    require(
        "the previous value survives a failed overwrite",
        kept.as_deref() == Some(&precious[..]),
    )?;
    let increment = cache.increment("counter", 1);
    let leftovers = files_in(dir, "tmp") + files_in(dir, "locks");
    require(
        &format!("no temporary or lock file remains ({leftovers} found)"),
        leftovers == 0,
    )?;
    for i in 0..filled.min(16) {
        cache
            .remove(&format!("fill{i}"))
            .map_err(|e| format!("remove: {e:?}"))?;
    }
    cache
        .insert("after", &chunk, Expiry::Never)
        .map_err(|e| format!("insert after freeing space: {e:?}"))?;
    let after = cache.get("after").map_err(|e| format!("get: {e:?}"))?;
    require(
        "works again once space is freed",
        after.as_deref() == Some(&chunk[..]),
    )?;
    let counter = cache
        .increment("counter", 1)
        .map_err(|e| format!("increment after freeing space: {e:?}"))?;
    Ok(serde_json::json!({
        "filled_entries": filled,
        "failure": full.message,
        "increment_when_full": format!("{increment:?}"),
        "counter_after": counter,
    }))
}

/// On a read-only file system: hits are served, expired and damaged entries
/// are misses (counted), listing and counting work, and every write fails
/// with an I/O error; the report holds each write's message (the test checks
/// they name the read-only file system where the host says so).
fn read_only<C: CacheUnderTest>(cache: &mut C) -> Result<serde_json::Value, String> {
    let check = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!("read-only: {what}"))
        }
    };
    let live = cache.get("live").map_err(|e| format!("get live: {e:?}"))?;
    check(
        "a live entry is a hit",
        live.as_deref() == Some(&b"still here"[..]),
    )?;
    for key in ["expired", "damaged"] {
        let got = cache.get(key).map_err(|e| format!("get {key}: {e:?}"))?;
        check(&format!("`{key}` is a miss"), got.is_none())?;
        let contains = cache
            .contains_key(key)
            .map_err(|e| format!("contains {key}: {e:?}"))?;
        check(&format!("`{key}` is not contained"), !contains)?;
    }
    let page = cache.list_keys(None).map_err(|e| format!("keys: {e:?}"))?;
    check(
        &format!("keys lists the live entry: {:?}", page.keys),
        page.keys == ["live"],
    )?;
    let size = cache.approx_size().map_err(|e| format!("size: {e:?}"))?;
    check(&format!("size counts the files ({size})"), size == 3)?;
    let stats = cache.stats().map_err(|e| format!("stats: {e:?}"))?;
    check(
        &format!("stats count one hit and two misses: {stats:?}"),
        stats.hits == 1 && stats.misses == 2 && stats.expired_removed == 0,
    )?;
    let writes: [(&str, Result<(), Failure>); 5] = [
        ("insert", cache.insert("new", b"v", Expiry::Never)),
        ("insert over", cache.insert("live", b"v", Expiry::Never)),
        ("remove", cache.remove("live")),
        ("increment", cache.increment("n", 1).map(drop)),
        ("clear", cache.clear()),
    ];
    let mut messages = serde_json::Map::new();
    for (what, outcome) in writes {
        let failure = outcome
            .err()
            .ok_or(format!("read-only: {what} succeeded"))?;
        check(
            &format!("{what} fails as an I/O error: {failure:?}"),
            failure.kind == FailureKind::Io,
        )?;
        messages.insert(what.to_owned(), failure.message.into());
    }
    Ok(serde_json::Value::Object(messages))
}

/// Files in a sub-directory of the cache (the worker runs on the host side, so
/// it sees the directory even when the cache runs in a wasm sandbox).
fn files_in(dir: &Path, sub: &str) -> usize {
    std::fs::read_dir(dir.join(sub)).map_or(0, |listing| listing.count())
}

/// xorshift64*: small, fast, deterministic per worker.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}
