//! The conformance suite's client for hosts that run the component in a
//! process of their own (jco on Node.js, wasmtime-py): one process per open
//! cache, answering one JSON request per line on its stdin with one JSON reply
//! per line on its stdout — `{"op": "get", "key": "k"}` -> `{"ok": "76"}` or
//! `{"err": {"kind": "invalid-input", "message": "..."}}`. Bytes travel as
//! hex, 64-bit integers as decimal strings (JSON numbers lose them past 2^53).
//! The servers: `tests/jco/cache-server.mjs`, `tests/wasmtime-py/cache-server.py`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::UNIX_EPOCH;

use filecache::{Expiry, KeyPage, Options, Stats};
use serde_json::{Value, json};

use crate::{CacheUnderTest, Failure, FailureKind, Outcome};

/// A cache open in a host process of its own.
#[derive(Debug)]
pub struct LineCache {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Starts `server` (its stdin and stdout piped, stderr inherited), which must
/// answer the protocol, and opens the cache with `options`.
///
/// # Errors
/// A runtime failure if the process cannot start; the cache's failure to open.
pub fn open(mut server: Command, options: &Options) -> Outcome<LineCache> {
    let mut child = server
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| runtime_failure(format!("start {server:?}: {e}")))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut cache = LineCache {
        child,
        stdin,
        stdout,
    };
    cache.call(json!({ "op": "open", "options": options_json(options) }))?;
    Ok(cache)
}

impl Drop for LineCache {
    fn drop(&mut self) {
        // Closing stdin ends the server's loop; kill in case it is stuck.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A failure of the host process itself.
pub fn runtime_failure(message: String) -> Failure {
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

impl LineCache {
    /// Sends one request and returns the `ok` part of the reply.
    fn call(&mut self, request: Value) -> Outcome<Value> {
        let mut line = request.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| runtime_failure(format!("write to the host: {e}")))?;
        let mut reply = String::new();
        match self.stdout.read_line(&mut reply) {
            Ok(0) => return Err(runtime_failure("the host exited (see its stderr)".into())),
            Ok(_) => {}
            Err(e) => return Err(runtime_failure(format!("read from the host: {e}"))),
        }
        let mut reply: Value = serde_json::from_str(&reply)
            .map_err(|e| runtime_failure(format!("bad reply {reply:?}: {e}")))?;
        match reply.get("err") {
            Some(err) => Err(failure_of(err)),
            None => Ok(reply["ok"].take()),
        }
    }
}

impl CacheUnderTest for LineCache {
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
