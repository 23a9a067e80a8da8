//! One daemon per data directory: `{data_dir}/thwonk.lock`, held with an exclusive `flock`
//! for the life of the process (the kernel releases it when the process dies, however it
//! dies, so a stale file never blocks a restart).
//!
//! `serve` (and `api`, which owns the admin socket) take it before touching anything in the
//! directory: a second daemon started on the same directory changes nothing (it does not
//! stop the first one's private Redis, nor replace its admin socket) and exits with status 1.

use anyhow::{Context, Result, bail};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

/// The lock file's name in the data directory.
pub const LOCK_NAME: &str = "thwonk.lock";

/// The held lock; released when dropped (or when the process exits).
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Take the lock of `data_dir`, or say which daemon holds it.
    pub fn take(data_dir: &Path) -> Result<DataDirLock> {
        let path = data_dir.join(LOCK_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                bail!(
                    "another thwonk daemon{holder} is serving the data directory {}; \
                     nothing was changed (stop that daemon first, or give this one its own \
                     --data-dir)",
                    data_dir.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        // The holder's pid, for the message above; the lock itself is what counts.
        file.set_len(0)
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::take(dir.path()).unwrap();
        let e = DataDirLock::take(dir.path()).err().unwrap().to_string();
        assert!(e.contains("another thwonk daemon"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        DataDirLock::take(dir.path()).unwrap();
    }
}
