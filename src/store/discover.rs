//! Finding the datasets of a store: metadata files at exactly the key depth,
//! whose names parse strictly as keys.

use std::fs;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::store::key_schema::{FieldValue, KeySchema};

use crate::dataset::layout::META_SUFFIX;
use crate::storage::ObjectStorage;

fn is_dir(entry: &fs::DirEntry) -> bool {
    match entry.file_type() {
        Ok(t) if t.is_symlink() => entry.path().is_dir(),
        Ok(t) => t.is_dir(),
        Err(_) => false,
    }
}

fn is_file(entry: &fs::DirEntry) -> bool {
    match entry.file_type() {
        Ok(t) if t.is_symlink() => entry.path().is_file(),
        Ok(t) => t.is_file(),
        Err(_) => false,
    }
}

/// Keys (as flat field values) of every dataset under `base`, sorted like the
/// key instances. A missing base holds no keys.
pub fn discover(schema: &KeySchema, base: &Path) -> Result<Vec<Vec<FieldValue>>> {
    let mut found = Vec::new();
    let mut parts: Vec<String> = Vec::with_capacity(schema.depth());
    match fs::read_dir(base) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        other => {
            other.at("cannot list store directory", base)?;
        }
    }
    walk(schema, base, &mut parts, &mut found);
    found.sort_unstable();
    Ok(found)
}

fn walk(schema: &KeySchema, dir: &Path, parts: &mut Vec<String>, found: &mut Vec<Vec<FieldValue>>) {
    // Directories vanishing or unreadable while we look are skipped: another
    // process may be deleting a dataset right now.
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let last_level = parts.len() + 1 == schema.depth();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if last_level {
            let Some(stem) = name.strip_suffix(META_SUFFIX) else {
                continue;
            };
            if stem.is_empty() || !is_file(&entry) {
                continue;
            }
            parts.push(stem.to_string());
            if let Some(values) = schema.parse_parts(parts) {
                found.push(values);
            }
            parts.pop();
        } else {
            // Only directories that are a valid spelling of this level can
            // lead to keys; the rest of the tree is never visited.
            let level = &schema.levels[parts.len()];
            let mut probe = Vec::new();
            if !schema.level_matches(level, name, &mut probe) || !is_dir(&entry) {
                continue;
            }
            parts.push(name.to_string());
            walk(schema, &entry.path(), parts, found);
            parts.pop();
        }
    }
}

/// [`discover`] for a store at an object-storage location: one listing with
/// a delimiter per "directory" whose name spells its level (never a listing
/// of every object), then the `<name>_opdmd` pointers of the last level.
pub fn discover_objects(
    schema: &KeySchema,
    storage: &ObjectStorage,
) -> Result<Vec<Vec<FieldValue>>> {
    let mut found = Vec::new();
    let mut parts: Vec<String> = Vec::with_capacity(schema.depth());
    walk_objects(schema, storage, &mut parts, &mut found)?;
    found.sort_unstable();
    Ok(found)
}

fn walk_objects(
    schema: &KeySchema,
    storage: &ObjectStorage,
    parts: &mut Vec<String>,
    found: &mut Vec<Vec<FieldValue>>,
) -> Result<()> {
    let prefix: String = parts.iter().map(|p| format!("{p}/")).collect();
    let (dirs, objects) = storage.list_dir(&prefix)?;
    if parts.len() + 1 == schema.depth() {
        for meta in &objects {
            let key = storage.key_of(meta);
            let name = key.rsplit('/').next().unwrap_or(&key);
            let Some(stem) = name.strip_suffix(META_SUFFIX).filter(|s| !s.is_empty()) else {
                continue;
            };
            parts.push(stem.to_string());
            if let Some(values) = schema.parse_parts(parts) {
                found.push(values);
            }
            parts.pop();
        }
        return Ok(());
    }
    let level = &schema.levels[parts.len()];
    for dir in dirs {
        let mut probe = Vec::new();
        if !schema.level_matches(level, &dir, &mut probe) {
            continue;
        }
        parts.push(dir);
        walk_objects(schema, storage, parts, found)?;
        parts.pop();
    }
    Ok(())
}

/// The datasets below an object-storage location whatever their keys: the
/// `<name>_opdmd` pointers of every level, as prefixes relative to it
/// (hidden histories and dataset directories are not entered).
pub fn find_objects(storage: &ObjectStorage) -> Result<Vec<String>> {
    let mut found = Vec::new();
    find_below(storage, "", 0, &mut found)?;
    found.sort_unstable();
    Ok(found)
}

fn find_below(
    storage: &ObjectStorage,
    prefix: &str,
    depth: usize,
    found: &mut Vec<String>,
) -> Result<()> {
    const MAX_DEPTH: usize = 32;
    let (dirs, objects) = storage.list_dir(prefix)?;
    let mut datasets = std::collections::BTreeSet::new();
    for meta in &objects {
        let key = storage.key_of(meta);
        let name = key.rsplit('/').next().unwrap_or(&key);
        if let Some(stem) = name.strip_suffix(META_SUFFIX).filter(|s| !s.is_empty()) {
            datasets.insert(stem.to_string());
            found.push(format!("{prefix}{stem}"));
        }
    }
    if depth < MAX_DEPTH {
        for dir in dirs {
            if !dir.starts_with('.') && !datasets.contains(&dir) {
                find_below(storage, &format!("{prefix}{dir}/"), depth + 1, found)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::key_schema::{FieldKind, Level};

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"").unwrap();
    }

    #[test]
    fn finds_only_canonical_names_at_the_right_depth() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let schema = KeySchema::new(
            "Two".into(),
            "-".into(),
            vec![
                Level {
                    names: vec!["p".into()],
                    kinds: vec![FieldKind::Str],
                },
                Level {
                    names: vec!["x".into(), "n".into()],
                    kinds: vec![FieldKind::Str, FieldKind::Int],
                },
            ],
        )
        .unwrap();
        touch(&base.join("q/y-2_opdmd"));
        touch(&base.join("p/x-1_opdmd"));
        touch(&base.join("p/x-01_opdmd"));
        touch(&base.join("p/a-b-7_opdmd"));
        touch(&base.join("p/deeper/r-1_opdmd"));
        touch(&base.join("top_opdmd"));
        fs::create_dir_all(base.join("p/d-3_opdmd")).unwrap();
        let keys = discover(&schema, base).unwrap();
        let strs: Vec<String> = keys.iter().map(|k| schema.to_str(k)).collect();
        assert_eq!(strs, ["p-x-1", "q-y-2"]);
        assert!(discover(&schema, &base.join("missing")).unwrap().is_empty());
    }
}
