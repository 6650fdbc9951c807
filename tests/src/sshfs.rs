//! A network file system for one test: a private `sshd` on a free port of
//! 127.0.0.1 (its own host key, one authorized key, nothing else) and two
//! `sshfs` mounts of one directory, as two machines would mount a share. The
//! mounts turn off sshfs's caches of names and attributes (what
//! `docs/network-filesystems.md` asks of a shared cache directory). Dropping
//! it unmounts both and stops `sshd`.
//!
//! [`SshfsShare::start`] says why it cannot run here (no `sshd`/`sshfs`, no
//! `/dev/fuse`, not root) for a loud skip — or panics where
//! `FILECACHE_REQUIRE_SSHFS` is set, as in CI.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The sshfs options of both mounts: no cached names or attributes.
pub const MOUNT_OPTIONS: &str = "dir_cache=no,entry_timeout=0,attr_timeout=0,negative_timeout=0";

/// Where Debian puts the server.
const SSHD: &str = "/usr/sbin/sshd";

/// A running share: the served directory and its two mounts.
#[derive(Debug)]
pub struct SshfsShare {
    sshd: Child,
    mounts: Vec<PathBuf>,
    dir: TempDir,
}

fn check(out: std::io::Result<std::process::Output>, what: &str) -> Result<(), String> {
    match out {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{what} did not run: {e}")),
    }
}

/// Why the share cannot be made here, if it cannot.
fn missing() -> Option<String> {
    if !Path::new(SSHD).exists() {
        return Some(format!(
            "no {SSHD} (Debian: apt-get install openssh-server)"
        ));
    }
    if !crate::tools::runs("sshfs") {
        return Some("no sshfs (Debian: apt-get install sshfs)".into());
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    let uid = Command::new("id").arg("-u").output().ok();
    if uid.is_none_or(|out| String::from_utf8_lossy(&out.stdout).trim() != "0") {
        return Some("not root (sshd and FUSE mounts need it here)".into());
    }
    None
}

impl SshfsShare {
    /// Starts `sshd` and mounts the share twice; `Err` says why it cannot run
    /// here (after a panic instead where `FILECACHE_REQUIRE_SSHFS` is set).
    pub fn start() -> Result<Self, String> {
        let outcome = missing().map_or_else(Self::try_start, Err);
        if let Err(reason) = &outcome {
            assert!(
                std::env::var_os("FILECACHE_REQUIRE_SSHFS").is_none(),
                "FILECACHE_REQUIRE_SSHFS is set but the sshfs share cannot run: {reason}"
            );
        }
        outcome
    }

    fn try_start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = |name: &str| dir.path().join(name);
        for key in ["host_key", "user_key"] {
            check(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", ""])
                    .arg("-f")
                    .arg(path(key))
                    .output(),
                "ssh-keygen",
            )?;
        }
        std::fs::copy(path("user_key.pub"), path("authorized_keys")).map_err(|e| e.to_string())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             PermitRootLogin prohibit-password\nStrictModes no\nPidFile {}\n\
             Subsystem sftp internal-sftp\n",
            path("host_key").display(),
            path("authorized_keys").display(),
            path("sshd.pid").display(),
        );
        std::fs::write(path("sshd_config"), config).map_err(|e| e.to_string())?;
        std::fs::create_dir_all("/run/sshd").map_err(|e| e.to_string())?;
        let sshd = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(path("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{SSHD} did not start: {e}"))?;
        let mut share = Self {
            sshd,
            mounts: Vec::new(),
            dir,
        };
        share.wait_for_port(port)?;
        std::fs::create_dir(share.served()).map_err(|e| e.to_string())?;
        for name in ["mount-a", "mount-b"] {
            let mount = share.dir.path().join(name);
            std::fs::create_dir(&mount).map_err(|e| e.to_string())?;
            let options = format!(
                "{MOUNT_OPTIONS},IdentityFile={},StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null",
                share.dir.path().join("user_key").display()
            );
            check(
                Command::new("sshfs")
                    .args(["-p", &port.to_string(), "-o", &options])
                    .arg(format!("root@127.0.0.1:{}", share.served().display()))
                    .arg(&mount)
                    .output(),
                "sshfs",
            )?;
            share.mounts.push(mount);
        }
        Ok(share)
    }

    fn wait_for_port(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = self.sshd.try_wait() {
                return Err(format!("sshd exited: {status}"));
            }
            if Instant::now() > deadline {
                return Err("sshd did not listen within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The directory the server shares (as the server sees it).
    pub fn served(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    /// The two mounts of it.
    pub fn mounts(&self) -> [&Path; 2] {
        [&self.mounts[0], &self.mounts[1]]
    }
}

impl Drop for SshfsShare {
    fn drop(&mut self) {
        for mount in &self.mounts {
            let _ = Command::new("fusermount")
                .arg("-u")
                .arg(mount)
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}
