//! Versions on disk: committing a version record, reading older ones, and
//! the history directory that keeps what older versions read.
//!
//! Every data file is created in the dataset directory (the latest version,
//! as plain Parquet for other readers) and hard-linked into `files/` of the
//! history directory, where oups reads every version from: a later write
//! unlinks the first name only, so a reader of an older version finds its
//! files where it expects them until a vacuum deletes them. A version's record
//! is linked into `versions/` before the rename that makes it the latest
//! (`<name>_opdmd`): that rename is the commit point.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;

use crate::dataset::layout::{parse_file_name, parse_version_name, Layout};
use crate::dataset::metadata::{self, MetadataDoc};
use crate::dataset::state::State;
use crate::durable::{sync_dir, sync_file};
use crate::error::{IoContext, OupsError, Result};
use crate::failpoint;

/// Nanoseconds since the Unix epoch, never before `after` (so commit times
/// never go back, even if the clock does).
pub fn commit_time(after: Option<i64>) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    after.map_or(now, |a| now.max(a + 1))
}

/// Links `from` as `to`, copying where the filesystem has no hard links.
pub fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) => fs::copy(from, to)
            .map(|_| ())
            .at("cannot copy data file", to),
    }
}

/// Makes `doc` the latest version: its record is written and flushed, linked
/// into `versions/`, then renamed over `<name>_opdmd` (the commit point).
/// On failure before the rename nothing is committed and nothing is left.
pub fn commit(layout: &Layout, doc: &MetadataDoc) -> Result<()> {
    let bytes = metadata::encode(doc)?;
    let versions = layout.versions_dir();
    fs::create_dir_all(&versions).at("cannot create history directory", &versions)?;
    let tmp = layout.record_tmp();
    let record = layout.version_path(doc.version);
    let mut renamed = false;
    let result = (|| {
        let mut f = fs::File::create(&tmp).at("cannot create temp file", &tmp)?;
        f.write_all(&bytes)
            .at("cannot write version record", &tmp)?;
        sync_file(&f, &tmp)?;
        drop(f);
        // A record with this number can only be what an uncommitted write left.
        let _ = fs::remove_file(&record);
        link_or_copy(&tmp, &record)?;
        failpoint::hit("before_commit_rename");
        fs::rename(&tmp, &layout.meta).at("cannot commit metadata file", &layout.meta)?;
        renamed = true;
        // Both directories at once: a power loss that keeps the rename but
        // not the record's link loses nothing, since the latest record is
        // `<name>_opdmd` itself (and the next commit's flush keeps the link).
        let dirs = [layout.parent.clone(), versions.clone()];
        crate::dataset::parquet_io::parallel_map(&dirs, |d| sync_dir(d)).map(|_| ())
    })();
    if result.is_err() && !renamed {
        let _ = fs::remove_file(&tmp);
        let _ = fs::remove_file(&record);
    }
    result
}

/// The record of `version`; `Ok(None)` when no such version is kept.
pub fn read_version(layout: &Layout, version: u64) -> Result<Option<MetadataDoc>> {
    let path = layout.version_path(version);
    let Some(doc) = metadata::read_record(&path)? else {
        return Ok(None);
    };
    if doc.version != version {
        return Err(OupsError::corrupt(
            &path,
            format!(
                "it holds version {} under the name of version {version}",
                doc.version
            ),
        ));
    }
    Ok(Some(doc))
}

/// Every version with a record, ascending, up to `latest` (records above it
/// belong to writes that never committed).
pub fn list(layout: &Layout, latest: u64) -> Vec<u64> {
    let mut found: Vec<u64> = fs::read_dir(layout.versions_dir())
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| parse_version_name(&e.file_name().to_string_lossy()))
                .filter(|&v| v <= latest)
                .collect()
        })
        .unwrap_or_default();
    found.sort_unstable();
    found
}

/// The last kept version committed at or before `t` (ns since the epoch).
/// Commit times increase with versions, so records are probed by number:
/// O(log n) reads while the kept versions are contiguous; a gap in the way
/// (vacuumed versions around a pinned one) falls back to listing them.
pub fn version_as_of(layout: &Layout, head: &MetadataDoc, t: i64) -> Result<Option<u64>> {
    let time_of = |v: u64| -> Result<Option<i64>> {
        let doc = if v == head.version {
            Some(head.clone())
        } else {
            read_version(layout, v)?
        };
        Ok(doc.map(|d| d.committed_at.unwrap_or(i64::MIN)))
    };
    if head.committed_at.unwrap_or(i64::MIN) <= t {
        return Ok(Some(head.version));
    }
    // The first version committed after `t`, a missing record counting as earlier.
    let (mut lo, mut hi) = (1u64, head.version);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match time_of(mid)? {
            Some(at) if at > t => hi = mid,
            _ => lo = mid + 1,
        }
    }
    for v in (lo.saturating_sub(64).max(1)..lo).rev() {
        match time_of(v)? {
            Some(at) if at <= t => return Ok(Some(v)),
            Some(_) => break, // out of order: only the listing can tell
            None => {}
        }
    }
    let versions = list(layout, head.version);
    let (mut lo, mut hi) = (0usize, versions.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        match time_of(versions[mid])? {
            Some(at) if at > t => hi = mid,
            _ => lo = mid + 1,
        }
    }
    Ok(lo.checked_sub(1).map(|i| versions[i]))
}

/// What tells one record file from another that later takes its name (a
/// dataset removed and created again numbers its versions anew).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordId {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

pub fn record_id(path: &Path) -> Option<RecordId> {
    let m = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(RecordId {
        len: m.len(),
        modified: m.modified().ok(),
        inode,
    })
}

/// Whether `version` can still be read: its record is still the one `id`
/// identified when the version was opened (`None`: no record then, as for
/// format 1, where the version must be the latest). Records go before the
/// files only they need, so a reader that finds its record after opening
/// its files opened the right ones.
pub fn alive(layout: &Layout, version: u64, id: Option<&RecordId>) -> bool {
    match id {
        Some(id) => {
            crate::dataset::lease::record_exists(layout, version)
                && record_id(&layout.version_path(version)).as_ref() == Some(id)
        }
        None => {
            layout.version_path(version).exists()
                || matches!(metadata::read(layout), Ok(Some(doc)) if doc.version == version)
        }
    }
}

/// The ids of every data file that some retained version may read.
pub fn kept_ids(layout: &Layout) -> BTreeSet<u64> {
    fs::read_dir(layout.files_dir())
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| parse_file_name(&e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default()
}

/// Gives a format-1 dataset (no history) its history directory: its files
/// linked into `files/` and a record of its current version. Idempotent, so a
/// crash half-way only leaves work for the next write. Runs under the lock.
pub fn upgrade(layout: &Layout, state: &State) -> Result<()> {
    if !state.exists || state.format != metadata::FORMAT_NO_HISTORY {
        return Ok(());
    }
    let files = layout.files_dir();
    fs::create_dir_all(&files).at("cannot create history directory", &files)?;
    for rg in &state.row_groups {
        link_or_copy(
            &layout.file_path(rg.file_id),
            &layout.kept_file_path(rg.file_id),
        )?;
    }
    sync_dir(&files)?;
    let mut doc = state.to_doc();
    doc.format = metadata::FORMAT_VERSION;
    doc.committed_at = fs::metadata(&layout.meta)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64);
    doc.operation = Some("write".into());
    let versions = layout.versions_dir();
    fs::create_dir_all(&versions).at("cannot create history directory", &versions)?;
    let record = layout.version_path(doc.version);
    let tmp = layout.record_tmp();
    let mut f = fs::File::create(&tmp).at("cannot create temp file", &tmp)?;
    f.write_all(&metadata::encode(&doc)?)
        .at("cannot write version record", &tmp)?;
    sync_file(&f, &tmp)?;
    drop(f);
    fs::rename(&tmp, &record).at("cannot write version record", &record)?;
    sync_dir(&versions)
}

/// Marks a write or vacuum in progress: while the marker exists, the
/// dataset may hold files no version needs, which the next writer that finds
/// the marker (and the lock free) deletes. Removed on drop.
pub struct Busy {
    path: std::path::PathBuf,
}

impl Busy {
    pub fn mark(layout: &Layout) -> Result<Self> {
        fs::create_dir_all(&layout.history)
            .at("cannot create history directory", &layout.history)?;
        let path = layout.busy_marker();
        fs::File::create(&path).at("cannot create marker file", &path)?;
        Ok(Busy { path })
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
