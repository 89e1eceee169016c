//! Where a store keeps its snapshots, and how it pins its datasets: a local
//! directory, or a prefix on object storage.
//!
//! Locally a manifest is replaced atomically by rename; on object storage it
//! is created by a conditional put, so of two processes taking a snapshot of
//! the same name only one commits it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::Value;

use crate::dataset::layout::TMP_PREFIX;
use crate::dataset::object::ObjectDataset;
use crate::dataset::{pins, Dataset, Pin};
use crate::error::{IoContext, OupsError, Result};
use crate::storage::{is_url, Created, Location, ObjectStorage};

/// The snapshots' place, below the store: `.oups/snapshots/<name>`.
const DIR: &str = ".oups/snapshots";

pub enum StoreBase {
    Local(PathBuf),
    Object {
        url: String,
        storage: ObjectStorage,
        options: BTreeMap<String, String>,
    },
}

impl StoreBase {
    /// The store at `base`, a directory or a URL (`options` configure the
    /// client of a URL).
    pub fn open(base: &str, options: &BTreeMap<String, String>) -> Result<Self> {
        if !is_url(base) {
            return Ok(StoreBase::Local(PathBuf::from(base)));
        }
        let location = Location::parse(base)?;
        Ok(StoreBase::Object {
            url: base.trim_end_matches('/').to_string(),
            storage: ObjectStorage::open(location, options)?,
            options: options.clone(),
        })
    }

    pub fn display(&self) -> String {
        match self {
            StoreBase::Local(p) => p.display().to_string(),
            StoreBase::Object { url, .. } => url.clone(),
        }
    }

    fn dir(base: &Path) -> PathBuf {
        base.join(".oups").join("snapshots")
    }

    /// Where manifest `name` is, for messages.
    pub fn manifest_path(&self, name: &str) -> PathBuf {
        match self {
            StoreBase::Local(base) => Self::dir(base).join(name),
            StoreBase::Object { storage, .. } => {
                PathBuf::from(storage.url(&format!("{DIR}/{name}")))
            }
        }
    }

    /// `dataset` (a directory or URL below the store) relative to the
    /// store, `/`-separated.
    pub fn relative(&self, dataset: &str) -> Result<String> {
        let outside = || {
            OupsError::InvalidArgument(format!(
                "dataset {dataset} is not inside the store {}",
                self.display()
            ))
        };
        match self {
            StoreBase::Local(base) => {
                let rel = Path::new(dataset)
                    .strip_prefix(base)
                    .map_err(|_| outside())?;
                Ok(rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/"))
            }
            StoreBase::Object { url, .. } => dataset
                .strip_prefix(url.as_str())
                .and_then(|r| r.strip_prefix('/'))
                .map(|r| r.trim_end_matches('/').to_string())
                .filter(|r| !r.is_empty())
                .ok_or_else(outside),
        }
    }

    pub fn exists(&self, name: &str) -> Result<bool> {
        match self {
            StoreBase::Local(_) => Ok(self.manifest_path(name).exists()),
            StoreBase::Object { storage, .. } => {
                Ok(storage.get(&format!("{DIR}/{name}"))?.is_some())
            }
        }
    }

    /// Commits manifest `name`; false if one of that name was created first
    /// (on object storage; locally the caller checked under no lock, as
    /// before, and the rename replaces).
    pub fn commit(&self, name: &str, bytes: Vec<u8>) -> Result<bool> {
        match self {
            StoreBase::Local(base) => {
                let d = Self::dir(base);
                fs::create_dir_all(&d).at("cannot create snapshot directory", &d)?;
                let path = d.join(name);
                let tmp = d.join(format!("{TMP_PREFIX}{name}-{}", std::process::id()));
                crate::durable::replace_atomic(
                    &path,
                    &tmp,
                    "cannot write snapshot",
                    "before_snapshot_rename",
                    |mut f| {
                        f.write_all(&bytes).at("cannot write snapshot", &tmp)?;
                        Ok(f)
                    },
                )?;
                Ok(true)
            }
            StoreBase::Object { storage, .. } => Ok(matches!(
                storage.create(&format!("{DIR}/{name}"), Bytes::from(bytes))?,
                Created::New(_)
            )),
        }
    }

    /// The bytes of manifest `name`, `None` when there is none.
    pub fn manifest(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self {
            StoreBase::Local(_) => {
                let path = self.manifest_path(name);
                match fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(OupsError::io("cannot read snapshot", &path, e)),
                }
            }
            StoreBase::Object { storage, .. } => Ok(storage
                .get(&format!("{DIR}/{name}"))?
                .map(|(b, _)| b.to_vec())),
        }
    }

    /// The names of the manifests (unsorted, possibly not valid names).
    pub fn names(&self) -> Result<Vec<String>> {
        match self {
            StoreBase::Local(base) => {
                remove_dead_temps(base);
                Ok(fs::read_dir(Self::dir(base))
                    .map(|it| {
                        it.flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default())
            }
            StoreBase::Object { storage, .. } => {
                let (_, objects) = storage.list_dir(&format!("{DIR}/"))?;
                Ok(objects
                    .iter()
                    .filter_map(|m| m.location.filename().map(str::to_string))
                    .collect())
            }
        }
    }

    /// Removes manifest `name`; false if there was none.
    pub fn remove(&self, name: &str) -> Result<bool> {
        match self {
            StoreBase::Local(_) => {
                let path = self.manifest_path(name);
                match fs::remove_file(&path) {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(OupsError::io("cannot remove snapshot", &path, e)),
                }
            }
            StoreBase::Object { storage, .. } => {
                let key = format!("{DIR}/{name}");
                if storage.get(&key)?.is_none() {
                    return Ok(false);
                }
                storage.delete_many(&[key])?;
                Ok(true)
            }
        }
    }

    /// Pins the latest version of `dataset` under `name`; `None` for a
    /// dataset without versions.
    pub fn pin(&self, dataset: &str, name: &str) -> Result<Option<u64>> {
        match self {
            StoreBase::Local(_) => {
                Dataset::open(Path::new(dataset), Value::Null, None, Pin::Latest)?.pin(name, None)
            }
            StoreBase::Object { options, .. } => {
                ObjectDataset::open(dataset, options, Value::Null, Pin::Latest)?.pin(name, None)
            }
        }
    }

    /// Removes the pin `name` of `dataset`; false if it had none.
    pub fn unpin(&self, dataset: &str, name: &str) -> Result<bool> {
        match self {
            StoreBase::Local(_) => {
                Dataset::open(Path::new(dataset), Value::Null, None, Pin::Latest)?.unpin(name)
            }
            StoreBase::Object { options, .. } => {
                ObjectDataset::open(dataset, options, Value::Null, Pin::Latest)?.unpin(name)
            }
        }
    }
}

/// Temp files of snapshot creations whose process died (listing or taking a
/// snapshot tidies them).
pub fn remove_dead_temps(base: &Path) {
    let Ok(entries) = fs::read_dir(StoreBase::dir(base)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(TMP_PREFIX) else {
            continue;
        };
        let pid = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_none_or(|p| !crate::dataset::retention::process_alive(p)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Snapshot names become file and object names: a safe, portable subset.
pub fn check_name(name: &str) -> Result<()> {
    pins::check_name(name)
}
