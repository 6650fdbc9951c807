//! The bounded-cache design filecache does not use, measured: per-shard
//! trimming by age, as ccache does. Each of 256 shard directories may hold
//! `limit / 256` entries; an insert into a full shard lists it, `stat`s every
//! entry and removes the oldest until the shard holds a fraction `1 − t` of its
//! share. Its cost per evicting insert (the insert, plus the trims' time per
//! entry they removed: one eviction per insert in a cache at its limit) is
//! compared with the floor of an evicting insert, an insert and one `unlink`,
//! in interleaved rounds. Both sides use plain `std::fs` files of 150 bytes
//! (a temporary file renamed into its shard), so the ratio is the mechanism's.
//!
//! `cargo run --release -p filecache-bench --example shard_trimming -- [ENTRIES] [DIR]`
//! (defaults: 100 000 entries under `/dev/shm/filecache-shard-trimming`).

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Shard directories, as in filecache's layout.
const SHARDS: usize = 256;
/// Evicting inserts timed per round and row.
const INSERTS_PER_ROUND: usize = 20_000;
/// Rounds; every row runs once per round, in turn.
const ROUNDS: usize = 5;
/// The fractions of a shard's share a trim removes (ccache trims to 80 %).
const TRIMS: [f64; 4] = [0.05, 0.1, 0.2, 0.5];

/// A cache of plain files in shard directories, with each shard's count.
struct ShardedFiles {
    root: PathBuf,
    counts: Vec<usize>,
    share: usize,
    temporaries: u64,
}

impl ShardedFiles {
    /// Empty shard directories and `tmp/` under `root`, `limit` entries shared
    /// equally among the shards.
    fn create(root: &Path, limit: usize) -> std::io::Result<Self> {
        let _ = fs::remove_dir_all(root);
        fs::create_dir_all(root.join("tmp"))?;
        for shard in 0..SHARDS {
            fs::create_dir(root.join(shard_name(shard)))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            counts: vec![0; SHARDS],
            share: limit / SHARDS,
            temporaries: 0,
        })
    }

    /// Writes `key`'s file in a temporary and renames it into its shard; the
    /// shard and the entry's path.
    fn insert(&mut self, key: &str) -> std::io::Result<(usize, PathBuf)> {
        let hash = hash_of(key);
        let shard = usize::try_from(hash >> 56).unwrap_or(0);
        self.temporaries += 1;
        let temporary = self.root.join("tmp").join(self.temporaries.to_string());
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?
            .write_all(&[7; 150])?;
        let path = self
            .root
            .join(shard_name(shard))
            .join(format!("{hash:016x}"));
        fs::rename(&temporary, &path)?;
        self.counts[shard] += 1;
        Ok((shard, path))
    }

    /// Lists `shard`, `stat`s every entry and removes the oldest until the
    /// shard holds `1 − trim` of its share; how many it removed.
    fn trim(&mut self, shard: usize, trim: f64) -> std::io::Result<usize> {
        let mut entries = fs::read_dir(self.root.join(shard_name(shard)))?
            .map(|entry| {
                let entry = entry?;
                Ok((entry.metadata()?.modified()?, entry.path()))
            })
            .collect::<std::io::Result<Vec<(SystemTime, PathBuf)>>>()?;
        entries.sort();
        let keep = (self.share as f64 * (1.0 - trim)) as usize;
        let remove = entries.len().saturating_sub(keep);
        for (_, path) in &entries[..remove] {
            fs::remove_file(path)?;
        }
        self.counts[shard] = entries.len() - remove;
        Ok(remove)
    }
}

fn shard_name(shard: usize) -> String {
    format!("{shard:02x}")
}

fn hash_of(key: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// One row's figures over the rounds: µs per evicting insert, and the longest
/// single trim in ms.
#[derive(Default)]
struct Row {
    per_insert_us: Vec<f64>,
    longest_trim_ms: f64,
}

/// Times `INSERTS_PER_ROUND` inserts each followed by the `unlink` of a file
/// made (untimed) just before: µs per insert.
fn floor_round(files: &mut ShardedFiles, next: &mut u64) -> std::io::Result<f64> {
    let mut timed = 0.0;
    for _ in 0..INSERTS_PER_ROUND {
        *next += 2;
        let (shard, victim) = files.insert(&format!("victim {next}"))?;
        let started = Instant::now();
        files.insert(&format!("new {next}"))?;
        fs::remove_file(victim)?;
        timed += started.elapsed().as_secs_f64();
        files.counts[shard] -= 1;
    }
    Ok(timed * 1e6 / INSERTS_PER_ROUND as f64)
}

/// Times `INSERTS_PER_ROUND` inserts into shards kept at their share by
/// trimming `trim` of a shard when it is over: µs per insert, with the trims'
/// time counted per entry removed (one eviction per insert at the limit).
fn trimming_round(
    files: &mut ShardedFiles,
    next: &mut u64,
    trim: f64,
    row: &mut Row,
) -> std::io::Result<f64> {
    let (mut inserting, mut trimming, mut removed) = (0.0, 0.0, 0usize);
    for _ in 0..INSERTS_PER_ROUND {
        *next += 1;
        let started = Instant::now();
        let (shard, _) = files.insert(&format!("new {next}"))?;
        inserting += started.elapsed().as_secs_f64();
        if files.counts[shard] > files.share {
            let started = Instant::now();
            removed += files.trim(shard, trim)?;
            let took = started.elapsed().as_secs_f64();
            trimming += took;
            row.longest_trim_ms = row.longest_trim_ms.max(took * 1e3);
        }
    }
    Ok((inserting / INSERTS_PER_ROUND as f64 + trimming / removed.max(1) as f64) * 1e6)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let entries: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let root = args.next().map_or_else(
        || PathBuf::from("/dev/shm/filecache-shard-trimming"),
        PathBuf::from,
    );
    let mut files = ShardedFiles::create(&root, entries)?;
    for i in 0..entries {
        files.insert(&format!("old {i}"))?;
    }
    let mut next = 0;
    let (mut floor, mut rows) = (Row::default(), TRIMS.map(|_| Row::default()));
    for _ in 0..ROUNDS {
        // Every row starts with each shard at its share, as at the limit.
        for shard in 0..SHARDS {
            files.trim(shard, 0.0)?;
        }
        floor
            .per_insert_us
            .push(floor_round(&mut files, &mut next)?);
        for (row, trim) in rows.iter_mut().zip(TRIMS) {
            for shard in 0..SHARDS {
                files.trim(shard, 0.0)?;
            }
            let us = trimming_round(&mut files, &mut next, trim, row)?;
            row.per_insert_us.push(us);
        }
    }
    fs::remove_dir_all(&root)?;
    let floor_us = median(&floor.per_insert_us);
    println!(
        "{entries} entries in {SHARDS} shards under {}, median of {ROUNDS} interleaved rounds",
        root.display()
    );
    println!("| row | µs per evicting insert | ÷ floor | longest trim | mean fill |");
    println!("|---|---:|---:|---:|---:|");
    println!("| floor: insert + unlink | {floor_us:.1} | 1.00× | | 100 % |");
    for (row, trim) in rows.iter().zip(TRIMS) {
        let us = median(&row.per_insert_us);
        println!(
            "| trim to {:.0} % of the share | {us:.1} | {:.2}× | {:.1} ms | {:.1} % |",
            (1.0 - trim) * 100.0,
            us / floor_us,
            row.longest_trim_ms,
            (1.0 - trim / 2.0) * 100.0
        );
    }
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
