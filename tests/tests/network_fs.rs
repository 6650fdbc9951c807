//! A cache directory shared over a network file system: two `sshfs` mounts of
//! one directory (a private `sshd` on 127.0.0.1, see `src/sshfs.rs`), worker
//! processes — native, and the component in a host process — split between
//! them as between two machines. The mixed workload
//! reads every value whole and keeps exact counters; increments from both
//! mounts add up exactly. What this shows, and what other file systems give,
//! is in `docs/network-filesystems.md`.

use std::path::Path;

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
