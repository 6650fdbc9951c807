//! A private `redis-server` for one test: started on a free port of
//! 127.0.0.1 with nothing saved to disk, stopped (killed) when dropped.
//! Where `redis-server` is missing, [`RedisServer::start`] says why, for a
//! loud skip — or panics where `FILECACHE_REQUIRE_REDIS` is set, as in CI.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting server may take to accept connections.
const STARTUP: Duration = Duration::from_secs(20);

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

/// The `redis-server` binary: `$REDIS_SERVER`, else `redis-server`.
fn program() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// Why no server can be started here, if none can (checked once per process).
pub fn unavailable() -> Option<String> {
    static REASON: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    REASON
        .get_or_init(|| {
            let program = program();
            if crate::tools::runs(&program) {
                return None;
            }
            let reason = format!(
                "`{program} --version` did not run (Debian: `apt-get install redis-server`, \
                 as .ci/run does)"
            );
            assert!(
                std::env::var_os("FILECACHE_REQUIRE_REDIS").is_none(),
                "FILECACHE_REQUIRE_REDIS is set but {reason}"
            );
            Some(reason)
        })
        .clone()
}

impl RedisServer {
    /// Starts a server and waits until it accepts connections.
    ///
    /// # Panics
    /// If it cannot be started or does not come up in time (after
    /// [`unavailable`] said it can).
    pub fn start() -> Self {
        let mut last = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            let child = Command::new(program())
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "yes",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            let mut server = Self { child, port };
            match server.wait_until_up() {
                Ok(()) => return server,
                // Another process took the port first: try another.
                Err(reason) => last = reason,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    fn wait_until_up(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited: {status}"));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no connection on port {} in {STARTUP:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The URL clients connect with.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
