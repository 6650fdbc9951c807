//! `filecache-cli.wasm` under the real `wasmtime` CLI, sharing a directory with
//! the native store.
//!
//! Exit codes: WASI 0.2's `wasi:cli/exit` carries only success or failure (the
//! exact-code call is an `@unstable` import that plain `wasmtime run` refuses to
//! link), so under wasmtime every failure exits 1 — a miss with nothing on stderr,
//! usage errors and failures with an `error:` message. Native builds exit 0/1/2/3
//! (tested in `guest/tests/cli.rs`).
//!
//! The `wasmtime` binary is taken from `$WASMTIME`, else from `PATH`. Without it
//! the tests print a loud SKIPPED line (straight to the terminal, past the test
//! harness's capture) — unless `FILECACHE_REQUIRE_WASMTIME` is set, as `.ci/run`
//! does after installing it, in which case they fail.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use filecache::{Expiry, FileStore, Options};
use filecache_host::artifacts::CLI_COMPONENT;

fn wasmtime() -> Option<String> {
    filecache_conformance::tools::wasmtime("wasmtime CLI tests")
}

/// Runs `filecache-cli.wasm --dir /data ARGS` with `dir` preopened at `/data`.
fn run_cli(wasmtime: &str, dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(wasmtime)
        .arg("run")
        .arg("--dir")
        .arg(format!("{}::/data", dir.display()))
        .arg(CLI_COMPONENT)
        .args(["--dir", "/data"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wasmtime");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait for wasmtime")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn wasm_cli_under_wasmtime_shares_the_directory_with_native() {
    let Some(wasmtime) = wasmtime() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path();

    let out = run_cli(
        &wasmtime,
        data,
        &["insert", "greeting", "hello from the cli"],
        b"",
    );
    assert!(
        out.status.success(),
        "insert failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let native = FileStore::open(data, Options::default()).expect("open native");
    assert_eq!(
        native.get("greeting").expect("get"),
        Some(b"hello from the cli".to_vec())
    );

    native
        .insert("from-native", b"\x00binary\xff", Expiry::Never)
        .expect("insert");
    let out = run_cli(&wasmtime, data, &["get", "from-native"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"\x00binary\xff");

    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let out = run_cli(
        &wasmtime,
        data,
        &["insert", "big", "-", "--ttl", "1h"],
        &big,
    );
    assert!(
        out.status.success(),
        "stdin insert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(native.get("big").expect("get"), Some(big));

    assert_eq!(
        stdout(&run_cli(&wasmtime, data, &["contains", "greeting"], b"")),
        "true\n"
    );
    assert_eq!(
        stdout(&run_cli(&wasmtime, data, &["contains", "nope"], b"")),
        "false\n"
    );
    assert_eq!(stdout(&run_cli(&wasmtime, data, &["size"], b"")), "3\n");
    let miss = run_cli(&wasmtime, data, &["get", "nope"], b"");
    assert_eq!(miss.status.code(), Some(1), "a miss exits 1");
    assert!(miss.stdout.is_empty());

    let out = run_cli(
        &wasmtime,
        data,
        &["insert", "brief", "v", "--ttl", "300ms"],
        b"",
    );
    assert!(out.status.success());
    std::thread::sleep(std::time::Duration::from_millis(350));
    assert_eq!(
        run_cli(&wasmtime, data, &["get", "brief"], b"")
            .status
            .code(),
        Some(1)
    );

    assert_eq!(
        stdout(&run_cli(
            &wasmtime,
            data,
            &["add", "greeting", "again"],
            b""
        )),
        "false\n"
    );
    assert_eq!(
        stdout(&run_cli(&wasmtime, data, &["increment", "hits", "5"], b"")),
        "5\n"
    );
    assert_eq!(native.increment("hits", 1).expect("native increment"), 6);
    assert_eq!(
        stdout(&run_cli(&wasmtime, data, &["increment", "hits"], b"")),
        "7\n"
    );
    assert_eq!(
        stdout(&run_cli(
            &wasmtime,
            data,
            &["touch", "hits", "--ttl", "1h"],
            b""
        )),
        "true\n"
    );
    native.remove("hits").expect("remove");

    let mut keys: Vec<String> = stdout(&run_cli(&wasmtime, data, &["keys"], b""))
        .lines()
        .map(str::to_owned)
        .collect();
    keys.sort();
    assert_eq!(keys, ["big", "from-native", "greeting"]);

    let stats = stdout(&run_cli(&wasmtime, data, &["stats", "--json"], b""));
    assert!(stats.contains("\"entries\":3"), "{stats}");

    assert!(
        run_cli(&wasmtime, data, &["remove", "greeting"], b"")
            .status
            .success()
    );
    assert_eq!(native.get("greeting").expect("get"), None);
    assert!(run_cli(&wasmtime, data, &["clear"], b"").status.success());
    assert_eq!(native.approx_size().expect("size"), 0);
}

/// `recount` under wasmtime — what a host that instantiates per request runs
/// now and then, since its short-lived handles never recount: entries written
/// without a limit are counted, and the shared count is corrected.
#[test]
fn wasm_cli_recount_corrects_the_shared_count() {
    let Some(wasmtime) = wasmtime() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path();
    let bounded = Options {
        max_entries: Some(20),
        ..Options::default()
    };
    let filler = FileStore::open(data, bounded).expect("open");
    for i in 0..20 {
        filler
            .insert(&format!("k{i}"), b"v", Expiry::Never)
            .expect("insert");
    }
    drop(filler);
    let unbounded = FileStore::open(data, Options::default()).expect("open");
    for i in 0..8 {
        unbounded
            .insert(&format!("u{i}"), b"v", Expiry::Never)
            .expect("insert");
    }
    let counted = || filecache::testing::census(data).expect("a census").entries;
    assert_eq!(counted(), 20, "the drift");
    let out = run_cli(&wasmtime, data, &["--max-entries", "20", "recount"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out), "28\n");
    assert_eq!(counted(), 28, "corrected");
}

#[test]
fn wasm_cli_reports_usage_and_failures_with_exit_codes() {
    let Some(wasmtime) = wasmtime() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let usage = run_cli(&wasmtime, dir.path(), &["frobnicate"], b"");
    assert_eq!(
        usage.status.code(),
        Some(1),
        "WASI 0.2 reports any failure as 1"
    );
    let message = String::from_utf8_lossy(&usage.stderr);
    assert!(
        message.contains("unknown command") && message.contains("usage:"),
        "{message}"
    );
    let bad_ttl = run_cli(
        &wasmtime,
        dir.path(),
        &["insert", "k", "v", "--ttl", "5 parsecs"],
        b"",
    );
    assert_eq!(bad_ttl.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_ttl.stderr).contains("invalid duration"));
    let miss = run_cli(&wasmtime, dir.path(), &["get", "absent"], b"");
    assert_eq!(miss.status.code(), Some(1));
    assert!(miss.stderr.is_empty(), "a miss is silent on stderr");
    // A directory outside every preopen cannot be opened: a failure, exit 3.
    let out = Command::new(&wasmtime)
        .args(["run", CLI_COMPONENT, "--dir", "/elsewhere", "size"])
        .output()
        .expect("run wasmtime");
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: failed to open cache directory"));
}
