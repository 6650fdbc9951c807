//! Precompiled components on disk, so that a host process after the first
//! starts warm: loading an artifact takes milliseconds where compiling the
//! component takes hundreds.
//!
//! An artifact is what [`Component::serialize`] makes of a component, stored
//! as `<dir>/<component hash>-<engine hash>.cwasm`: the first name part is the
//! blake3 hash of the component's bytes, the second a hash of the engine's
//! [`Engine::precompile_compatibility_hash`] (wasmtime's version, target and
//! every setting that changes the code). The file is
//!
//! | offset | size | field      | meaning                                   |
//! |--------|------|------------|-------------------------------------------|
//! | 0      | 4    | `magic`    | `b"FCPC"`                                 |
//! | 4      | 4    | `version`  | `1`, little-endian                        |
//! | 8      | 32   | `checksum` | blake3 of the artifact bytes that follow  |
//! | 40     | …    | `artifact` | [`Component::serialize`]'s output         |
//!
//! An artifact is loaded only if its name matches the component and the
//! engine, its header and checksum are whole, and wasmtime's own checks in
//! [`Component::deserialize`] accept it. Anything else — another component,
//! another wasmtime or configuration, a torn or tampered file — is compiled
//! afresh and the artifact replaced (written to a temporary file, then
//! renamed). Loading native code from disk trusts whoever can write there, so
//! the directory is created private to the user and an existing one that
//! others may write to is not used at all.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::HostError;

/// The four bytes an artifact file starts with.
const MAGIC: [u8; 4] = *b"FCPC";
/// The artifact file format version.
const VERSION: u32 = 1;
/// Size of the header before the artifact.
const HEADER_LEN: usize = 40;

/// How a runtime got its compiled component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// Compiled in this process; `stored` says whether the artifact was saved.
    Compiled {
        /// How long compiling took.
        took: Duration,
        /// Where the artifact was stored, if it was.
        stored: Option<PathBuf>,
        /// Why an existing artifact was not used, if there was one.
        replaced: Option<String>,
    },
    /// Loaded from a precompiled artifact.
    Precompiled {
        /// How long loading took.
        took: Duration,
        /// The artifact file.
        from: PathBuf,
    },
}

/// The directory where `filecache-host` keeps precompiled components by
/// default: `$FILECACHE_HOST_CACHE`, else `$XDG_CACHE_HOME/filecache-host`,
/// else `$HOME/.cache/filecache-host`; `None` if none of them is set.
pub fn default_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    var("FILECACHE_HOST_CACHE")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CACHE_HOME").map(|dir| PathBuf::from(dir).join("filecache-host")))
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".cache/filecache-host")))
}

/// The component at `component`, for `engine`: from its artifact in `dir`
/// when there is a sound one, else compiled (and stored there).
///
/// # Errors
/// [`HostError::Runtime`] if the component cannot be read or compiled.
/// Failing to read or store an artifact is not an error: it is compiled.
pub(crate) fn load(
    engine: &Engine,
    component: &Path,
    dir: Option<&Path>,
) -> Result<(Component, Loaded), HostError> {
    let started = Instant::now();
    let bytes = std::fs::read(component).map_err(|e| {
        HostError::Runtime(wasmtime::format_err!(
            "failed to read `{}`: {e}",
            component.display()
        ))
    })?;
    let artifact = dir
        .filter(|dir| usable_dir(dir))
        .map(|dir| dir.join(artifact_name(engine, &bytes)));
    let mut replaced = None;
    if let Some(path) = &artifact {
        match read_artifact(engine, path) {
            Ok(Some(loaded)) => {
                let took = started.elapsed();
                let from = path.clone();
                return Ok((loaded, Loaded::Precompiled { took, from }));
            }
            Ok(None) => {}
            Err(why) => replaced = Some(why),
        }
    }
    let compiled = Component::new(engine, &bytes).map_err(HostError::Runtime)?;
    let took = started.elapsed();
    let stored = artifact.filter(|path| store(&compiled, path).is_ok());
    Ok((
        compiled,
        Loaded::Compiled {
            took,
            stored,
            replaced,
        },
    ))
}

/// `<component hash>-<engine hash>.cwasm`.
fn artifact_name(engine: &Engine, component: &[u8]) -> String {
    let mut engine_hash = Blake3Hasher(blake3::Hasher::new());
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let engine_hash = engine_hash.0.finalize();
    let component_hash = blake3::hash(component);
    format!(
        "{}-{}.cwasm",
        &component_hash.to_hex()[..32],
        &engine_hash.to_hex()[..16]
    )
}

/// Feeds what a [`Hash`] writes into blake3.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0.finalize().as_bytes()[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The artifact at `path`: `Ok(None)` if there is none, `Err` with the reason
/// it was refused.
fn read_artifact(engine: &Engine, path: &Path) -> Result<Option<Component>, String> {
    let file = match std::fs::read(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("unreadable: {e}")),
    };
    let artifact = verified(&file)?;
    deserialize(engine, artifact)
        .map(Some)
        .map_err(|e| format!("refused by wasmtime: {e}"))
}

/// The artifact bytes of an artifact file whose header and checksum are whole.
fn verified(file: &[u8]) -> Result<&[u8], String> {
    if file.len() < HEADER_LEN || file[..4] != MAGIC {
        return Err("not an artifact file".into());
    }
    let version = u32::from_le_bytes([file[4], file[5], file[6], file[7]]);
    if version != VERSION {
        return Err(format!("artifact format version {version}"));
    }
    let artifact = &file[HEADER_LEN..];
    if blake3::hash(artifact).as_bytes()[..] != file[8..HEADER_LEN] {
        return Err("checksum mismatch".into());
    }
    Ok(artifact)
}

/// Loads compiled code from `artifact`.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `artifact` is what `Component::serialize` wrote into a file of a
    // directory only this user may write (`usable_dir`), and its checksum
    // matches what was written; wasmtime checks it was made by this version
    // with this configuration before it maps any of it as code.
    unsafe { Component::deserialize(engine, artifact) }
}

/// Writes `component`'s artifact to `path` (temporary file, then rename).
fn store(component: &Component, path: &Path) -> std::io::Result<()> {
    let artifact = component.serialize().map_err(std::io::Error::other)?;
    let mut file = Vec::with_capacity(HEADER_LEN + artifact.len());
    file.extend_from_slice(&MAGIC);
    file.extend_from_slice(&VERSION.to_le_bytes());
    file.extend_from_slice(blake3::hash(&artifact).as_bytes());
    file.extend_from_slice(&artifact);
    let temp = path.with_extension(format!("{:x}.tmp", std::process::id()));
    std::fs::write(&temp, &file)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// Whether artifacts may be kept in `dir`: it is created private to the user
/// if missing; an existing one must be the user's and writable by nobody else.
fn usable_dir(dir: &Path) -> bool {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    if builder.create(dir).is_err() {
        return false;
    }
    private_to_user(dir)
}

#[cfg(unix)]
fn private_to_user(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).is_ok_and(|meta| {
        meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o022 == 0
    })
}

#[cfg(not(unix))]
fn private_to_user(_dir: &Path) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::CACHE_COMPONENT;

    /// An engine; `other` changes a setting compiled code depends on (the
    /// linear memory reservation), as another configuration of the host would.
    fn engine(other: bool) -> Engine {
        let mut config = wasmtime::Config::new();
        if other {
            config.memory_reservation(1 << 24);
        }
        Engine::new(&config).expect("engine")
    }

    fn load_in(engine: &Engine, dir: &Path) -> Loaded {
        load(engine, Path::new(CACHE_COMPONENT), Some(dir))
            .expect("load")
            .1
    }

    /// The first load compiles and stores the artifact; the next loads it, in a
    /// fraction of the time.
    #[test]
    fn a_second_load_is_precompiled() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine(false);
        let Loaded::Compiled {
            took: compiled,
            stored: Some(artifact),
            replaced: None,
        } = load_in(&engine, dir.path())
        else {
            panic!("the first load compiles and stores")
        };
        let Loaded::Precompiled { took, from } = load_in(&engine, dir.path()) else {
            panic!("the second load is precompiled")
        };
        assert_eq!(from, artifact);
        assert!(took < compiled, "{took:?} against {compiled:?}");
    }

    /// A torn artifact is refused by its checksum, compiled again and replaced.
    #[test]
    fn a_torn_artifact_is_compiled_again_and_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine(false);
        let Loaded::Compiled {
            stored: Some(artifact),
            ..
        } = load_in(&engine, dir.path())
        else {
            panic!("stored")
        };
        let mut bytes = std::fs::read(&artifact).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&artifact, &bytes).expect("tear");
        let Loaded::Compiled { replaced, .. } = load_in(&engine, dir.path()) else {
            panic!("a torn artifact is never loaded")
        };
        assert_eq!(replaced.as_deref(), Some("checksum mismatch"));
        assert!(matches!(
            load_in(&engine, dir.path()),
            Loaded::Precompiled { .. }
        ));
    }

    /// An artifact another engine made (another configuration, or another
    /// wasmtime), put in place of this engine's, is refused by wasmtime's
    /// checks and compiled again.
    #[test]
    fn an_artifact_of_another_engine_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ours, theirs) = (engine(false), engine(true));
        let Loaded::Compiled {
            stored: Some(foreign),
            ..
        } = load_in(&theirs, dir.path())
        else {
            panic!("stored")
        };
        let expected = dir.path().join(artifact_name(
            &ours,
            &std::fs::read(CACHE_COMPONENT).expect("component"),
        ));
        assert_ne!(foreign, expected, "the engines' hashes differ");
        std::fs::copy(&foreign, &expected).expect("plant");
        let Loaded::Compiled { replaced, .. } = load_in(&ours, dir.path()) else {
            panic!("a foreign artifact is never loaded")
        };
        assert!(
            replaced
                .as_deref()
                .is_some_and(|why| why.starts_with("refused by wasmtime")),
            "{replaced:?}"
        );
    }

    /// A directory other users may write to is not used: it could hold code
    /// planted by them.
    #[cfg(unix)]
    #[test]
    fn a_directory_others_may_write_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let Loaded::Compiled { stored, .. } = load_in(&engine(false), dir.path()) else {
            panic!("compiled")
        };
        assert_eq!(stored, None);
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
    }

    #[test]
    fn headers_are_checked() {
        let artifact = b"compiled code";
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&VERSION.to_le_bytes());
        file.extend_from_slice(blake3::hash(artifact).as_bytes());
        file.extend_from_slice(artifact);
        assert_eq!(verified(&file), Ok(&artifact[..]));
        let mut torn = file.clone();
        torn.pop();
        assert_eq!(verified(&torn), Err("checksum mismatch".into()));
        let mut other_version = file.clone();
        other_version[4] = 2;
        assert!(verified(&other_version).is_err());
        assert!(verified(b"FCPC").is_err());
        assert!(verified(&file[1..]).is_err());
    }
}
