//! Durability helpers shared by every file oups commits: optional fsync of
//! files and of the directory that holds a rename.

use std::fs;
use std::path::Path;

use crate::error::{IoContext, Result};

/// Whether writes are flushed to disk (`fsync`). On by default; the
/// environment variable `OUPS_FSYNC=0` turns it off, keeping writes atomic
/// against process crashes but not against power loss (like SQLite's
/// `synchronous=OFF`).
pub fn fsync_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("OUPS_FSYNC").map_or(true, |v| v.trim() != "0"))
}

/// Flushes a file to disk unless fsync is disabled.
pub fn sync_file(file: &fs::File, path: &Path) -> Result<()> {
    if fsync_enabled() {
        file.sync_all().at("cannot sync", path)?;
    }
    Ok(())
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
