//! The native `filecache-cli` binary: commands, exit codes, stdin values.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const CLI: &str = env!("CARGO_BIN_EXE_filecache-cli");

fn run(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(CLI)
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn filecache-cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("stdin");
    child.wait_with_output().expect("wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn commands_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    assert!(run(d, &["insert", "k", "v"], b"").status.success());
    let out = run(d, &["get", "k"], b"");
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"v"[..])
    );
    let value: Vec<u8> = (0..=255).cycle().take(300_000).collect();
    assert!(run(d, &["insert", "big", "-"], &value).status.success());
    assert_eq!(run(d, &["get", "big"], b"").stdout, value);
    assert_eq!(text(&run(d, &["contains", "k"], b"").stdout), "true\n");
    assert_eq!(text(&run(d, &["size"], b"").stdout), "2\n");
    assert!(run(d, &["remove", "k"], b"").status.success());
    assert!(
        run(d, &["remove", "k"], b"").status.success(),
        "removing an absent key succeeds"
    );
    assert_eq!(text(&run(d, &["contains", "k"], b"").stdout), "false\n");
    let stats = text(&run(d, &["stats"], b"").stdout);
    assert!(
        stats.contains("entries") && stats.contains("corrupt removed"),
        "{stats}"
    );
    let json = text(&run(d, &["stats", "--json"], b"").stdout);
    for field in [
        "entries",
        "bytes",
        "hits",
        "misses",
        "expired_removed",
        "evicted",
        "corrupt_removed",
    ] {
        assert!(
            json.contains(&format!("\"{field}\":")),
            "{field} missing from {json}"
        );
    }
    assert!(run(d, &["clear"], b"").status.success());
    assert_eq!(text(&run(d, &["size"], b"").stdout), "0\n");
}

#[test]
fn ttl_expires_entries() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(
        run(dir.path(), &["insert", "k", "v", "--ttl", "300ms"], b"")
            .status
            .success()
    );
    assert_eq!(run(dir.path(), &["get", "k"], b"").status.code(), Some(0));
    std::thread::sleep(std::time::Duration::from_millis(350));
    assert_eq!(run(dir.path(), &["get", "k"], b"").status.code(), Some(1));
    assert!(
        run(dir.path(), &["insert", "n", "v", "--ttl", "never"], b"")
            .status
            .success()
    );
}

#[test]
fn exit_codes_tell_miss_usage_and_failure_apart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let miss = run(dir.path(), &["get", "absent"], b"");
    assert_eq!(miss.status.code(), Some(1));
    assert!(miss.stdout.is_empty() && miss.stderr.is_empty());
    for usage in [
        &["frobnicate"][..],
        &["get"],
        &["insert", "k"],
        &["insert", "k", "v", "--ttl", "soon"],
        &["get", "k", "--ttl", "1s"],
        &[],
    ] {
        let out = run(dir.path(), usage, b"");
        assert_eq!(out.status.code(), Some(2), "{usage:?}");
        assert!(text(&out.stderr).contains("usage:"), "{usage:?}");
    }
    let out = Command::new(CLI).arg("size").output().expect("run");
    assert_eq!(out.status.code(), Some(2), "--dir is required");
    // The cache directory path is a regular file: the store cannot open it.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let out = Command::new(CLI)
        .arg("--dir")
        .arg(&file)
        .arg("size")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("error: failed to create directory"),
        "{}",
        text(&out.stderr)
    );
}
