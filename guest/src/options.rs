//! How a cache is opened, and when entries expire.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::format::NEVER;
use crate::platform::Access;

/// Options of [`crate::FileStore::open`]. Start from `Options::default()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Flush each entry and its directory to stable storage before `insert`
    /// returns, so it survives a power cut. Default: `false` — a write torn by a
    /// power cut is caught by the entry checksum and read as a miss.
    pub durable: bool,
    /// Largest accepted key, in UTF-8 bytes. Default: 16 KiB.
    pub max_key_bytes: usize,
    /// Largest accepted value, in bytes. Default: 64 MiB.
    pub max_value_bytes: u64,
    /// Age after which a temporary or lock file left by a writer is presumed
    /// abandoned (its writer died) and is reclaimed. A write, including its sync,
    /// must finish within the lease. Default: 10 s.
    pub lease: Duration,
    /// How long an atomic operation ([`crate::FileStore::increment`] and the
    /// like) waits for another writer's lock on the same key before returning
    /// [`Error::Busy`]. Default: 12 s — longer than the default lease, so a lock
    /// left by a writer that died is always reclaimed within one wait.
    pub lock_timeout: Duration,
    /// Keep at most about this many entries, evicting expired entries first,
    /// then the least recently used. Default: no limit. One handle alone keeps
    /// the limit after each write; `P` handles writing at once may exceed it
    /// for a moment by up to `(P − 1) × (F + 1) + 1` entries plus 3 %, `F` =
    /// the limit / 256 between 1 and 32 (see the README's guarantees).
    pub max_entries: Option<u64>,
    /// Keep the entry files at most about this many bytes in all (headers, keys
    /// and values), evicting likewise. Default: no limit.
    pub max_bytes: Option<u64>,
    /// Let the directory's group use the cache too. Default: `false` — on Unix
    /// the directories the cache creates are `0700` and its files `0600`, so
    /// no other user can read a cached value. With `true` they are `2770` and
    /// `0660`, set whatever the umask, for a cache shared by the users of one
    /// group (make the cache directory's group that group). Under WASI and on
    /// Windows there are no such modes: the host or the system decides.
    pub group_shared: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            durable: false,
            max_key_bytes: 16 * 1024,
            max_value_bytes: 64 * 1024 * 1024,
            lease: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(12),
            max_entries: None,
            max_bytes: None,
            group_shared: false,
        }
    }
}

impl Options {
    /// Who may use the files the cache creates.
    pub(crate) fn access(&self) -> Access {
        if self.group_shared {
            Access::GroupShared
        } else {
            Access::Private
        }
    }

    /// Checks that the options make sense.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a zero key limit, lease or size limit.
    pub fn validate(&self) -> Result<()> {
        if self.max_key_bytes == 0 {
            return Err(Error::invalid("max-key-bytes must be at least 1"));
        }
        if u32::try_from(self.max_key_bytes).is_err() {
            return Err(Error::invalid("max-key-bytes must fit in 32 bits"));
        }
        if self.lease.is_zero() {
            return Err(Error::invalid("the lease must be longer than zero"));
        }
        if self.max_entries == Some(0) {
            return Err(Error::invalid("max-entries must be at least 1"));
        }
        if self.max_bytes == Some(0) {
            return Err(Error::invalid("max-bytes must be at least 1"));
        }
        Ok(())
    }
}

/// When an entry stops being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// Never: the entry lives until removed, overwritten or cleared.
    #[default]
    Never,
    /// This long after the insert (millisecond precision).
    After(Duration),
    /// At this wall-clock time (millisecond precision); a past time stores an
    /// already-expired entry.
    At(SystemTime),
}

impl Expiry {
    /// Expiry at a wall-clock time given in Unix milliseconds.
    pub fn at_unix_ms(ms: u64) -> Self {
        Self::At(UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// The `expires_at` field for an entry written now. Reads the clock only
    /// for [`Expiry::After`] (under WASI, reading it is a host call).
    pub(crate) fn deadline_ms(&self) -> u64 {
        self.deadline_ms_from(now_ms)
    }

    /// The `expires_at` field for an entry written at `now_ms()`.
    fn deadline_ms_from(&self, now_ms: impl FnOnce() -> u64) -> u64 {
        let deadline = match self {
            Self::Never => return NEVER,
            Self::After(duration) => now_ms().saturating_add(millis(*duration)),
            Self::At(time) => unix_ms(*time),
        };
        // `NEVER` is reserved; a deadline that far away is never reached anyway.
        deadline.min(NEVER - 1)
    }
}

/// Milliseconds in a duration, rounded up so a short positive TTL never means "now".
fn millis(duration: Duration) -> u64 {
    let ms = duration.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// A wall-clock time as Unix milliseconds (times before 1970 are 0).
pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The current wall-clock time in Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// Whether an entry that expires at `expires_at` is expired now. Reads the
/// clock only for entries that expire.
pub(crate) fn expired_now(expires_at: u64) -> bool {
    expires_at != NEVER && crate::format::is_expired(expires_at, now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        assert_eq!(Expiry::Never.deadline_ms_from(|| 5), NEVER);
        assert_eq!(
            Expiry::After(Duration::from_millis(300)).deadline_ms_from(|| 1000),
            1300
        );
        assert_eq!(
            Expiry::After(Duration::from_nanos(1)).deadline_ms_from(|| 1000),
            1001
        );
        assert_eq!(
            Expiry::After(Duration::MAX).deadline_ms_from(|| 1000),
            NEVER - 1
        );
        assert_eq!(Expiry::at_unix_ms(42).deadline_ms_from(|| 1000), 42);
        assert_eq!(
            Expiry::At(UNIX_EPOCH - Duration::from_secs(1)).deadline_ms_from(|| 9),
            0
        );
    }

    #[test]
    fn validation() {
        assert!(Options::default().validate().is_ok());
        let zero_lease = Options {
            lease: Duration::ZERO,
            ..Options::default()
        };
        assert!(matches!(
            zero_lease.validate(),
            Err(Error::InvalidInput { .. })
        ));
    }
}
