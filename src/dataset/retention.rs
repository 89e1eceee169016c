//! Which versions stay on disk (retention and vacuum), and the recovery that
//! deletes what an interrupted write or vacuum left.
//!
//! A file is needed while some retained version lists it; everything else in
//! the dataset's directories is an orphan. Both run under the writer lock.

use std::collections::BTreeSet;
use std::fs;

use crate::dataset::history::{self, Busy};
use crate::dataset::layout::{
    parse_file_name, parse_version_name, Layout, BUSY_PREFIX, STAGING_PREFIX, TMP_PREFIX,
};
use crate::dataset::metadata::{self, FORMAT_NO_HISTORY};
use crate::dataset::{lease, pins};
use crate::error::{OupsError, Result};
use crate::failpoint;

/// Versions kept by default besides the named snapshots: enough to undo the
/// last writes, few enough that a dataset receiving frequent appends (each
/// rewriting its tail) keeps a bounded number of old tails.
pub const DEFAULT_KEEP_VERSIONS: u64 = 10;

/// What a vacuum keeps: the latest version always, the `keep_versions`
/// most recent ones, those superseded less than `keep_seconds` ago, and
/// `pinned` (snapshots, readers).
#[derive(Debug, Clone, Default)]
pub struct Retention {
    pub keep_versions: Option<u64>,
    pub keep_seconds: Option<f64>,
    pub pinned: BTreeSet<u64>,
}

impl Retention {
    /// A dataset's recorded retention; none recorded: the default.
    pub fn of(doc: Option<&crate::dataset::metadata::RetentionDoc>) -> Self {
        match doc {
            Some(r) => Retention {
                keep_versions: r.keep_versions,
                keep_seconds: r.keep_seconds,
                ..Default::default()
            },
            None => Retention {
                keep_versions: Some(DEFAULT_KEEP_VERSIONS),
                ..Default::default()
            },
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VacuumReport {
    pub versions_removed: Vec<u64>,
    pub files_removed: usize,
}

/// Whether an interrupted write, vacuum or removal may have left files:
/// cheap, for every open (it lists the small history directory only). The
/// markers and temp files of a live process are its work in progress, not
/// litter, so readers leave the lock alone while a writer works; under the
/// lock (`locked`) every marker is litter, whatever process id it names.
pub fn needs_recovery(layout: &Layout, head_exists: bool, locked: bool) -> bool {
    let (mut live, mut dead) = (false, false);
    for (name, _) in entries(&layout.history) {
        let pid = if let Some(rest) = name.strip_prefix(STAGING_PREFIX) {
            match rest.parse::<u32>().ok() {
                // This process stages a write under the lock it holds: its
                // files are work in progress, never litter.
                Some(pid) if pid == std::process::id() => {
                    live = true;
                    continue;
                }
                pid => pid,
            }
        } else if let Some(rest) = name.strip_prefix(BUSY_PREFIX) {
            rest.parse::<u32>().ok()
        } else if let Some(rest) = name.strip_prefix(TMP_PREFIX) {
            rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok())
        } else {
            continue;
        };
        match pid {
            Some(pid) if !locked && process_alive(pid) => live = true,
            _ => dead = true,
        }
    }
    // A data directory without a latest record: an interrupted first write
    // or removal of a format-1 dataset (format 2 leaves a marker).
    dead || (!head_exists && !live && layout.dir.exists())
}

/// Whether a process with this id runs on this machine (a reused id only
/// delays a recovery until the next write, which always checks under the lock).
pub fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Deletes every file no retained version needs. Must run under the lock.
pub fn recover(layout: &Layout) -> Result<()> {
    let head = metadata::read(layout)?;
    let latest: BTreeSet<u64> = head
        .iter()
        .flat_map(|d| d.row_groups.iter().map(|r| r.file_id))
        .collect();
    // The dataset directory holds exactly the latest version's files.
    for (name, path) in entries(&layout.dir) {
        let orphan = match parse_file_name(&name) {
            Some(id) => !latest.contains(&id),
            None => name.starts_with(TMP_PREFIX),
        };
        if orphan {
            let _ = fs::remove_file(path);
        }
    }
    if latest.is_empty() {
        let _ = fs::remove_dir(&layout.dir);
    }
    let Some(head) = head else {
        // No latest record: the dataset does not exist (a first write or a
        // removal was interrupted), so only what snapshots pin is needed.
        remove_legacy_temps(layout);
        return prune_to_pins(layout);
    };
    if head.format == FORMAT_NO_HISTORY {
        remove_legacy_temps(layout);
    }
    let leased = lease::leased(layout);
    for (name, path) in entries(&layout.versions_dir()) {
        match parse_version_name(&name) {
            Some(v) if v > head.version => {
                let _ = fs::remove_file(path);
            }
            Some(_) => {}
            None => {
                // A record a vacuum put aside when it died: doomed, unless a
                // reader leased it meanwhile.
                let aside = name.strip_suffix(".aside").and_then(parse_version_name);
                match aside {
                    Some(v) if leased.contains(&v) => {
                        let _ = fs::rename(&path, layout.version_path(v));
                    }
                    Some(_) => {
                        let _ = fs::remove_file(path);
                    }
                    None if name.starts_with(TMP_PREFIX) => {
                        let _ = fs::remove_file(path);
                    }
                    None => {}
                }
            }
        }
    }
    let mut needed = latest;
    for v in history::list(layout, head.version) {
        if let Some(doc) = history::read_version(layout, v)? {
            needed.extend(doc.row_groups.iter().map(|r| r.file_id));
        }
    }
    remove_unneeded_files(layout, &needed);
    // Last: until the files are gone, the marker says there is work left.
    remove_litter(layout);
    Ok(())
}

/// Deletes the versions `retention` does not keep, then the files only they
/// listed. Records go first: a reader checks that its version's record still
/// exists after opening its files, so it never reads a reused file id.
pub fn vacuum(layout: &Layout, latest: u64, retention: &Retention) -> Result<VacuumReport> {
    let versions = history::list(layout, latest);
    let mut keep: BTreeSet<u64> = retention.pinned.clone();
    keep.insert(latest);
    keep.extend(lease::leased(layout));
    keep.extend(pins::pinned(layout)?);
    if let Some(k) = retention.keep_versions {
        keep.extend(versions.iter().rev().take(k.max(1) as usize));
    } else if retention.keep_seconds.is_none() {
        keep.extend(versions.iter());
    }
    if let Some(seconds) = retention.keep_seconds {
        if seconds.is_nan() || seconds < 0.0 {
            return Err(OupsError::InvalidArgument(format!(
                "'older_than' must be a duration >= 0, got {seconds} seconds"
            )));
        }
        let horizon = history::commit_time(None) - (seconds * 1e9) as i64;
        // A version is superseded when the next one commits.
        for pair in versions.windows(2) {
            let next = history::read_version(layout, pair[1])?;
            let superseded = next.and_then(|d| d.committed_at).unwrap_or(i64::MAX);
            if superseded >= horizon {
                keep.insert(pair[0]);
            }
        }
    }
    let doomed: Vec<u64> = versions
        .iter()
        .copied()
        .filter(|v| !keep.contains(v))
        .collect();
    if doomed.is_empty() {
        return Ok(VacuumReport::default());
    }
    let _busy = Busy::mark(layout)?;
    // Records go aside first, then the leases are listed again: a reader that
    // leased a doomed version meanwhile keeps it (see `lease`).
    let mut aside = Vec::with_capacity(doomed.len());
    for v in &doomed {
        let (record, moved) = (layout.version_path(*v), lease::aside_path(layout, *v));
        match fs::rename(&record, &moved) {
            Ok(()) => aside.push(*v),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(OupsError::io("cannot remove version record", &record, e)),
        }
    }
    let leased_now = lease::leased(layout);
    let mut doomed = Vec::with_capacity(aside.len());
    for v in aside {
        let moved = lease::aside_path(layout, v);
        if leased_now.contains(&v) {
            let _ = fs::rename(&moved, layout.version_path(v));
        } else {
            let _ = fs::remove_file(&moved);
            doomed.push(v);
        }
        if doomed.len() == 1 {
            failpoint::hit("during_vacuum");
        }
    }
    let mut needed = BTreeSet::new();
    for v in history::list(layout, latest) {
        if let Some(doc) = history::read_version(layout, v)? {
            needed.extend(doc.row_groups.iter().map(|r| r.file_id));
        }
    }
    if let Some(head) = metadata::read(layout)? {
        needed.extend(head.row_groups.iter().map(|r| r.file_id));
    }
    let files_removed = remove_unneeded_files(layout, &needed);
    Ok(VacuumReport {
        versions_removed: doomed,
        files_removed,
    })
}

/// Keeps, of a dataset that no longer exists, only the versions snapshots
/// pin (and their files); without pins the history directory goes. Under
/// the lock.
pub fn prune_to_pins(layout: &Layout) -> Result<()> {
    if !layout.history.exists() {
        return Ok(());
    }
    let pinned = pins::pinned(layout)?;
    if pinned.is_empty() {
        // Records first, data files next, the directory (with the busy
        // marker of the removal) last: an interrupted removal leaves the
        // marker, and the next open finishes it.
        for sub in ["versions", "pins", "files", "leases"] {
            remove_tree(&layout.history.join(sub))?;
        }
        return remove_tree(&layout.history);
    }
    let mut needed = BTreeSet::new();
    for (name, path) in entries(&layout.versions_dir()) {
        match parse_version_name(&name) {
            Some(v) if pinned.contains(&v) => {
                if let Some(doc) = history::read_version(layout, v)? {
                    needed.extend(doc.row_groups.iter().map(|r| r.file_id));
                }
            }
            _ => {
                let _ = fs::remove_file(path);
            }
        }
    }
    failpoint::hit("during_prune_to_pins");
    remove_unneeded_files(layout, &needed);
    // Last: until the files are gone, the marker says there is work left.
    remove_litter(layout);
    Ok(())
}

/// Markers and temp files of the history directory and of its pins.
fn remove_litter(layout: &Layout) {
    for dir in [layout.history.clone(), layout.history.join("pins")] {
        for (name, path) in entries(&dir) {
            if name.starts_with(BUSY_PREFIX)
                || name.starts_with(TMP_PREFIX)
                || name.starts_with(STAGING_PREFIX)
            {
                let _ = fs::remove_file(path);
            }
        }
    }
}

fn remove_tree(dir: &std::path::Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(OupsError::io("cannot remove", dir, e))
        }
        _ => Ok(()),
    }
}

fn remove_unneeded_files(layout: &Layout, needed: &BTreeSet<u64>) -> usize {
    let mut removed = 0;
    for (name, path) in entries(&layout.files_dir()) {
        let unneeded = match parse_file_name(&name) {
            Some(id) => !needed.contains(&id),
            None => name.starts_with(TMP_PREFIX),
        };
        if unneeded && fs::remove_file(path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Format-1 commits wrote their metadata temp file in the parent directory.
fn remove_legacy_temps(layout: &Layout) {
    for (name, path) in entries(&layout.parent) {
        if layout.is_meta_tmp(&name) {
            let _ = fs::remove_file(path);
        }
    }
}

fn entries(dir: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
    fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .collect()
        })
        .unwrap_or_default()
}
