//! Where a dataset's files live, and how data files are named.
//!
//! `<parent>/<name>/file_<id>.parquet` (the latest version's row groups, one
//! each, ids zero-padded so that names sort in row-group order),
//! `<parent>/<name>_opdmd` (the latest version record: the commit point),
//! `<parent>/<name>.lock` (held by writers) and the history directory
//! `<parent>/.<name>.oups/`: `files/` (every retained version's data files,
//! hard links of the same inodes), `versions/` (one record per retained
//! version) and the markers of writes and vacuums in progress.

use std::path::{Path, PathBuf};

use crate::error::{OupsError, Result};

pub const ID_DIGITS: usize = 10;
/// Exclusive upper bound of file ids (10 decimal digits).
pub const ID_LIMIT: u64 = 10_000_000_000;
const PREFIX: &str = "file_";
/// What a dataset's metadata file adds to the dataset directory's name.
pub const META_SUFFIX: &str = "_opdmd";
const SUFFIX: &str = ".parquet";
pub const TMP_PREFIX: &str = ".oups-tmp-";
/// What the hidden history directory adds to `.<name>`.
pub const HISTORY_SUFFIX: &str = ".oups";
pub const BUSY_PREFIX: &str = "busy-";
/// The marker of a staged (distributed) write in progress, by process id.
pub const STAGING_PREFIX: &str = "staging-";
const VERSION_PREFIX: &str = "v_";
const VERSION_DIGITS: usize = 20;

#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub parent: PathBuf,
    pub meta: PathBuf,
    pub lock: PathBuf,
    pub name: String,
    /// `.<name>.oups`: what older versions need, hidden from other readers.
    pub history: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Result<Self> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                OupsError::InvalidArgument(format!(
                    "'dirpath' {} has no usable final component to name the dataset",
                    dir.display()
                ))
            })?
            .to_string();
        let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Layout {
            meta: parent.join(format!("{name}{META_SUFFIX}")),
            lock: parent.join(format!("{name}.lock")),
            history: parent.join(format!(".{name}{HISTORY_SUFFIX}")),
            dir: dir.to_path_buf(),
            parent,
            name,
        })
    }

    pub fn file_path(&self, id: u64) -> PathBuf {
        self.dir.join(file_name(id))
    }

    /// Where a version recorded in `format` reads data file `id`: format 1
    /// read the dataset directory, until the first write of this release
    /// linked its files into the history directory.
    pub fn data_path(&self, id: u64, format: u32) -> PathBuf {
        if format == crate::dataset::metadata::FORMAT_NO_HISTORY {
            let first = self.file_path(id);
            if first.exists() {
                return first;
            }
        }
        self.kept_file_path(id)
    }

    /// Where every version reads its data files from (format 2).
    pub fn kept_file_path(&self, id: u64) -> PathBuf {
        self.files_dir().join(file_name(id))
    }

    pub fn files_dir(&self) -> PathBuf {
        self.history.join("files")
    }

    pub fn versions_dir(&self) -> PathBuf {
        self.history.join("versions")
    }

    pub fn version_path(&self, version: u64) -> PathBuf {
        self.versions_dir().join(version_name(version))
    }

    /// The temp file a commit writes its record to (in the history directory,
    /// so that recovery never lists the parent, which holds every dataset).
    pub fn record_tmp(&self) -> PathBuf {
        self.history
            .join(format!("{TMP_PREFIX}record-{}", std::process::id()))
    }

    /// Present while a write or a vacuum may leave files to clean up.
    pub fn staging_marker(&self) -> PathBuf {
        self.history
            .join(format!("{STAGING_PREFIX}{}", std::process::id()))
    }

    /// The name prefix of a staged write's data files (in the dataset
    /// directory, hidden and temporary until the commit renames them).
    pub fn staged_prefix(tag: &str) -> String {
        format!("{TMP_PREFIX}stage-{tag}-")
    }

    pub fn busy_marker(&self) -> PathBuf {
        self.history
            .join(format!("{BUSY_PREFIX}{}", std::process::id()))
    }

    /// The metadata temp file of format 1 (in the parent directory).
    pub fn meta_tmp(&self) -> PathBuf {
        self.parent.join(format!(
            "{TMP_PREFIX}{}{META_SUFFIX}-{}",
            self.name,
            std::process::id()
        ))
    }

    /// Whether a file in `parent` is a metadata temp file of this dataset.
    pub fn is_meta_tmp(&self, file_name: &str) -> bool {
        file_name
            .strip_prefix(TMP_PREFIX)
            .and_then(|rest| rest.strip_prefix(&self.name))
            .is_some_and(|rest| rest.starts_with("_opdmd-"))
    }
}

/// Every dataset below `root` (one whose metadata file is there), sorted;
/// hidden directories are skipped.
pub fn find_datasets(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue; // vanished or unreadable while we look
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            if let Some(stem) = name.strip_suffix(META_SUFFIX) {
                if !stem.is_empty() && path.is_file() {
                    found.push(dir.join(stem));
                }
            } else if !name.starts_with('.') && path.is_dir() {
                pending.push(path);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

pub fn file_name(id: u64) -> String {
    format!("{PREFIX}{id:0width$}{SUFFIX}", width = ID_DIGITS)
}

pub fn version_name(version: u64) -> String {
    format!("{VERSION_PREFIX}{version:0width$}", width = VERSION_DIGITS)
}

/// The version of a record name in `versions/`, `None` for any other name.
pub fn parse_version_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(VERSION_PREFIX)?;
    (digits.len() == VERSION_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The id of a data file name written by oups, `None` for any other name.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    (digits.len() == ID_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_like_ids() {
        let a = file_name(999);
        let b = file_name(1000);
        assert!(a < b);
        assert_eq!(parse_file_name(&a), Some(999));
        assert_eq!(parse_file_name("file_1.parquet"), None);
        assert_eq!(parse_file_name("notes.txt"), None);
    }

    #[test]
    fn finds_datasets_by_their_metadata_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for p in ["a_opdmd", "s/b_opdmd", ".hidden/c_opdmd", "s/_opdmd"] {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        }
        std::fs::create_dir_all(root.join("a")).unwrap();
        assert_eq!(find_datasets(root), vec![root.join("a"), root.join("s/b")]);
    }

    #[test]
    fn temp_names_are_recognised() {
        let l = Layout::new(Path::new("/x/ds")).unwrap();
        let tmp = l.meta_tmp();
        assert!(l.is_meta_tmp(tmp.file_name().unwrap().to_str().unwrap()));
        assert!(!l.is_meta_tmp(".oups-tmp-ds2_opdmd-1"));
    }
}
