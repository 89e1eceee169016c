//! Named store snapshots: the version of every dataset of a store at one
//! moment, read back exactly. Each dataset pins its version under the
//! snapshot's name (so vacuums keep it), then the manifest
//! `<base>/.oups/snapshots/<name>` lists them: writing it commits the snapshot.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::layout::TMP_PREFIX;
use crate::dataset::metadata::{decode_framed, encode_framed};
use crate::dataset::{pins, Dataset, Pin};
use crate::error::{IoContext, OupsError, Result};

const MAGIC: &str = "OUPS-SNAPSHOT";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// The dataset directory relative to the store, `/`-separated.
    pub path: String,
    pub version: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoreSnapshot {
    pub name: String,
    /// Nanoseconds since the Unix epoch (UTC).
    pub created_at: i64,
    pub datasets: Vec<Entry>,
}

fn dir(base: &Path) -> PathBuf {
    base.join(".oups").join("snapshots")
}

fn manifest(base: &Path, name: &str) -> PathBuf {
    dir(base).join(name)
}

fn relative(base: &Path, dataset: &Path) -> Result<String> {
    let rel = dataset.strip_prefix(base).map_err(|_| {
        OupsError::InvalidArgument(format!(
            "dataset {} is not inside the store {}",
            dataset.display(),
            base.display()
        ))
    })?;
    Ok(rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/"))
}

/// Pins the latest version of each of `datasets` (directories under `base`)
/// as `name` and commits the manifest. Datasets without a version are left
/// out. On failure the pins taken are removed and nothing is committed.
pub fn create(base: &Path, name: &str, datasets: &[PathBuf]) -> Result<StoreSnapshot> {
    pins::check_name(name)?;
    remove_dead_temps(base);
    let path = manifest(base, name);
    if path.exists() {
        return Err(OupsError::InvalidArgument(format!(
            "snapshot {name:?} already exists in store {}; delete it first or choose another name",
            base.display()
        )));
    }
    let mut pinned: Vec<&PathBuf> = Vec::new();
    let result = (|| {
        let mut entries = Vec::with_capacity(datasets.len());
        for ds_path in datasets {
            let mut ds = Dataset::open(ds_path, serde_json::Value::Null, None, Pin::Latest)?;
            if let Some(version) = ds.pin(name, None)? {
                pinned.push(ds_path);
                entries.push(Entry {
                    path: relative(base, ds_path)?,
                    version,
                });
            }
        }
        let snapshot = StoreSnapshot {
            name: name.to_string(),
            created_at: crate::dataset::history::commit_time(None),
            datasets: entries,
        };
        let bytes = encode_framed(MAGIC, FORMAT, &snapshot)?;
        let d = dir(base);
        fs::create_dir_all(&d).at("cannot create snapshot directory", &d)?;
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
        Ok(snapshot)
    })();
    if result.is_err() {
        for ds_path in pinned {
            if let Ok(mut ds) = Dataset::open(ds_path, serde_json::Value::Null, None, Pin::Latest) {
                let _ = ds.unpin(name);
            }
        }
    }
    result
}

pub fn read(base: &Path, name: &str) -> Result<StoreSnapshot> {
    pins::check_name(name)?;
    let path = manifest(base, name);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(OupsError::VersionNotFound(format!(
                "store {} has no snapshot {name:?} (its snapshots: {:?})",
                base.display(),
                list(base)
            )))
        }
        Err(e) => return Err(OupsError::io("cannot read snapshot", &path, e)),
    };
    let (format, body) = decode_framed(&bytes, MAGIC, &path)?;
    if format != FORMAT {
        return Err(OupsError::corrupt(
            &path,
            format!("snapshot format {format} is not supported; upgrade oups"),
        ));
    }
    let snapshot: StoreSnapshot = serde_json::from_slice(body)
        .map_err(|e| OupsError::corrupt(&path, format!("invalid snapshot content: {e}")))?;
    if snapshot.name != name {
        return Err(OupsError::corrupt(&path, "it names another snapshot"));
    }
    for e in &snapshot.datasets {
        // Paths stay inside the store whatever the file says.
        if e.path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(OupsError::corrupt(
                &path,
                format!("dataset path {:?} leaves the store", e.path),
            ));
        }
    }
    Ok(snapshot)
}

/// Temp files of snapshot creations whose process died (listing or taking a
/// snapshot tidies them).
fn remove_dead_temps(base: &Path) {
    let Ok(entries) = fs::read_dir(dir(base)) else {
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

/// The names of the store's snapshots, sorted.
pub fn list(base: &Path) -> Vec<String> {
    remove_dead_temps(base);
    let mut names: Vec<String> = fs::read_dir(dir(base))
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| pins::check_name(n).is_ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Removes the snapshot: the manifest first (so a crash leaves only pins,
/// which a repeated delete removes), then the pin of each of `datasets`.
pub fn delete(base: &Path, name: &str, datasets: &[PathBuf]) -> Result<bool> {
    pins::check_name(name)?;
    let path = manifest(base, name);
    let existed = match fs::remove_file(&path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(OupsError::io("cannot remove snapshot", &path, e)),
    };
    let mut unpinned = false;
    for ds_path in datasets {
        let mut ds = Dataset::open(ds_path, serde_json::Value::Null, None, Pin::Latest)?;
        unpinned |= ds.unpin(name)?;
    }
    Ok(existed || unpinned)
}
