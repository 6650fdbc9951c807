//! The scale benchmark: costs at 10k, 100k and 1M entries (100-byte values),
//! insert at capacity (evicting) against insert below capacity — by a fresh
//! handle, and by one whose sweep has gone over the cache — and `clear`
//! against `rm -rf` of an identical tree.
//!
//! Order, so that deletions (which slow the next creates down on ext4 for
//! minutes) come late: populate every tree; then the reads, the approximate
//! size and the unbounded inserts (reads and inserts in rounds interleaved
//! over the scales; every insert round but the last removes its keys again,
//! so each scale's rounds after the first follow deletions alike); then the
//! bounded inserts, below
//! and at capacity (each evicts one entry) in interleaved rounds, then at
//! capacity again once the evicting handle has swept the cache; then `clear`,
//! and `rm -rf` of the copy.
//!
//! The floor of an evicting insert is an unbounded insert and one `unlink`,
//! timed two ways: of a file written just before its round (beside the cache,
//! as the evicting handle would find them gone in it), and of an old file —
//! one of a tree shaped like a cache's (256 shard directories of entry-sized
//! files), written before everything else — which is what an eviction
//! unlinks: an entry nobody touched for a long time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use filecache::{Expiry, FileStore, Options};

use crate::Settings;
use crate::measure::{median, per_op, wait_for_fast_creates};
use crate::report::{Figure, Results};

/// Operations timed per phase.
const SAMPLE: usize = 10_000;
/// Rounds of unbounded inserts, interleaved over the scales.
const INSERT_ROUNDS: usize = 3;
/// Untimed inserts into a bounded cache before its inserts at capacity are timed.
const WARM_UP: usize = 5_000;
/// Rounds of bounded inserts below and at capacity, interleaved.
const BOUNDED_ROUNDS: usize = 7;
/// Inserts per round and kind.
const BOUNDED_CHUNK: usize = 2_000;
/// Untimed evicting inserts, per entry of the cache, that take the evicting
/// handle's sweep over the whole cache (numerator, denominator): it goes over
/// two names per eviction until it has, and the cache holds its new entries too.
const SWEPT_AFTER_PER_ENTRY: (usize, usize) = (3, 4);
/// The scale whose tree is also removed with `rm -rf`, for comparison.
const RM_SCALE: usize = 100_000;

fn key(i: usize) -> String {
    format!("scale:key:{i}")
}

fn value(i: usize) -> Vec<u8> {
    let mut value = format!("value {i} ").into_bytes();
    value.resize(100, b'.');
    value
}

/// Fills a cache with `count` entries; returns µs per insert.
fn populate(dir: &Path, count: usize) -> f64 {
    let store = FileStore::open(dir, Options::default()).expect("open");
    per_op(count, |i| {
        store
            .insert(&key(i), &value(i), Expiry::Never)
            .expect("insert");
    })
}

/// Spreads `SAMPLE` indexes over `0..count`.
fn sample(count: usize) -> Vec<usize> {
    (0..SAMPLE).map(|i| (i * 7919) % count).collect()
}

pub fn run(settings: &Settings, results: &mut Results) {
    let scales: Vec<usize> = [10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|&n| n <= settings.scale_max)
        .collect();
    let base = settings.dir.join("scale");
    let probe = settings.dir.join("probe");
    let dir = |n: usize| base.join(format!("n{n}"));
    let copy = base.join(format!("n{RM_SCALE}-copy"));
    let mut figure = |scale: String, phase: &str, us: f64, rounds: Vec<f64>| {
        results.figures.push(Figure {
            group: "scale".into(),
            phase: phase.into(),
            system: scale,
            us_per_op: us,
            rounds,
        });
    };

    wait_for_fast_creates(&probe, Duration::from_secs(60));
    let old_victims = |n: usize| base.join(format!("n{n}-old-victims"));
    let mut victims: Vec<OldVictims> = scales
        .iter()
        .map(|&n| {
            eprintln!("bench: scale: writing old files for the floor at {n} entries");
            OldVictims::write(&old_victims(n), old_victims_needed(n + SAMPLE))
        })
        .collect();
    for &n in &scales {
        eprintln!("bench: scale: populating {n} entries");
        let us = populate(&dir(n), n);
        figure(label(n), "populate", us, vec![us]);
    }
    if scales.contains(&RM_SCALE) {
        populate(&copy, RM_SCALE);
    }
    // Reads: three rounds, interleaved over the scales, the median kept.
    let mut reads: Vec<(usize, &str, Vec<f64>)> = Vec::new();
    let mut record = |n: usize, phase: &'static str, us: f64| match reads
        .iter_mut()
        .find(|(m, p, _)| *m == n && *p == phase)
    {
        Some((_, _, times)) => times.push(us),
        None => reads.push((n, phase, vec![us])),
    };
    for _ in 0..3 {
        for &n in &scales {
            let store = FileStore::open(dir(n), Options::default()).expect("open");
            let picks = sample(n);
            for &i in &picks {
                store.get(&key(i)).expect("warm");
            }
            record(
                n,
                "get hit",
                per_op(picks.len(), |j| {
                    let i = picks[j];
                    assert_eq!(store.get(&key(i)).expect("get"), Some(value(i)));
                }),
            );
            record(
                n,
                "get miss",
                per_op(SAMPLE, |j| {
                    assert!(
                        store
                            .get(&format!("scale:absent:{j}"))
                            .expect("get")
                            .is_none()
                    );
                }),
            );
        }
    }
    for (n, phase, times) in reads {
        figure(label(n), phase, median(&times), times);
    }
    for &n in &scales {
        let store = FileStore::open(dir(n), Options::default()).expect("open");
        let us = per_op(3, |_| {
            store.approx_size().expect("size");
        });
        figure(label(n), "approx-size (whole scan)", us, vec![us]);
    }
    // Inserts: three rounds, interleaved over the scales, the median kept.
    // Each round but the last removes its keys again (untimed), so that every
    // tree ends with `SAMPLE` entries more, as the bounded rounds expect.
    let mut inserts: Vec<Vec<f64>> = vec![Vec::new(); scales.len()];
    for round in 0..INSERT_ROUNDS {
        for (times, &n) in inserts.iter_mut().zip(&scales) {
            let store = FileStore::open(dir(n), Options::default()).expect("open");
            times.push(per_op(SAMPLE, |j| {
                store
                    .insert(&key(n + j), &value(j), Expiry::Never)
                    .expect("insert");
            }));
            if round + 1 < INSERT_ROUNDS {
                for j in 0..SAMPLE {
                    store.remove(&key(n + j)).expect("remove");
                }
            }
        }
    }
    for (times, &n) in inserts.into_iter().zip(&scales) {
        figure(label(n), "insert", median(&times), times);
    }
    for &n in &scales {
        let bounded = Options {
            max_entries: Some(10 * n as u64),
            ..Options::default()
        };
        let bounded = FileStore::open(dir(n), bounded).expect("open bounded");
        let us = per_op(1000, |_| {
            bounded.approx_size().expect("size");
        });
        figure(
            label(n),
            "approx-size (census, bounded handle)",
            us,
            vec![us],
        );
    }
    for (&n, victims) in scales.iter().zip(victims.iter_mut()) {
        let rounds = bounded_inserts(&dir(n), n + SAMPLE, victims);
        let _ = std::fs::remove_dir_all(old_victims(n));
        // Means, not medians: the cost of a bounded write is amortized (a
        // recount pass lists thousands of names over some writes and none over
        // others), so that the rounds of one kind spread widely.
        for (phase, times) in [
            ("insert, unbounded (same rounds)", rounds.unbounded),
            ("insert, bounded, below capacity", rounds.below),
            ("insert, bounded, at capacity (evicting)", rounds.at),
            (FLOOR, rounds.floor),
            (OLD_FLOOR, rounds.old_floor),
            (
                "insert, bounded, at capacity (evicting), swept handle",
                rounds.at_swept,
            ),
            (FLOOR_SWEPT, rounds.floor_swept),
            (OLD_FLOOR_SWEPT, rounds.old_floor_swept),
        ] {
            figure(label(n), phase, mean(&times), times);
        }
    }
    for &n in &scales {
        let store = FileStore::open(dir(n), Options::default()).expect("open");
        let entries = store.approx_size().expect("size").max(1);
        let started = Instant::now();
        store.clear().expect("clear");
        let us = started.elapsed().as_secs_f64() * 1e6 / entries as f64;
        figure(label(n), "clear (per entry)", us, vec![us]);
        if n == RM_SCALE {
            let rm_us = rm_rf(&copy, RM_SCALE);
            figure(
                label(n),
                "rm -rf of the same tree (per entry)",
                rm_us,
                vec![rm_us],
            );
        }
    }
}

/// The floor of an evicting insert, unlinking a file written just before.
pub(crate) const FLOOR: &str =
    "floor of an evicting insert (unbounded insert + unlink of a just-written file)";
/// The floor of an evicting insert, unlinking an old file.
pub(crate) const OLD_FLOOR: &str =
    "floor of an evicting insert (unbounded insert + unlink of an old file)";
/// [`FLOOR`], in the swept handle's rounds.
pub(crate) const FLOOR_SWEPT: &str = "floor, just-written file (same rounds as the swept handle)";
/// [`OLD_FLOOR`], in the swept handle's rounds.
pub(crate) const OLD_FLOOR_SWEPT: &str = "floor, old file (same rounds as the swept handle)";

/// The kinds of insert the bounded rounds time.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Unbounded,
    Below,
    At,
    /// Unbounded insert + unlink of a file written just before the round.
    Floor,
    /// Unbounded insert + unlink of an old file ([`OldVictims`]).
    OldFloor,
}

/// Files for the old-file floor's unlinks: written before the caches are
/// populated, in 256 directories as a cache's entries are (consecutive files
/// in different directories, as consecutive victims of an eviction are).
struct OldVictims {
    paths: Vec<PathBuf>,
    next: usize,
}

impl OldVictims {
    /// Writes `count` files of an entry's size in the tree `tree`.
    fn write(tree: &Path, count: usize) -> Self {
        let shards: Vec<PathBuf> = (0..=u8::MAX)
            .map(|shard| tree.join(format!("{shard:02x}")))
            .collect();
        for shard in &shards {
            std::fs::create_dir_all(shard).expect("old victims dir");
        }
        let paths = (0..count)
            .map(|i| {
                let path = shards[i % shards.len()].join(format!("{i:064x}"));
                std::fs::write(&path, [b'.'; VICTIM_LEN]).expect("write an old victim");
                path
            })
            .collect();
        Self { paths, next: 0 }
    }

    /// The next `count` files, not unlinked yet.
    fn take(&mut self, count: usize) -> &[PathBuf] {
        let first = self.next;
        self.next += count;
        &self.paths[first..self.next]
    }
}

/// The size of a victim file: an entry of a 100-byte value and its key.
const VICTIM_LEN: usize = 170;

/// Inserts per round of the swept handle's rounds, in a cache of `entries`:
/// together they span a recount cycle (a pass every `entries / 2` writes at
/// capacity), so that their mean carries one pass's listings.
fn swept_chunk(entries: usize) -> usize {
    (entries / 2).div_ceil(BOUNDED_ROUNDS).max(BOUNDED_CHUNK)
}

/// Old files the old-file floor unlinks in a cache of `entries`.
fn old_victims_needed(entries: usize) -> usize {
    BOUNDED_ROUNDS * (BOUNDED_CHUNK + swept_chunk(entries))
}

/// µs per insert of each round, by kind: first while the evicting handle is
/// fresh (its sweep has not gone over the cache yet), then once it has.
#[derive(Debug, Default)]
struct BoundedRounds {
    unbounded: Vec<f64>,
    below: Vec<f64>,
    at: Vec<f64>,
    floor: Vec<f64>,
    old_floor: Vec<f64>,
    at_swept: Vec<f64>,
    floor_swept: Vec<f64>,
    old_floor_swept: Vec<f64>,
}

impl BoundedRounds {
    /// Adds a round of `kind` (`swept`: after the evicting handle's sweep).
    fn push(&mut self, kind: Kind, swept: bool, us: f64) {
        let row = match (kind, swept) {
            (Kind::Unbounded, _) => &mut self.unbounded,
            (Kind::Below, _) => &mut self.below,
            (Kind::At, false) => &mut self.at,
            (Kind::Floor, false) => &mut self.floor,
            (Kind::OldFloor, false) => &mut self.old_floor,
            (Kind::At, true) => &mut self.at_swept,
            (Kind::Floor, true) => &mut self.floor_swept,
            (Kind::OldFloor, true) => &mut self.old_floor_swept,
        };
        row.push(us);
    }
}

/// The handles and files the bounded rounds use.
struct BoundedHandles<'v> {
    unbounded: FileStore,
    below: FileStore,
    at: FileStore,
    /// Where the floor's unlinks find their files, the size of an entry:
    /// beside the cache (not in it: the evicting handle would find them gone).
    victims_dir: PathBuf,
    /// Victim files made so far.
    victims_made: usize,
    old_victims: &'v mut OldVictims,
}

impl BoundedHandles<'_> {
    /// Times one round of `kind`'s inserts of `keys`; µs per insert. Each
    /// kind's new keys but the evicting ones are removed again (untimed).
    fn round(&mut self, kind: Kind, keys: &[usize]) -> f64 {
        match kind {
            Kind::Unbounded => inserts_removed_after(&self.unbounded, "unbounded", keys),
            Kind::Below => inserts_removed_after(&self.below, "below", keys),
            Kind::At => per_op(keys.len(), |j| {
                self.at
                    .insert(&fresh_key("at", keys[j]), &value(j), Expiry::Never)
                    .expect("insert");
            }),
            Kind::Floor => {
                let victims = self.make_victims(keys.len());
                floor_round(&self.unbounded, keys, &victims)
            }
            Kind::OldFloor => floor_round(&self.unbounded, keys, self.old_victims.take(keys.len())),
        }
    }

    /// Writes `count` victim files for the floor's unlinks (untimed).
    fn make_victims(&mut self, count: usize) -> Vec<PathBuf> {
        let first = self.victims_made;
        self.victims_made += count;
        (first..self.victims_made)
            .map(|i| {
                let path = self.victims_dir.join(format!("{i:064x}"));
                std::fs::write(&path, [b'.'; VICTIM_LEN]).expect("write a victim");
                path
            })
            .collect()
    }
}

/// Inserts into the cache at `dir`, which holds `entries` entries, in
/// interleaved rounds (so that this machine's drifts hit all kinds alike):
/// through an unbounded handle; through a handle limited to ten times the
/// entries (a bounded insert below capacity); through a handle limited to the
/// entries (each insert evicts one); and the floor of an evicting insert — an
/// unbounded insert and the `unlink` of a file written just before, or of one
/// of `old_victims` (see the module docs). The kinds go first in turn. Then the evicting handle goes on (untimed) until its sweep has
/// gone over the whole cache, as a long-lived handle's has, and its inserts
/// are timed again, in rounds interleaved with the floor's that together
/// span one recount cycle.
fn bounded_inserts(dir: &Path, entries: usize, old_victims: &mut OldVictims) -> BoundedRounds {
    let limited = |limit: Option<usize>| Options {
        max_entries: limit.map(|limit| limit as u64),
        ..Options::default()
    };
    let victims_dir = dir.with_extension("floor-victims");
    std::fs::create_dir_all(&victims_dir).expect("victims dir");
    let mut handles = BoundedHandles {
        unbounded: FileStore::open(dir, limited(None)).expect("open"),
        below: FileStore::open(dir, limited(Some(10 * entries))).expect("open bounded"),
        at: FileStore::open(dir, limited(Some(entries))).expect("open bounded"),
        victims_dir: victims_dir.clone(),
        victims_made: 0,
        old_victims,
    };
    // Untimed: the first writes bring the cache to its limit (the first census
    // of a large cache is an extrapolation, off by a percent or so).
    for j in 0..WARM_UP {
        handles
            .at
            .insert(&fresh_key("warm", j), &value(j), Expiry::Never)
            .expect("insert");
    }
    let evicted_before = handles.at.stats().expect("stats").evicted;
    let mut rounds = BoundedRounds::default();
    for round in 0..BOUNDED_ROUNDS {
        let keys: Vec<usize> = (round * BOUNDED_CHUNK..(round + 1) * BOUNDED_CHUNK).collect();
        // The kinds take turns going first: on a disk, the removals after one
        // kind's round slow the next kind's creates down.
        let mut kinds = [
            Kind::Unbounded,
            Kind::Below,
            Kind::At,
            Kind::Floor,
            Kind::OldFloor,
        ];
        let turns = kinds.len();
        kinds.rotate_left(round % turns);
        for kind in kinds {
            rounds.push(kind, false, handles.round(kind, &keys));
        }
    }
    let evicted = handles.at.stats().expect("stats").evicted - evicted_before;
    eprintln!(
        "bench: scale {entries}: {evicted} evicted by {} inserts at capacity",
        BOUNDED_ROUNDS * BOUNDED_CHUNK
    );
    // Untimed: enough evictions for the sweep to go over every entry (it goes
    // over two names per eviction until it has).
    for j in 0..entries * SWEPT_AFTER_PER_ENTRY.0 / SWEPT_AFTER_PER_ENTRY.1 {
        handles
            .at
            .insert(&fresh_key("sweep", j), &value(j), Expiry::Never)
            .expect("insert");
    }
    let swept_chunk = swept_chunk(entries);
    let swept_keys = BOUNDED_ROUNDS * BOUNDED_CHUNK;
    for round in 0..BOUNDED_ROUNDS {
        let first = swept_keys + round * swept_chunk;
        let keys: Vec<usize> = (first..first + swept_chunk).collect();
        let mut kinds = [Kind::At, Kind::Floor, Kind::OldFloor];
        let turns = kinds.len();
        kinds.rotate_left(round % turns);
        for kind in kinds {
            rounds.push(kind, true, handles.round(kind, &keys));
        }
    }
    drop(handles);
    let _ = std::fs::remove_dir_all(&victims_dir);
    rounds
}

/// Times inserts of `keys` through the unbounded `store`, each followed by the
/// `unlink` of one of `victims`; then removes the keys again (untimed). µs per
/// insert.
fn floor_round(store: &FileStore, keys: &[usize], victims: &[PathBuf]) -> f64 {
    let us = per_op(keys.len(), |j| {
        store
            .insert(&fresh_key("floor", keys[j]), &value(j), Expiry::Never)
            .expect("insert");
        std::fs::remove_file(&victims[j]).expect("unlink a victim");
    });
    for &i in keys {
        store.remove(&fresh_key("floor", i)).expect("remove");
    }
    us
}

/// A new key of a bounded round.
fn fresh_key(kind: &str, i: usize) -> String {
    format!("scale:{kind}:{i}")
}

/// Times inserts of `keys` (as `kind`'s fresh keys) through `store`, then
/// removes them (untimed); µs per insert.
fn inserts_removed_after(store: &FileStore, kind: &str, keys: &[usize]) -> f64 {
    let per_insert = per_op(keys.len(), |j| {
        store
            .insert(&fresh_key(kind, keys[j]), &value(j), Expiry::Never)
            .expect("insert");
    });
    for &i in keys {
        store.remove(&fresh_key(kind, i)).expect("remove");
    }
    per_insert
}

/// `rm -rf` of a tree of `entries` entry files; µs per entry.
fn rm_rf(tree: &PathBuf, entries: usize) -> f64 {
    let started = Instant::now();
    let status = Command::new("rm")
        .arg("-rf")
        .arg(tree)
        .status()
        .expect("run rm");
    assert!(status.success());
    started.elapsed().as_secs_f64() * 1e6 / entries as f64
}

fn mean(samples: &[f64]) -> f64 {
    samples.iter().sum::<f64>() / samples.len().max(1) as f64
}

fn label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 => format!("{}M entries", n / 1_000_000),
        n => format!("{}k entries", n / 1000),
    }
}
