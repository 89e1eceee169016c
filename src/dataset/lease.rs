//! Read leases: a reader's claim on the version it reads, which vacuums
//! respect. Taking one never waits and never blocks a writer.
//!
//! A lease is a file `leases/<version>-<pid>-<n>` in the history directory,
//! held with a shared OS lock for as long as some object of the process reads
//! that version (objects of one process share it). The OS drops the lock when
//! the process dies; a vacuum that can lock a lease file exclusively knows
//! its holder is gone and deletes it.
//!
//! Protocol against a concurrent vacuum: a vacuum renames a doomed version's
//! record aside, lists the leases, and renames the record back if a lease
//! names it. A reader takes its lease, then checks that the record is there
//! (waiting while it is aside). Whichever order the two run in, either the
//! vacuum sees the lease or the reader sees the version gone.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use fs4::{FileExt, TryLockError};

use crate::dataset::layout::Layout;

pub struct Lease {
    path: PathBuf,
    _file: File,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({})", self.path.display())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Unlinked first: a vacuum that finds the file can lock it or not,
        // both are right.
        let _ = fs::remove_file(&self.path);
    }
}

type Registry = Mutex<HashMap<(PathBuf, u64), Weak<Lease>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn leases_dir(layout: &Layout) -> PathBuf {
    layout.history.join("leases")
}

/// Takes (or shares) a lease on `version`; `None` where none can be taken
/// (a read-only directory, a format-1 dataset): reads still check that their
/// version was not vacuumed, they only lose the protection.
pub fn take(layout: &Layout, version: u64) -> Option<Arc<Lease>> {
    if !layout.history.is_dir() {
        return None;
    }
    let key = (layout.history.clone(), version);
    let mut map = registry().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(lease) = map.get(&key).and_then(Weak::upgrade) {
        return Some(lease);
    }
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = leases_dir(layout);
    fs::create_dir_all(&dir).ok()?;
    let path = dir.join(format!(
        "{version:020}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .ok()?;
    if FileExt::try_lock_shared(&file).is_err() {
        let _ = fs::remove_file(&path);
        return None;
    }
    let lease = Arc::new(Lease { path, _file: file });
    map.retain(|_, w| w.strong_count() > 0);
    map.insert(key, Arc::downgrade(&lease));
    Some(lease)
}

/// The versions live readers hold leases on; leases of dead processes are
/// deleted on the way.
pub fn leased(layout: &Layout) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    let Ok(entries) = fs::read_dir(leases_dir(layout)) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(version) = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        if held(&entry.path()) {
            out.insert(version);
        } else {
            let _ = fs::remove_file(entry.path());
        }
    }
    out
}

fn held(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false; // released meanwhile
    };
    match FileExt::try_lock(&file) {
        Ok(()) => {
            let _ = FileExt::unlock(&file);
            false
        }
        Err(TryLockError::WouldBlock) => true,
        // Cannot tell: keep the version.
        Err(TryLockError::Error(_)) => true,
    }
}

/// The name a vacuum gives a doomed record while it checks the leases.
pub fn aside_path(layout: &Layout, version: u64) -> PathBuf {
    let record = layout.version_path(version);
    let mut name = record.file_name().unwrap_or_default().to_os_string();
    name.push(".aside");
    record.with_file_name(name)
}

/// Whether `version`'s record exists, waiting (briefly) while a vacuum has
/// it aside.
pub fn record_exists(layout: &Layout, version: u64) -> bool {
    let record = layout.version_path(version);
    let aside = aside_path(layout, version);
    let start = Instant::now();
    loop {
        if record.exists() {
            return true;
        }
        if !aside.exists() || start.elapsed() > Duration::from_secs(5) {
            return record.exists();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
