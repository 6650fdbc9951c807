//! The third host: the cache component run by wasmtime-py (PyPI `wasmtime`,
//! the Python embedding of wasmtime, with its component API), one Python
//! process per open cache. The process runs `tests/wasmtime-py/cache-server.py`,
//! which preopens the cache directory as `/cache` and answers the protocol of
//! [`crate::line_host`].
//!
//! Needs a Python (`$FILECACHE_PYTHON`, else `python3`) that can `import
//! wasmtime` at version 50 or later (`pip install 'wasmtime>=50,<51'`, which
//! `.ci/run` does). Without it the cases report a loud skip, unless
//! `FILECACHE_REQUIRE_WASMTIME_PY=1` (set by `.ci/run` once the install
//! worked), which turns a missing tool into a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use filecache::Options;
use filecache_host::artifacts::CACHE_COMPONENT;

use crate::line_host::{self, LineCache, runtime_failure};
use crate::{Backend, Outcome};

/// The component in wasmtime-py.
#[derive(Debug, Clone, Copy)]
pub struct WasmtimePy;

/// The Python interpreter: `$FILECACHE_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("FILECACHE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Why wasmtime-py cannot run here, if it cannot (asked once per process).
fn missing_tool() -> Option<String> {
    static MISSING: OnceLock<Option<String>> = OnceLock::new();
    MISSING
        .get_or_init(|| {
            let probe = "import wasmtime, importlib.metadata as m; \
                         v = m.version('wasmtime'); print(v); \
                         raise SystemExit(int(v.split('.')[0]) < 50)";
            match Command::new(python()).args(["-c", probe]).output() {
                Ok(out) if out.status.success() => None,
                Ok(out) => Some(format!(
                    "`{}` has no wasmtime-py 50 or later ({}{}); install it with \
                     `pip install 'wasmtime>=50,<51'`",
                    python(),
                    String::from_utf8_lossy(&out.stdout).trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(e) => Some(format!("cannot run `{}`: {e}", python())),
            }
        })
        .clone()
}

fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("wasmtime-py/cache-server.py")
}

impl Backend for WasmtimePy {
    type Cache = LineCache;

    fn open(&self, dir: &Path, options: &Options) -> Outcome<LineCache> {
        // Like the wasmtime host, the host directory is made before it is preopened.
        std::fs::create_dir_all(dir).map_err(|e| runtime_failure(e.to_string()))?;
        let mut server = Command::new(python());
        server.arg(server_script()).arg(CACHE_COMPONENT).arg(dir);
        line_host::open(server, options)
    }

    fn writers(&self) -> usize {
        4
    }

    fn largest_returned_value(&self) -> Option<usize> {
        // wasmtime's default hostcall fuel (128 MiB) over the C API's 48-byte
        // value is about 2.79 MB; the documented limit leaves a margin.
        Some(2 << 20)
    }

    fn skip_reason(&self) -> Option<String> {
        let missing = missing_tool()?;
        assert!(
            std::env::var_os("FILECACHE_REQUIRE_WASMTIME_PY").is_none(),
            "FILECACHE_REQUIRE_WASMTIME_PY is set but the wasmtime-py host cannot run: {missing}"
        );
        Some(format!("the wasmtime-py host: {missing}"))
    }
}
