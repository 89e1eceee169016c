//! Durability helpers shared by every file oups commits: optional fsync of
//! files and of the directory that holds a rename.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// Whether writes are flushed to disk (`fsync`). On by default; the
/// environment variable `OUPS_FSYNC=0` turns it off, keeping writes atomic
/// against process crashes but not against power loss (like SQLite's
/// `synchronous=OFF`).
pub fn fsync_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("OUPS_FSYNC").map_or(true, |v| v.trim() != "0"))
}

/// Flushes a file's data (and the size needed to read it back) to disk
/// unless fsync is disabled.
pub fn sync_file(file: &fs::File, path: &Path) -> Result<()> {
    if fsync_enabled() {
        file.sync_data().at("cannot sync", path)?;
    }
    Ok(())
}

/// Starts writing a file's dirty pages to disk without waiting, so that the
/// [`sync_file`] that follows, after more work, finds them mostly written:
/// the device works while the next file is encoded. Linux only; elsewhere
/// (and with fsync disabled) a no-op.
pub fn start_writeback(file: &fs::File) {
    #[cfg(target_os = "linux")]
    if fsync_enabled() {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; the call only schedules I/O.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Makes a rename or creation durable (a no-op where directories cannot be opened).
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    if fsync_enabled() {
        let d = fs::File::open(dir).at("cannot open directory", dir)?;
        d.sync_all().at("cannot sync directory", dir)?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Replaces `target` atomically: `write` fills a new file `tmp` (in the same
/// directory) and hands it back, which is flushed to disk, renamed over
/// `target`, and the rename made durable. On any failure `target` is left as
/// it was and `tmp` is removed. `before_rename` names the failpoint hit just
/// before the rename (the commit point).
pub fn replace_atomic(
    target: &Path,
    tmp: &Path,
    what: &'static str,
    before_rename: &str,
    write: impl FnOnce(fs::File) -> Result<fs::File>,
) -> Result<()> {
    let result = (|| {
        let file = fs::File::create(tmp).at("cannot create temp file", tmp)?;
        let file = write(file)?;
        sync_file(&file, tmp)?;
        drop(file);
        crate::failpoint::hit(before_rename);
        fs::rename(tmp, target).at(what, target)?;
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        sync_dir(&parent)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}
