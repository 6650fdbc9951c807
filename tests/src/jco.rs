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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use filecache::Options;
use filecache_host::artifacts::CACHE_COMPONENT;

use crate::line_host::{self, LineCache, runtime_failure};
use crate::tools::{self, node};
use crate::{Backend, Outcome};

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
    type Cache = LineCache;

    fn open(&self, dir: &Path, options: &Options) -> Outcome<LineCache> {
        let transpiled = transpiled().map_err(runtime_failure)?;
        // Like the wasmtime host, the host directory is made before it is preopened.
        std::fs::create_dir_all(dir).map_err(|e| runtime_failure(e.to_string()))?;
        let mut server = Command::new(node());
        server
            .arg(project_dir().join("cache-server.mjs"))
            .arg(transpiled)
            .arg(dir);
        line_host::open(server, options)
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
