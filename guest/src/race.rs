//! The two moves that keep writers safe from one another without locks; every
//! file the cache publishes or removes under contention goes through one of
//! them.
//!
//! **Stage, then rename** ([`stage`], [`Staged::commit`]). A file is written
//! under a fresh name in `tmp/`, created with `create_new` (`O_EXCL`: never
//! clobbers, never follows a planted link), then `rename`d over its final name.
//! A rename is atomic, so readers — which take no lock — see the whole old
//! file or the whole new one, never a mixture. Entries, and the census file,
//! are published this way. A file system that refuses the rename for a while
//! (FUSE, see [`over_hidden_targets`]) is waited out.
//!
//! **Move aside, judge, restore** ([`retire`]). To remove a file only if it is
//! still bad (an expired or damaged entry, an abandoned lock), it is first
//! renamed into `tmp/` — only one mover can succeed — and judged again there.
//! If another writer put a good file in its place between the first look and
//! the move, the moved file is that good file: it is put back with a hard link,
//! which fails rather than replace a still newer one. So removing a stale file
//! never deletes a fresh one a concurrent writer just reported as written. A
//! file left in `tmp/` by a writer that died meanwhile is swept later (see
//! [`crate::sweep`]).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::cache_dir::{CacheDir, Missing, Sub};
use crate::error::{Error, IoContext, MissingOk, Result, is_read_only};
use crate::layout::{self, KeyHash, ShortName};
use crate::platform::{Dir, NewFile, patiently};

/// How many fresh temp names are tried before giving up (a clash needs a nonce repeat).
const TEMP_NAME_ATTEMPTS: usize = 8;

/// A file written under a temporary name but not yet visible under its own.
/// Dropping it removes the temporary file; [`Staged::commit`] publishes it.
#[derive(Debug)]
pub(crate) struct Staged {
    tmp: Arc<Dir>,
    name: ShortName,
    done: bool,
}

/// Creates a fresh temporary file (named after `hash`) and has `write` fill it
/// — given the file, `tmp/` and the file's name there.
///
/// # Errors
/// An I/O error (or [`Error::StorageFull`]); no temporary file is left behind.
pub(crate) fn stage(
    cache: &CacheDir,
    hash: &KeyHash,
    write: impl FnOnce(&mut NewFile, &Dir, &str) -> io::Result<()>,
) -> Result<Staged> {
    let mut attempt = 1;
    let (mut file, staged) = loop {
        let name = layout::temp_name(hash);
        let created = cache.retry_created(Sub::Tmp, |tmp| {
            let file = tmp.create_new(name.as_str(), cache.access())?;
            Ok((file, Arc::clone(tmp)))
        });
        match created {
            Ok((file, tmp)) => {
                let staged = Staged {
                    tmp,
                    name,
                    done: false,
                };
                break (file, staged);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < TEMP_NAME_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => {
                let path = cache.sub_path(Sub::Tmp).join(name.as_str());
                return Err(Error::io("create temporary file", &path, e));
            }
        }
    };
    let path = cache.sub_path(Sub::Tmp).join(staged.name.as_str());
    write(&mut file, &staged.tmp, staged.name.as_str()).context("write temporary file", &path)?;
    Ok(staged)
}

impl Staged {
    /// Renames the staged file to `name` in `to` (created if missing; opened
    /// again if it was removed meanwhile), replacing what is there atomically;
    /// with `durable`, then syncs `to`.
    ///
    /// # Errors
    /// An I/O error; what was there is then untouched.
    pub(crate) fn commit(
        mut self,
        cache: &CacheDir,
        to: Sub,
        name: &str,
        durable: bool,
    ) -> Result<()> {
        let from = self.name;
        let tmp = Arc::clone(&self.tmp);
        over_hidden_targets(&tmp, from.as_str(), || {
            cache.retry_created(to, |dir| {
                tmp.rename(from.as_str(), dir, name)?;
                self.done = true;
                if durable {
                    dir.sync()?;
                }
                Ok(())
            })
        })
        .map_err(|e| {
            let source = cache.sub_path(Sub::Tmp).join(from.as_str());
            Error::rename(&source, &cache.sub_path(to).join(name), e)
        })
    }
}

impl Staged {
    /// Renames the staged file to `name` in `to` (created if missing) only if
    /// nothing is there: `Some(true)` if it did (the staged file is
    /// published), `Some(false)` if something is there, `None` if the
    /// platform cannot tell in one call — the file then stays staged.
    ///
    /// # Errors
    /// An I/O error; nothing is published then.
    pub(crate) fn commit_new(
        &mut self,
        cache: &CacheDir,
        to: Sub,
        name: &str,
        durable: bool,
    ) -> Result<Option<bool>> {
        let from = self.name;
        let tmp = Arc::clone(&self.tmp);
        let renamed = over_hidden_targets(&tmp, from.as_str(), || {
            cache.retry_created(to, |dir| {
                let renamed = tmp.rename_new(from.as_str(), dir, name)?;
                if renamed == Some(true) {
                    self.done = true;
                    if durable {
                        dir.sync()?;
                    }
                }
                Ok(renamed)
            })
        })
        .map_err(|e| {
            let source = cache.sub_path(Sub::Tmp).join(from.as_str());
            Error::rename(&source, &cache.sub_path(to).join(name), e)
        })?;
        Ok(renamed)
    }
}

/// How long publishing waits for a file it replaces to be let go of on this
/// machine, when the file system refuses to replace it (see
/// [`over_hidden_targets`]).
const HIDDEN_TARGET_PATIENCE: Duration = Duration::from_secs(1);

/// Runs `rename`, a rename of the staged file `from` in `tmp` over its final
/// name, again while it fails with `NotFound` though `from` is still there,
/// for up to [`HIDDEN_TARGET_PATIENCE`].
///
/// A FUSE file system built on libfuse's path API (sshfs) replaces or removes
/// a file that a process on this machine holds open by first renaming it to
/// a hidden name; if another machine removed the file meanwhile, that step —
/// and so the rename — fails with `NotFound`, until the holder closes the
/// file. Readers hold an entry for one read, so waiting lets the write
/// through; a rename still refused after the wait fails with an error that
/// says why, and the entry stays as the other machine left it.
fn over_hidden_targets<T>(
    tmp: &Dir,
    from: &str,
    rename: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    let refused = |e: &io::Error| e.kind() == io::ErrorKind::NotFound && tmp.stat(from).is_ok();
    patiently(HIDDEN_TARGET_PATIENCE, refused, rename).map_err(|e| {
        if refused(&e) {
            io::Error::new(
                e.kind(),
                format!(
                    "{e}: the file system would not replace the file, which a process on this \
                     machine held open for over {HIDDEN_TARGET_PATIENCE:?} after another machine \
                     removed it (a FUSE file system such as sshfs)"
                ),
            )
        } else {
            e
        }
    })
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: the sweep removes it later if this fails too.
            let _ = self.tmp.remove_held(self.name.as_str());
        }
    }
}

/// What a retirement found when it judged the moved-aside file again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retired {
    /// The file was still bad and is gone.
    Removed,
    /// Nothing was there any more (someone else removed or replaced it first).
    Vanished,
    /// A good file had replaced the bad one; it was put back (or a newer one won).
    Restored,
    /// The file system is read-only: the file is where it was.
    ReadOnly,
}

/// Removes `name` from `from` if `still_bad` holds for it once it has been
/// moved aside (given `tmp/` and its name there). `hash` names the aside
/// file. See the module docs.
///
/// # Errors
/// An I/O error if the file could not be moved aside, judged or deleted.
pub(crate) fn retire(
    cache: &CacheDir,
    from: Sub,
    name: &str,
    hash: &KeyHash,
    still_bad: impl FnOnce(&Dir, &str) -> bool,
) -> Result<Retired> {
    let aside = layout::temp_name(hash);
    let source = || cache.sub_path(from).join(name);
    let aside_path = || cache.sub_path(Sub::Tmp).join(aside.as_str());
    let Some(dir) = cache
        .sub(from, Missing::Leave)
        .context("open directory", &cache.sub_path(from))?
    else {
        return Ok(Retired::Vanished);
    };
    let moved = cache.retry_created(Sub::Tmp, |tmp| {
        dir.rename(name, tmp, aside.as_str())?;
        Ok(Arc::clone(tmp))
    });
    let tmp = match moved {
        Ok(tmp) => tmp,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Retired::Vanished),
        Err(e) if is_read_only(&e) => return Ok(Retired::ReadOnly),
        Err(e) => return Err(Error::rename(&source(), &aside_path(), e)),
    };
    let bad = still_bad(&tmp, aside.as_str());
    if !bad {
        put_back(&tmp, aside.as_str(), &dir, name)
            .map_err(|e| Error::rename(&aside_path(), &source(), e))?;
    }
    tmp.remove_held(aside.as_str())
        .missing_ok()
        .context("remove retired file", &aside_path())?;
    Ok(if bad {
        Retired::Removed
    } else {
        Retired::Restored
    })
}

/// Puts a good file moved aside by mistake back as `name` in `dir`, unless a
/// newer file has been put there meanwhile (which then wins).
fn put_back(tmp: &Dir, aside: &str, dir: &Dir, name: &str) -> io::Result<()> {
    match tmp.hard_link(aside, dir, name) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        // No hard links here (e.g. FAT): rename it back unless something newer is there.
        Err(_) => match dir.stat(name).missing_ok()? {
            Some(_) => Ok(()),
            None => tmp.rename(aside, dir, name),
        },
    }
}
