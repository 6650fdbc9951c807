//! The conformance suite against the filecache component in a second,
//! independent host: transpiled to JavaScript by jco and run on Node.js with
//! jco's WASI shim, one Node process per open cache (see `src/jco.rs`).

use filecache_conformance::jco::Jco;

filecache_conformance::conformance_suite!(Jco);

/// The minimal reproductions of the shim behaviours the guest works around
/// (`tests/jco/shim-bugs.mjs`, quoted in the README) still run; what they find
/// is printed, and a `fixed` line means a workaround could go.
#[test]
fn shim_reproductions_run() {
    use filecache_conformance::Backend;
    if let Some(reason) = Jco.skip_reason() {
        eprintln!("\n*** SKIPPED: shim reproductions: {reason} ***\n");
        return;
    }
    let output = filecache_conformance::jco::run_shim_reproductions().expect("run node");
    let report = String::from_utf8_lossy(&output.stdout);
    eprintln!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "shim-bugs.mjs failed");
    assert_eq!(report.lines().count(), 5, "one line per behaviour");
}
