//! Timing helpers: per-operation times, medians, and a guard against a file
//! system that is slow to create files for a while after many deletions (ext4
//! does not reuse freed inodes at once; on this machine creates then cost
//! 0.3–1 ms instead of ~15 µs for minutes).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `op` `count` times; returns microseconds per operation.
pub fn per_op(count: usize, mut op: impl FnMut(usize)) -> f64 {
    let started = Instant::now();
    for i in 0..count {
        op(i);
    }
    started.elapsed().as_secs_f64() * 1e6 / count.max(1) as f64
}

/// The median of some samples (0 for none).
pub fn median(samples: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// Times bare file creates in `probe_dir` (the files are kept: deleting them
/// would slow the next creates down) and waits, up to `patience`, until they
/// are fast. Returns the last median create time in microseconds.
pub fn wait_for_fast_creates(probe_dir: &Path, patience: Duration) -> f64 {
    const FAST_US: f64 = 80.0;
    fs::create_dir_all(probe_dir).expect("probe dir");
    let started = Instant::now();
    let mut next = fs::read_dir(probe_dir).map_or(0, |listing| listing.count());
    loop {
        let mut times = Vec::with_capacity(16);
        for _ in 0..16 {
            next += 1;
            let path = probe_dir.join(format!("probe-{next}"));
            let t = Instant::now();
            fs::File::create(&path).expect("probe create");
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let create = median(&times);
        if create <= FAST_US || started.elapsed() >= patience {
            if create > FAST_US {
                eprintln!(
                    "bench: warning: creating a file still takes {create:.0} µs after waiting {:.0?}",
                    started.elapsed()
                );
            }
            return create;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}
