//! Exclusive dataset locks on `<name>.lock` with OS advisory locks (fs4).
//!
//! The OS drops the lock when its holder dies, so a crashed process never
//! blocks anyone. Within one process, opening the same dataset twice shares
//! the lock (a registry of live locks keyed by path) instead of waiting on
//! itself. The lock file is deleted on release; an acquirer checks after
//! locking that the path still names the file it locked, and retries if a
//! releasing holder unlinked it in between.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use fs4::FileExt;
use fs4::TryLockError;

use crate::error::{IoContext, OupsError, Result};

pub struct DatasetLock {
    path: PathBuf,
    file: File,
    /// Serialises writers that share this lock inside the process.
    pub writer: Mutex<()>,
}

impl Drop for DatasetLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock, so no new holder's file is removed.
        let _ = fs::remove_file(&self.path);
        let _ = FileExt::unlock(&self.file);
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<DatasetLock>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Weak<DatasetLock>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn shared(path: &Path) -> Option<Arc<DatasetLock>> {
    let map = registry().lock().unwrap_or_else(|p| p.into_inner());
    map.get(path).and_then(Weak::upgrade)
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Acquires (or shares) the lock. `timeout` in seconds; `None` waits forever.
pub fn acquire(path: &Path, timeout: Option<f64>) -> Result<Arc<DatasetLock>> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(lock) = shared(path) {
            return Ok(lock);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at("cannot open lock file", path)?;
        match FileExt::try_lock(&file) {
            Ok(()) if same_file(&file, path) => {
                let lock = Arc::new(DatasetLock {
                    path: path.to_path_buf(),
                    file,
                    writer: Mutex::new(()),
                });
                let mut map = registry().lock().unwrap_or_else(|p| p.into_inner());
                map.retain(|_, w| w.strong_count() > 0);
                map.insert(path.to_path_buf(), Arc::downgrade(&lock));
                return Ok(lock);
            }
            // Locked a file its holder unlinked on release: try the new one.
            Ok(()) => continue,
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(OupsError::io("cannot lock", path, e));
            }
        }
        if let Some(t) = timeout {
            if start.elapsed().as_secs_f64() >= t {
                return Err(OupsError::LockTimeout {
                    path: path.with_extension(""),
                    seconds: t,
                });
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_process_shares_and_release_deletes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ds.lock");
        let a = acquire(&p, Some(0.0)).unwrap();
        let b = acquire(&p, Some(0.0)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        drop(a);
        assert!(p.exists());
        drop(b);
        assert!(!p.exists());
        let c = acquire(&p, Some(0.0)).unwrap();
        drop(c);
    }
}
