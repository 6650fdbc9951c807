//! The second host: the cache component transpiled to JavaScript by jco and run
//! on Node.js with jco's WASI shim (`@bytecodealliance/preview2-shim`), one Node
//! process per open cache. The process runs `tests/jco/cache-server.mjs`, which
//! preopens the cache directory as `/cache` and answers one JSON request per
//! line (see that file for the encoding).
//!
//! Needs `node` and the npm packages of `tests/jco/` (`npm ci --prefix tests/jco`,
//! which `.ci/run` does). Without them the cases report a loud skip, unless
//! `FILECACHE_REQUIRE_JCO=1` (set by `.ci/run` once the install worked), which
//! turns a missing tool into a failure.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use filecache::{Expiry, KeyPage, Options, Stats};
use filecache_host::artifacts::CACHE_COMPONENT;
use serde_json::{Value, json};

use crate::tools::{self, node};
use crate::{Backend, CacheUnderTest, Failure, FailureKind, Outcome};

/// The component on Node.js through jco.
#[derive(Debug, Clone, Copy)]
pub struct Jco;

/// `tests/jco/`: the npm project, the server script, and the transpiled output.
fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("jco")
}

/// Why the jco host cannot run here, if it cannot.
fn missing_tool() -> Option<String> {
    if !tools::runs(&node()) {
        return Some(format!("no `{}` (Node.js) on PATH", node()));
    }
    let jco = project_dir().join("node_modules/@bytecodealliance/jco/package.json");
    if !jco.exists() {
        return Some("no jco in tests/jco/node_modules (run `npm ci --prefix tests/jco`)".into());
    }
    None
}

/// Transpiles the component once per test process, into `tests/jco/build/`
/// (inside the npm project, so that its imports of the shim resolve).
fn transpiled() -> Result<&'static Path, String> {
    static TRANSPILED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TRANSPILED
        .get_or_init(|| {
            let out = project_dir().join("build").join("filecache");
            let _ = std::fs::remove_dir_all(&out);
            let jco = project_dir().join("node_modules/@bytecodealliance/jco/dist/jco.js");
            let output = Command::new(node())
                .arg(jco)
                .args([
                    "transpile",
                    CACHE_COMPONENT,
                    "--name",
                    "filecache",
                    "--quiet",
                    "-o",
                ])
                .arg(&out)
                .output()
                .map_err(|e| format!("run jco: {e}"))?;
            if output.status.success() {
                Ok(out)
            } else {
                Err(format!(
                    "jco transpile failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ))
            }
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// Runs `tests/jco/shim-bugs.mjs`, the minimal reproductions of the shim
/// behaviours the guest works around.
///
/// # Errors
/// If node cannot be started.
pub fn run_shim_reproductions() -> std::io::Result<std::process::Output> {
    Command::new(node())
        .arg(project_dir().join("shim-bugs.mjs"))
        .output()
}

impl Backend for Jco {
    type Cache = JcoCache;

    fn open(&self, dir: &Path, options: &Options) -> Outcome<JcoCache> {
        let transpiled = transpiled().map_err(runtime_failure)?;
        // Like the wasmtime host, the host directory is made before it is preopened.
        std::fs::create_dir_all(dir).map_err(|e| runtime_failure(e.to_string()))?;
        let mut child = Command::new(node())
            .arg(project_dir().join("cache-server.mjs"))
            .arg(transpiled)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| runtime_failure(format!("start node: {e}")))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut cache = JcoCache {
            child,
            stdin,
            stdout,
        };
        cache.call(json!({ "op": "open", "options": options_json(options) }))?;
        Ok(cache)
    }

    fn writers(&self) -> usize {
        4
    }

    fn holds_directories(&self) -> bool {
        false
    }

    fn skip_reason(&self) -> Option<String> {
        let missing = missing_tool()?;
        assert!(
            std::env::var_os("FILECACHE_REQUIRE_JCO").is_none(),
            "FILECACHE_REQUIRE_JCO is set but the jco host cannot run: {missing}"
        );
        Some(format!("the jco host: {missing}"))
    }
}

/// A cache open in a Node.js process.
#[derive(Debug)]
pub struct JcoCache {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for JcoCache {
    fn drop(&mut self) {
        // Closing stdin ends the server's loop; kill in case it is stuck.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime_failure(message: String) -> Failure {
    Failure {
        kind: FailureKind::Runtime,
        message,
    }
}

fn failure_of(err: &Value) -> Failure {
    let kind = match err["kind"].as_str() {
        Some("invalid-input") => FailureKind::InvalidInput,
        Some("io") => FailureKind::Io,
        Some("storage-full") => FailureKind::StorageFull,
        Some("busy") => FailureKind::Busy,
        Some("corrupt") => FailureKind::Corrupt,
        _ => FailureKind::Runtime,
    };
    Failure {
        kind,
        message: err["message"].as_str().unwrap_or_default().to_owned(),
    }
}

fn options_json(options: &Options) -> Value {
    json!({
        "durable": options.durable,
        "maxKeyBytes": options.max_key_bytes,
        "maxValueBytes": options.max_value_bytes.to_string(),
        "leaseMs": options.lease.as_millis().to_string(),
        "lockTimeoutMs": options.lock_timeout.as_millis().to_string(),
        "maxEntries": options.max_entries.map(|n| n.to_string()),
        "maxBytes": options.max_bytes.map(|n| n.to_string()),
        "groupShared": options.group_shared,
    })
}

fn expiry_json(expiry: Expiry) -> Value {
    match expiry {
        Expiry::Never => json!({ "tag": "never" }),
        Expiry::After(after) => json!({ "tag": "after", "val": after.as_millis().to_string() }),
        Expiry::At(at) => {
            // A time before the epoch is in the past all the same.
            let ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
            json!({ "tag": "at", "val": ms.to_string() })
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

fn unhex(text: &str) -> Outcome<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(runtime_failure(format!("odd hex from the server: {text}")));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| runtime_failure(format!("bad hex from the server: {text}")))
        })
        .collect()
}

fn number<T: std::str::FromStr>(value: &Value) -> Outcome<T> {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| runtime_failure(format!("expected a decimal string, got {value}")))
}

fn boolean(value: &Value) -> Outcome<bool> {
    value
        .as_bool()
        .ok_or_else(|| runtime_failure(format!("expected a bool, got {value}")))
}

impl JcoCache {
    /// Sends one request and returns the `ok` part of the reply.
    fn call(&mut self, request: Value) -> Outcome<Value> {
        let mut line = request.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| runtime_failure(format!("write to node: {e}")))?;
        let mut reply = String::new();
        match self.stdout.read_line(&mut reply) {
            Ok(0) => return Err(runtime_failure("node exited (see its stderr)".into())),
            Ok(_) => {}
            Err(e) => return Err(runtime_failure(format!("read from node: {e}"))),
        }
        let mut reply: Value = serde_json::from_str(&reply)
            .map_err(|e| runtime_failure(format!("bad reply {reply:?}: {e}")))?;
        match reply.get("err") {
            Some(err) => Err(failure_of(err)),
            None => Ok(reply["ok"].take()),
        }
    }
}

impl CacheUnderTest for JcoCache {
    fn get(&mut self, key: &str) -> Outcome<Option<Vec<u8>>> {
        match self.call(json!({ "op": "get", "key": key }))? {
            Value::Null => Ok(None),
            Value::String(text) => unhex(&text).map(Some),
            other => Err(runtime_failure(format!("get returned {other}"))),
        }
    }
    fn insert(&mut self, key: &str, value: &[u8], expiry: Expiry) -> Outcome<()> {
        let request = json!({ "op": "insert", "key": key, "value": hex(value), "expiry": expiry_json(expiry) });
        self.call(request).map(drop)
    }
    fn remove(&mut self, key: &str) -> Outcome<()> {
        self.call(json!({ "op": "remove", "key": key })).map(drop)
    }
    fn contains_key(&mut self, key: &str) -> Outcome<bool> {
        boolean(&self.call(json!({ "op": "contains-key", "key": key }))?)
    }
    fn add(&mut self, key: &str, value: &[u8], expiry: Expiry) -> Outcome<bool> {
        let request =
            json!({ "op": "add", "key": key, "value": hex(value), "expiry": expiry_json(expiry) });
        boolean(&self.call(request)?)
    }
    fn increment(&mut self, key: &str, delta: i64) -> Outcome<i64> {
        let request = json!({ "op": "increment", "key": key, "delta": delta.to_string() });
        number(&self.call(request)?)
    }
    fn compare_and_swap(
        &mut self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        expiry: Expiry,
    ) -> Outcome<bool> {
        let request = json!({
            "op": "compare-and-swap",
            "key": key,
            "expected": expected.map(hex),
            "new": hex(new),
            "expiry": expiry_json(expiry),
        });
        boolean(&self.call(request)?)
    }
    fn touch(&mut self, key: &str, expiry: Expiry) -> Outcome<bool> {
        let request = json!({ "op": "touch", "key": key, "expiry": expiry_json(expiry) });
        boolean(&self.call(request)?)
    }
    fn clear(&mut self) -> Outcome<()> {
        self.call(json!({ "op": "clear" })).map(drop)
    }
    fn approx_size(&mut self) -> Outcome<u64> {
        number(&self.call(json!({ "op": "approx-size" }))?)
    }
    fn stats(&mut self) -> Outcome<Stats> {
        let stats = self.call(json!({ "op": "stats" }))?;
        Ok(Stats {
            entries: number(&stats["entries"])?,
            bytes: number(&stats["bytes"])?,
            hits: number(&stats["hits"])?,
            misses: number(&stats["misses"])?,
            expired_removed: number(&stats["expiredRemoved"])?,
            evicted: number(&stats["evicted"])?,
            corrupt_removed: number(&stats["corruptRemoved"])?,
        })
    }
    fn list_keys(&mut self, cursor: Option<&str>) -> Outcome<KeyPage> {
        let page = self.call(json!({ "op": "list-keys", "cursor": cursor }))?;
        let keys = page["keys"]
            .as_array()
            .ok_or_else(|| runtime_failure(format!("list-keys returned {page}")))?
            .iter()
            .map(|key| {
                key.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| runtime_failure(format!("key {key} is not a string")))
            })
            .collect::<Outcome<Vec<String>>>()?;
        let cursor = page["cursor"].as_str().map(str::to_owned);
        Ok(KeyPage { keys, cursor })
    }
}
