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
        text(&out.stderr).contains("error: failed to open cache directory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn atomic_commands_print_their_outcome() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    assert_eq!(text(&run(d, &["add", "k", "first"], b"").stdout), "true\n");
    assert_eq!(
        text(&run(d, &["add", "k", "second"], b"").stdout),
        "false\n"
    );
    assert_eq!(run(d, &["get", "k"], b"").stdout, b"first");
    assert_eq!(
        text(&run(d, &["add", "s", "-"], b"from stdin").stdout),
        "true\n"
    );
    assert_eq!(run(d, &["get", "s"], b"").stdout, b"from stdin");
    assert_eq!(text(&run(d, &["increment", "n"], b"").stdout), "1\n");
    assert_eq!(text(&run(d, &["increment", "n", "41"], b"").stdout), "42\n");
    assert_eq!(
        text(&run(d, &["increment", "n", "-50"], b"").stdout),
        "-8\n"
    );
    let not_a_number = run(d, &["increment", "k"], b"");
    assert_eq!(not_a_number.status.code(), Some(3));
    assert!(text(&not_a_number.stderr).contains("not a decimal"));
    assert_eq!(run(d, &["increment", "n", "x"], b"").status.code(), Some(2));
    assert_eq!(
        text(&run(d, &["touch", "k", "--ttl", "300ms"], b"").stdout),
        "true\n"
    );
    assert_eq!(
        text(&run(d, &["touch", "absent", "--ttl", "1h"], b"").stdout),
        "false\n"
    );
    std::thread::sleep(std::time::Duration::from_millis(350));
    assert_eq!(
        run(d, &["get", "k"], b"").status.code(),
        Some(1),
        "touched to expire"
    );
    assert_eq!(
        run(d, &["touch", "k"], b"").status.code(),
        Some(2),
        "touch needs --ttl"
    );
    assert_eq!(
        run(d, &["remove", "k", "--ttl", "1s"], b"").status.code(),
        Some(2)
    );
}

#[test]
fn a_locked_key_is_busy_until_the_lease_runs_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    assert_eq!(text(&run(d, &["increment", "n"], b"").stdout), "1\n");
    let lock = filecache::testing::lock_path(d, "n");
    std::fs::write(&lock, b"").expect("plant a lock as a dead writer would");
    let busy = run(d, &["--lock-timeout", "100ms", "increment", "n"], b"");
    assert_eq!(busy.status.code(), Some(3));
    assert!(
        text(&busy.stderr).contains("busy"),
        "{}",
        text(&busy.stderr)
    );
    let reclaimed = run(
        d,
        &["--lease", "200ms", "--lock-timeout", "5s", "increment", "n"],
        b"",
    );
    assert_eq!(
        text(&reclaimed.stdout),
        "2\n",
        "{}",
        text(&reclaimed.stderr)
    );
    assert!(!lock.exists());
}

#[test]
fn keys_lists_every_live_key_and_limits_evict() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    for key in ["alpha", "beta", "gamma"] {
        assert!(run(d, &["insert", key, "v"], b"").status.success());
    }
    assert!(
        run(d, &["insert", "brief", "v", "--ttl", "1ms"], b"")
            .status
            .success()
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut keys: Vec<String> = text(&run(d, &["keys"], b"").stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["alpha", "beta", "gamma"],
        "expired keys are not listed"
    );
    for i in 0..20 {
        let key = format!("k{i}");
        assert!(
            run(d, &["--max-entries", "10", "insert", &key, "v"], b"")
                .status
                .success()
        );
    }
    assert_eq!(text(&run(d, &["size"], b"").stdout), "10\n");
    let bad = run(d, &["--max-entries", "lots", "size"], b"");
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("--max-entries"));
}

/// Each command is a bounded handle that writes once: none lives to recount,
/// so entries written without a limit stay out of the shared count until
/// `recount` corrects it; the next bounded write then evicts the excess.
#[test]
fn recount_corrects_what_short_lived_writers_never_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let bounded = |args: &[&str]| {
        let mut all = vec!["--max-entries", "10"];
        all.extend_from_slice(args);
        run(d, &all, b"")
    };
    for i in 0..15 {
        let key = format!("k{i}");
        let limit: &[&str] = if i < 10 {
            &["--max-entries", "10"]
        } else {
            &[]
        };
        let mut args = limit.to_vec();
        args.extend(["insert", key.as_str(), "v"]);
        assert!(run(d, &args, b"").status.success());
    }
    assert_eq!(text(&bounded(&["size"]).stdout), "10\n", "the drift");
    assert_eq!(text(&run(d, &["size"], b"").stdout), "15\n");
    let recount = bounded(&["recount"]);
    assert_eq!(
        (recount.status.code(), text(&recount.stdout)),
        (Some(0), "15\n".to_owned())
    );
    assert_eq!(text(&bounded(&["size"]).stdout), "15\n", "corrected");
    assert!(bounded(&["insert", "new", "v"]).status.success());
    assert_eq!(
        text(&run(d, &["size"], b"").stdout),
        "10\n",
        "excess evicted"
    );
}

/// The native command makes private caches too, and `--group-shared` opts out
/// (Unix modes: there are none to check elsewhere).
#[cfg(unix)]
#[test]
fn the_command_line_makes_private_caches() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, extra, dir_mode, file_mode) in [
        ("private", None, 0o700, 0o600),
        ("shared", Some("--group-shared"), 0o2770, 0o660),
    ] {
        let root = dir.path().join(name);
        let status = Command::new(CLI)
            .arg("--dir")
            .arg(&root)
            .args(extra)
            .args(["insert", "k", "v"])
            .status()
            .expect("run filecache-cli");
        assert!(status.success());
        for entry in walk(&root) {
            let meta = std::fs::symlink_metadata(&entry).expect("stat");
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
            let expected = if meta.is_dir() { dir_mode } else { file_mode };
            assert_eq!(mode, expected, "{} is {mode:o}", entry.display());
        }
    }
}

/// `root` and every file and directory below it.
#[cfg(unix)]
fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = vec![root.to_path_buf()];
    for entry in std::fs::read_dir(root).expect("list") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
