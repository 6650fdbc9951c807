//! `filecache-bench`: filecache against the physical floor of its design and its
//! peers, every timing as µs/op and as a ratio to the raw `std::fs` floor
//! measured in the same run. `just bench` runs it.
//!
//! ```text
//! filecache-bench [--quick] [--dir DIR] [--out DIR] [--keys N] [--rounds N] [--no-scale] [--scale-only]
//! ```
//! Results go to `DIR/results.json`, `DIR/results.md` and `DIR/bench.svg`
//! (default `target/bench`). Method, for every value size (100 B, 4 KiB): all
//! insert rounds first (each round and system in a fresh directory, systems
//! interleaved, no deletion before them), then the durable inserts, then the
//! reads (each after an untimed warming pass), then the removes; the median of
//! the rounds is reported. Before each timed insert phase, bare file creates are
//! timed until they are fast (see [`measure`]).

mod measure;
mod order;
mod report;
mod scale;
mod systems;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use filecache_host::precompiled::Loaded;
use filecache_host::{CacheRuntime, HostConfig, artifacts};

use crate::measure::{median, per_op, wait_for_fast_creates};
use crate::report::{Figure, Results};
use crate::systems::Kind;

/// The phases of the main suite, in table order.
pub const PHASES: [&str; 6] = [
    "insert",
    "insert (durable)",
    "get hit",
    "get miss",
    "contains",
    "remove",
];

/// Command-line settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the caches are made.
    pub dir: PathBuf,
    /// Where the results go.
    pub out: PathBuf,
    /// Keys per phase.
    pub keys: usize,
    /// Keys of the durable insert phase (each costs a sync).
    pub durable_keys: usize,
    /// Rounds per phase.
    pub rounds: usize,
    /// Whether to run the scale benchmark (10k → 100k → 1M entries).
    pub scale: bool,
    /// Whether to run only the scale benchmark and the eviction order.
    pub scale_only: bool,
    /// Largest scale.
    pub scale_max: usize,
}

fn settings() -> Result<Settings, String> {
    let mut s = Settings {
        dir: PathBuf::from("target/bench/caches"),
        out: PathBuf::from("target/bench"),
        keys: 10_000,
        durable_keys: 1_000,
        rounds: 5,
        scale: true,
        scale_only: false,
        scale_max: 1_000_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => {
                s.keys = 2_000;
                s.durable_keys = 200;
                s.rounds = 1;
                s.scale_max = 100_000;
            }
            "--dir" => s.dir = PathBuf::from(value()?),
            "--out" => s.out = PathBuf::from(value()?),
            "--keys" => s.keys = value()?.parse().map_err(|e| format!("--keys: {e}"))?,
            "--rounds" => s.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--no-scale" => s.scale = false,
            "--scale-only" => s.scale_only = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(s)
}

fn main() {
    let settings = match settings() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("filecache-bench: {e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(&settings.dir);
    let runtime = CacheRuntime::new(HostConfig::default()).expect("load the component");
    let mut results = Results::new(&settings);
    if !settings.scale_only {
        for size in [100, 4096] {
            eprintln!("bench: {size}-byte values, {} keys", settings.keys);
            suite(&runtime, &settings, size, &mut results);
        }
        eprintln!("bench: fresh instances");
        fresh_instances(&runtime, &settings, &mut results);
        eprintln!("bench: host start and artifacts");
        host_start(&settings, &mut results);
    }
    if settings.scale {
        scale::run(&settings, &mut results);
    }
    eprintln!("bench: eviction order");
    order::run(&settings, &mut results);
    results.elapsed_s = started.elapsed().as_secs_f64();
    // The caches (in RAM under `just bench`) are scratch: gone with the run.
    let _ = std::fs::remove_dir_all(&settings.dir);
    report::write(&settings, &results);
    print!("{}", report::markdown(&results));
    eprintln!("bench: done in {:.0?}", started.elapsed());
}

/// Deterministic values of `size` bytes, one per key.
fn values(count: usize, size: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut value = vec![0u8; size];
            blake3::Hasher::new()
                .update(&(i as u64).to_le_bytes())
                .finalize_xof()
                .fill(&mut value);
            value
        })
        .collect()
}

/// A fixed shuffle of `0..count` (so every system reads in the same order).
fn shuffled(count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for i in (1..count).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// The systems in the order of `round` (rotated, so none is always first).
fn rotated(round: usize) -> Vec<Kind> {
    let mut kinds = Kind::ALL.to_vec();
    let shift = round % kinds.len();
    kinds.rotate_left(shift);
    kinds
}

fn suite(runtime: &CacheRuntime, settings: &Settings, size: usize, results: &mut Results) {
    let keys: Vec<String> = (0..settings.keys)
        .map(|i| format!("bench:key:{i}"))
        .collect();
    let absent: Vec<String> = (0..settings.keys)
        .map(|i| format!("bench:absent:{i}"))
        .collect();
    let values = values(settings.keys, size);
    let order = shuffled(settings.keys);
    let base = settings.dir.join(format!("{size}"));
    let probe = settings.dir.join("probe");
    let dir = |round: usize, kind: Kind, durable: bool| {
        base.join(format!(
            "r{round}-{kind:?}{}",
            if durable { "-durable" } else { "" }
        ))
    };
    let mut samples: BTreeMap<(Kind, &str), Vec<f64>> = BTreeMap::new();
    let mut record = |kind: Kind, phase: &'static str, us: f64| {
        samples.entry((kind, phase)).or_default().push(us);
    };

    for round in 0..settings.rounds {
        for kind in rotated(round) {
            wait_for_fast_creates(&probe, Duration::from_secs(60));
            let mut system = kind.open(runtime, &dir(round, kind, false), false);
            record(
                kind,
                "insert",
                per_op(keys.len(), |i| system.insert(&keys[i], &values[i])),
            );
        }
    }
    for round in 0..settings.rounds {
        for kind in rotated(round).into_iter().filter(|k| k.has_durable_mode()) {
            wait_for_fast_creates(&probe, Duration::from_secs(60));
            let mut system = kind.open(runtime, &dir(round, kind, true), true);
            let n = settings.durable_keys;
            record(
                kind,
                "insert (durable)",
                per_op(n, |i| system.insert(&keys[i], &values[i])),
            );
        }
    }
    for round in 0..settings.rounds {
        for kind in rotated(round) {
            let mut system = kind.open(runtime, &dir(round, kind, false), false);
            for key in &keys {
                assert!(system.get(key).is_some(), "warming {key}");
            }
            record(
                kind,
                "get hit",
                per_op(order.len(), |i| {
                    let k = order[i];
                    let value = system.get(&keys[k]);
                    assert!(
                        value.as_deref() == Some(&values[k][..]),
                        "{kind:?} returned a wrong value"
                    );
                }),
            );
            record(
                kind,
                "get miss",
                per_op(absent.len(), |i| assert!(system.get(&absent[i]).is_none())),
            );
            record(
                kind,
                "contains",
                per_op(order.len(), |i| assert!(system.contains(&keys[order[i]]))),
            );
        }
    }
    for round in 0..settings.rounds {
        for kind in rotated(round) {
            let mut system = kind.open(runtime, &dir(round, kind, false), false);
            record(
                kind,
                "remove",
                per_op(keys.len(), |i| system.remove(&keys[i])),
            );
        }
    }
    for ((kind, phase), times) in samples {
        results.figures.push(Figure {
            group: format!("{size} B"),
            phase: phase.to_owned(),
            system: kind.name().to_owned(),
            us_per_op: median(&times),
            rounds: times,
        });
    }
}

/// The cost of a fresh instance per call: instantiate the pre-instantiated
/// component, open the cache, read one value, drop the instance — against the
/// bare instance, and against the native `FileStore::open` + `get` of the same
/// existing cache, in interleaved rounds.
fn fresh_instances(runtime: &CacheRuntime, settings: &Settings, results: &mut Results) {
    let dir = settings.dir.join("fresh");
    let options = filecache::Options::default();
    runtime
        .open(&dir, &options)
        .and_then(|mut cache| cache.insert("k", b"value", filecache::Expiry::Never))
        .expect("prepare");
    let (mut bare, mut full, mut native) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..settings.rounds.max(3) {
        bare.push(per_op(500, |_| {
            drop(runtime.instantiate(&dir).expect("fresh instance"));
        }));
        full.push(per_op(500, |_| {
            let mut cache = runtime.open(&dir, &options).expect("fresh instance");
            assert!(cache.get("k").expect("get").is_some());
        }));
        native.push(per_op(500, |_| {
            let cache = filecache::FileStore::open(&dir, options.clone()).expect("open");
            assert!(cache.get("k").expect("get").is_some());
        }));
    }
    for (phase, system, times) in [
        (
            "fresh instance (instantiate, preopen, drop)",
            Kind::Component,
            bare,
        ),
        ("fresh instance + open + get", Kind::Component, full),
        ("open + get", Kind::Native, native),
    ] {
        results.figures.push(Figure {
            group: "instances".into(),
            phase: phase.into(),
            system: system.name().into(),
            us_per_op: median(&times),
            rounds: times,
        });
    }
}

/// How long a host process takes to get the component ready: compiling it
/// (cold: an empty precompiled-component directory) against loading the
/// artifact the first start stored (warm), in interleaved rounds; and the size
/// of every component the build ships.
fn host_start(settings: &Settings, results: &mut Results) {
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for round in 0..settings.rounds.max(3) {
        let dir = settings.dir.join(format!("precompiled-{round}"));
        let config = HostConfig {
            precompiled_dir: Some(dir.clone()),
            ..HostConfig::default()
        };
        let started = Instant::now();
        let runtime = CacheRuntime::new(config.clone()).expect("cold start");
        cold.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(matches!(
            runtime.loaded(),
            Loaded::Compiled {
                stored: Some(_),
                ..
            }
        ));
        let started = Instant::now();
        let runtime = CacheRuntime::new(config).expect("warm start");
        warm.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(matches!(runtime.loaded(), Loaded::Precompiled { .. }));
    }
    for (phase, times) in [
        ("host start, cold (compile)", cold),
        ("host start, warm (precompiled)", warm),
    ] {
        results.figures.push(Figure {
            group: "host".into(),
            phase: phase.into(),
            system: Kind::Component.name().into(),
            us_per_op: median(&times),
            rounds: times,
        });
    }
    for (name, path) in [
        ("filecache.wasm", artifacts::CACHE_COMPONENT),
        ("filecache-keyvalue.wasm", artifacts::KEYVALUE_COMPONENT),
        ("filecache-cli.wasm", artifacts::CLI_COMPONENT),
        ("plugin-composed.wasm", artifacts::PLUGIN_COMPOSED),
    ] {
        let bytes = std::fs::metadata(path).map_or(0, |meta| meta.len());
        results.artifacts.push(report::Artifact {
            name: name.into(),
            bytes,
        });
    }
}
