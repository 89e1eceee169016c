//! Named store snapshots: the version of every dataset of a store at one
//! moment, read back exactly. Each dataset pins its version under the
//! snapshot's name (so vacuums keep it), then the manifest
//! `<base>/.oups/snapshots/<name>` lists them: writing it commits the snapshot.
//! The store may be a directory or a prefix on object storage
//! ([`StoreBase`]).

use serde::{Deserialize, Serialize};

use crate::dataset::metadata::{decode_framed, encode_framed};
use crate::error::{OupsError, Result};
pub use crate::store::snapshot_base::StoreBase;
use crate::store::snapshot_base::{check_name, remove_dead_temps};

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

fn already_exists(base: &StoreBase, name: &str) -> OupsError {
    OupsError::InvalidArgument(format!(
        "snapshot {name:?} already exists in store {}; delete it first or choose another name",
        base.display()
    ))
}

/// Pins the latest version of each of `datasets` (directories or URLs under
/// the store) as `name` and commits the manifest. Datasets without a version
/// are left out. On failure the pins taken are removed and nothing is
/// committed.
pub fn create(base: &StoreBase, name: &str, datasets: &[String]) -> Result<StoreSnapshot> {
    check_name(name)?;
    if let StoreBase::Local(dir) = base {
        remove_dead_temps(dir);
    }
    if base.exists(name)? {
        return Err(already_exists(base, name));
    }
    let mut pinned: Vec<&String> = Vec::new();
    let result = (|| {
        let mut entries = Vec::with_capacity(datasets.len());
        for ds in datasets {
            let path = base.relative(ds)?;
            if let Some(version) = base.pin(ds, name)? {
                pinned.push(ds);
                entries.push(Entry { path, version });
            }
        }
        let snapshot = StoreSnapshot {
            name: name.to_string(),
            created_at: crate::dataset::history::commit_time(None),
            datasets: entries,
        };
        if !base.commit(name, encode_framed(MAGIC, FORMAT, &snapshot)?)? {
            return Err(already_exists(base, name));
        }
        Ok(snapshot)
    })();
    if result.is_err() {
        for ds in pinned {
            let _ = base.unpin(ds, name);
        }
    }
    result
}

pub fn read(base: &StoreBase, name: &str) -> Result<StoreSnapshot> {
    check_name(name)?;
    let path = base.manifest_path(name);
    let Some(bytes) = base.manifest(name)? else {
        return Err(OupsError::VersionNotFound(format!(
            "store {} has no snapshot {name:?} (its snapshots: {:?})",
            base.display(),
            list(base)?
        )));
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

/// The names of the store's snapshots, sorted.
pub fn list(base: &StoreBase) -> Result<Vec<String>> {
    let mut names: Vec<String> = base
        .names()?
        .into_iter()
        .filter(|n| check_name(n).is_ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Removes the snapshot: the manifest first (so a crash leaves only pins,
/// which a repeated delete removes), then the pin of each of `datasets`.
pub fn delete(base: &StoreBase, name: &str, datasets: &[String]) -> Result<bool> {
    check_name(name)?;
    let existed = base.remove(name)?;
    let mut unpinned = false;
    for ds in datasets {
        unpinned |= base.unpin(ds, name)?;
    }
    Ok(existed || unpinned)
}
