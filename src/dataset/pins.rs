//! Named pins: versions that vacuums keep until the pin is removed (the
//! dataset side of a store snapshot). `pins/<name>` in the history directory
//! holds the pinned version number.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;

use crate::dataset::layout::{Layout, TMP_PREFIX};
use crate::error::{IoContext, OupsError, Result};

/// Snapshot names become file names: a safe, portable subset only.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(OupsError::InvalidArgument(format!(
            "snapshot name {name:?} must be 1 to 128 letters, digits, '_', '-' or '.', not \
             starting with '.'"
        )))
    }
}

fn pins_dir(layout: &Layout) -> std::path::PathBuf {
    layout.history.join("pins")
}

/// Pins `version` under `name` (replacing a pin of that name). Under the lock.
pub fn write(layout: &Layout, name: &str, version: u64) -> Result<()> {
    check_name(name)?;
    let dir = pins_dir(layout);
    fs::create_dir_all(&dir).at("cannot create history directory", &dir)?;
    let path = dir.join(name);
    let tmp = dir.join(format!("{TMP_PREFIX}{name}-{}", std::process::id()));
    crate::durable::replace_atomic(
        &path,
        &tmp,
        "cannot write pin",
        "before_pin_rename",
        |mut f| {
            f.write_all(version.to_string().as_bytes())
                .at("cannot write pin", &tmp)?;
            Ok(f)
        },
    )
}

/// Removes the pin `name`; false if there was none.
pub fn remove(layout: &Layout, name: &str) -> Result<bool> {
    check_name(name)?;
    let path = pins_dir(layout).join(name);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(OupsError::io("cannot remove pin", &path, e)),
    }
}

/// Every pin, by name. A damaged pin file pins nothing it can name, so it
/// is an error rather than a silent loss of the version it protected.
pub fn all(layout: &Layout) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(pins_dir(layout)) else {
        return Ok(out);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TMP_PREFIX) {
            continue;
        }
        let text = fs::read_to_string(entry.path()).at("cannot read pin", &entry.path())?;
        let version = text
            .trim()
            .parse::<u64>()
            .map_err(|_| OupsError::corrupt(&entry.path(), "a pin must hold a version number"))?;
        out.insert(name, version);
    }
    Ok(out)
}

pub fn pinned(layout: &Layout) -> Result<BTreeSet<u64>> {
    Ok(all(layout)?.into_values().collect())
}
