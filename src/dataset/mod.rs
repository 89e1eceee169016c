//! One ordered Parquet dataset: open, write (merge), read, remove.

pub mod aligned;
pub mod bounds;
pub mod contiguous;
pub mod file_ids;
pub mod layout;
pub mod lock;
pub mod merge;
pub mod metadata;
pub mod ordered_key;
pub mod parquet_io;
pub mod period;
pub mod plain_page;
pub mod plan;
pub mod range_read;
pub mod run_merge;
pub mod schema;
pub mod splice;
pub mod state;
pub mod verify;
mod write;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde_json::Value;

pub use write::{Progress, TargetSpec, WriteRequest};

use crate::dataset::layout::{parse_file_name, Layout, TMP_PREFIX};
use crate::dataset::lock::DatasetLock;
use crate::dataset::ordered_key::keys_to_array;
use crate::dataset::state::{RowGroup, State};
use crate::error::{IoContext, OupsError, Result};

/// A joined batch and, per column, whether it is private copy-on-write memory.
pub type PrivateBatch = (RecordBatch, Vec<bool>);

/// Identity of the metadata file as last read, to notice commits by others.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

fn stamp_of(path: &Path) -> Option<Stamp> {
    let m = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        inode,
    })
}

pub struct Dataset {
    layout: Layout,
    lock_timeout: Option<f64>,
    lock: Option<Arc<DatasetLock>>,
    state: State,
    stamp: Option<Stamp>,
    schema: Option<(u64, SchemaRef)>,
}

impl Dataset {
    /// Opens a dataset. An existing one is locked for the object's lifetime;
    /// a missing one is not created (nor locked) until it is first written.
    pub fn open(dir: &Path, ordered_on: Value, lock_timeout: Option<f64>) -> Result<Self> {
        check_lock_timeout(lock_timeout)?;
        let layout = Layout::new(dir)?;
        let mut ds = Dataset {
            layout,
            lock_timeout,
            lock: None,
            state: State::new(ordered_on.clone()),
            stamp: None,
            schema: None,
        };
        // A data directory or a metadata temp file without metadata is what a
        // crash during a first write or a deletion leaves: lock it so that
        // recovery deletes the orphans (the lock file goes with the lock).
        if ds.layout.meta.exists() || ds.layout.dir.exists() || ds.has_meta_tmp() {
            ds.ensure_locked()?;
        }
        ds.refresh()?;
        if ds.state.exists && !ordered_on.is_null() && ds.state.ordered_on != ordered_on {
            return Err(ordered_on_mismatch(&ordered_on, &ds.state.ordered_on));
        }
        Ok(ds)
    }

    /// Whether a metadata temp file of this dataset lies in the parent
    /// directory (only looked for when the dataset has no files at all).
    fn has_meta_tmp(&self) -> bool {
        fs::read_dir(&self.layout.parent).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| self.layout.is_meta_tmp(&e.file_name().to_string_lossy()))
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn dir(&self) -> &Path {
        &self.layout.dir
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// Takes the lock if this object does not hold it; recovers after a crash
    /// when the lock was free (nobody can be writing then).
    fn ensure_locked(&mut self) -> Result<()> {
        if self.lock.is_none() {
            fs::create_dir_all(&self.layout.parent)
                .at("cannot create parent directory", &self.layout.parent)?;
            let lock =
                lock::acquire(&self.layout.lock, self.lock_timeout).map_err(|e| match e {
                    OupsError::LockTimeout { seconds, .. } => OupsError::LockTimeout {
                        path: self.layout.dir.clone(),
                        seconds,
                    },
                    other => other,
                })?;
            let _guard = lock.writer.lock().unwrap_or_else(|p| p.into_inner());
            if Arc::strong_count(&lock) == 1 {
                self.recover()?;
            }
            drop(_guard);
            self.lock = Some(lock);
        }
        Ok(())
    }

    /// Deletes what an interrupted write left: data files that the committed
    /// metadata does not list, and temp files. Must run under the lock.
    fn recover(&mut self) -> Result<()> {
        let committed: std::collections::HashSet<u64> = match metadata::read(&self.layout)? {
            Some(doc) => doc.row_groups.iter().map(|r| r.file_id).collect(),
            None => Default::default(),
        };
        if let Ok(entries) = fs::read_dir(&self.layout.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let orphan = match parse_file_name(&name) {
                    Some(id) => !committed.contains(&id),
                    None => name.starts_with(TMP_PREFIX),
                };
                if orphan {
                    let _ = fs::remove_file(entry.path());
                }
            }
            if committed.is_empty() {
                let _ = fs::remove_dir(&self.layout.dir);
            }
        }
        if let Ok(entries) = fs::read_dir(&self.layout.parent) {
            for entry in entries.flatten() {
                if self
                    .layout
                    .is_meta_tmp(&entry.file_name().to_string_lossy())
                {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }

    /// Reloads the metadata if another object or process committed since.
    pub fn refresh(&mut self) -> Result<()> {
        let stamp = stamp_of(&self.layout.meta);
        if stamp.is_some() && stamp == self.stamp {
            return Ok(());
        }
        match metadata::read(&self.layout)? {
            Some(doc) => {
                self.state = State::from_doc(doc, &self.layout.meta)?;
            }
            None => {
                if self.state.exists {
                    self.state.row_groups.clear();
                    self.state.key_value_metadata.clear();
                    self.state.exists = false;
                }
            }
        }
        self.stamp = stamp;
        Ok(())
    }

    /// The dataset schema: that of its first data file (cached per commit).
    fn schema(&mut self) -> Result<Option<SchemaRef>> {
        let Some(first) = self.state.row_groups.first() else {
            return Ok(None);
        };
        if let Some((generation, s)) = &self.schema {
            if *generation == self.state.generation {
                return Ok(Some(Arc::clone(s)));
            }
        }
        let path = self.layout.file_path(first.file_id);
        let s = parquet_io::read_schema(&path)?;
        // The metadata's ordered column must be a column of that type.
        if let (Some(field), Some(dt)) = (&self.state.ordered_field, &self.state.ordered_type) {
            match s.field_with_name(field) {
                Ok(f) if f.data_type() == dt => {}
                Ok(f) => {
                    return Err(OupsError::corrupt(
                        &self.layout.meta,
                        format!(
                            "it says the ordered column '{field}' is {dt}, but the data file {} \
                             holds {}",
                            path.display(),
                            f.data_type()
                        ),
                    ))
                }
                Err(_) => {
                    return Err(OupsError::corrupt(
                        &self.layout.meta,
                        format!(
                            "it names the ordered column '{field}', which the data file {} does \
                             not hold",
                            path.display()
                        ),
                    ))
                }
            }
        }
        self.schema = Some((self.state.generation, Arc::clone(&s)));
        Ok(Some(s))
    }

    /// Runs `f` under the lock; a lock taken just for it is released after.
    fn with_lock<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        let held = self.lock.is_some();
        if !held {
            if !self.layout.meta.exists() {
                self.refresh()?;
                return f(self);
            }
            self.ensure_locked()?;
        }
        let out = self.refresh().and_then(|_| f(self));
        if !held {
            self.lock = None;
        }
        out
    }

    /// Reads the row groups with the given file ids (all when `None`).
    pub fn read(
        &mut self,
        file_ids: Option<&[u64]>,
    ) -> Result<(Vec<RecordBatch>, Option<SchemaRef>)> {
        let (batch, schema) = self.read_with(file_ids, false)?;
        Ok((batch.into_iter().map(|(b, _)| b).collect(), schema))
    }

    /// Like [`Self::read`], as one batch whose fixed-width columns the
    /// caller may hand over as mutable memory: the flags say which columns
    /// are private copy-on-write mappings ([`contiguous::read_joined_private`]).
    pub fn read_private(
        &mut self,
        file_ids: Option<&[u64]>,
    ) -> Result<(Option<PrivateBatch>, Option<SchemaRef>)> {
        let (batch, schema) = self.read_with(file_ids, true)?;
        Ok((batch, schema))
    }

    fn read_with(
        &mut self,
        file_ids: Option<&[u64]>,
        private: bool,
    ) -> Result<(Option<PrivateBatch>, Option<SchemaRef>)> {
        self.with_lock(|ds| {
            let ids: Vec<u64> = match file_ids {
                None => ds.state.row_groups.iter().map(|rg| rg.file_id).collect(),
                Some(ids) => {
                    for id in ids {
                        if !ds.state.row_groups.iter().any(|rg| rg.file_id == *id) {
                            return Err(OupsError::InvalidArgument(format!(
                                "row group with file id {id} of '{}' was rewritten by a later \
                                 write; take a new view of the dataset",
                                ds.layout.dir.display()
                            )));
                        }
                    }
                    ids.to_vec()
                }
            };
            if ids.is_empty() {
                return Ok((None, None));
            }
            let paths: Vec<PathBuf> = ids.iter().map(|&id| ds.layout.file_path(id)).collect();
            let schema = ds.schema()?;
            if let Some(s) = &schema {
                // Every id was checked above to be a committed row group.
                let rgs: Vec<RowGroup> = ids
                    .iter()
                    .filter_map(|id| ds.state.row_groups.iter().find(|rg| rg.file_id == *id))
                    .copied()
                    .collect();
                let ordered = ds
                    .state
                    .ordered_field
                    .as_deref()
                    .and_then(|f| s.index_of(f).ok());
                let joined = if private {
                    contiguous::read_joined_private(&paths, &rgs, s, ordered, true)?
                } else {
                    (
                        contiguous::read_joined(&paths, &rgs, s, ordered)?,
                        Vec::new(),
                    )
                };
                return Ok((Some(joined), schema));
            }
            Ok((None, schema))
        })
    }

    /// Row-group stats: file_ids, n_rows, ordered_on_mins, ordered_on_maxs.
    pub fn stats(&mut self) -> Result<RecordBatch> {
        self.with_lock(|ds| stats_batch(&ds.state))
    }

    /// Deletes the dataset's files. The metadata goes first: that commits the
    /// removal, and data files left by a crash are orphans for recovery.
    pub fn remove_from_disk(&mut self, preserve_metadata: bool) -> Result<()> {
        if self.layout.meta.exists() || self.layout.dir.exists() {
            self.ensure_locked()?;
            let lock = self.lock.clone();
            let _guard = lock
                .as_ref()
                .map(|l| l.writer.lock().unwrap_or_else(|p| p.into_inner()));
            match fs::remove_file(&self.layout.meta) {
                Ok(()) => crate::durable::sync_dir(&self.layout.parent)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(OupsError::io("cannot remove", &self.layout.meta, e)),
            }
            if self.layout.dir.exists() {
                fs::remove_dir_all(&self.layout.dir).at("cannot remove", &self.layout.dir)?;
            }
        }
        self.state.row_groups.clear();
        self.state.exists = false;
        if !preserve_metadata {
            self.state.key_value_metadata.clear();
        }
        self.stamp = None;
        self.schema = None;
        Ok(())
    }

    pub fn release(&mut self) {
        self.lock = None;
    }
}

pub(crate) fn check_lock_timeout(lock_timeout: Option<f64>) -> Result<()> {
    match lock_timeout {
        Some(t) if t.is_nan() || t < 0.0 => Err(OupsError::InvalidArgument(format!(
            "'lock_timeout' must be a number of seconds >= 0 or None, got {t}"
        ))),
        _ => Ok(()),
    }
}

fn ordered_on_mismatch(given: &Value, stored: &Value) -> OupsError {
    OupsError::OrderedOnMismatch(format!(
        "'ordered_on' parameter value {given} does not match {stored} stored in the dataset"
    ))
}

pub fn stats_batch(state: &State) -> Result<RecordBatch> {
    let rgs = &state.row_groups;
    let ids: ArrayRef = Arc::new(UInt64Array::from_iter_values(rgs.iter().map(|r| r.file_id)));
    let rows: ArrayRef = Arc::new(UInt64Array::from_iter_values(rgs.iter().map(|r| r.n_rows)));
    let (mins, maxs, dt) = match (state.kind(), &state.ordered_type) {
        (Some(kind), Some(dt)) => {
            let mins: Vec<u64> = rgs.iter().map(|r| r.min).collect();
            let maxs: Vec<u64> = rgs.iter().map(|r| r.max).collect();
            (
                keys_to_array(&mins, kind, dt)?,
                keys_to_array(&maxs, kind, dt)?,
                dt.clone(),
            )
        }
        _ => (
            arrow_array::new_null_array(&DataType::Null, 0),
            arrow_array::new_null_array(&DataType::Null, 0),
            DataType::Null,
        ),
    };
    let schema = Schema::new(vec![
        Field::new("file_ids", DataType::UInt64, false),
        Field::new("n_rows", DataType::UInt64, false),
        Field::new("ordered_on_mins", dt.clone(), true),
        Field::new("ordered_on_maxs", dt, true),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![ids, rows, mins, maxs],
    )?)
}
