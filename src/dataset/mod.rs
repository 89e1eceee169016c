//! One ordered Parquet dataset: open, write (merge), read, remove.

pub mod aligned;
pub mod bounds;
pub(crate) mod commit;
pub mod contiguous;
pub mod file_ids;
pub mod history;
pub mod layout;
pub mod lease;
pub mod lock;
pub mod merge;
pub mod metadata;
pub mod object;
mod open;
pub mod ordered_key;
pub mod parquet_io;
pub mod period;
pub mod pins;
pub mod plain_page;
pub mod plan;
pub mod range_read;
pub mod retention;
pub mod run_merge;
pub mod schema;
pub mod splice;
pub mod staged;
pub mod state;
pub mod verify;
pub mod versions;
pub(crate) mod write;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde_json::Value;

pub use write::{Progress, TargetSpec, WriteRequest};

use crate::dataset::layout::Layout;
use crate::dataset::lock::DatasetLock;
use crate::dataset::ordered_key::keys_to_array;
use crate::dataset::state::{RowGroup, State};
use crate::error::{IoContext, OupsError, Result};

/// A joined batch and, per column, whether it is private copy-on-write memory.
pub type PrivateBatch = (RecordBatch, Vec<bool>);

/// Which version an object reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// The latest when opened, and after each `refresh` or write.
    Latest,
    /// A fixed version (read-only).
    Version(u64),
    /// The last version committed at or before this time (ns since the
    /// epoch; read-only).
    AsOf(i64),
}

/// One dataset, seen at one committed version. Reading takes no lock: the
/// version's files never change, and a vacuum deletes a version's record
/// before the files only it needs. Writing takes the lock for its duration.
pub struct Dataset {
    layout: Layout,
    lock_timeout: Option<f64>,
    /// The lock held across calls at the user's request (`hold_lock`).
    held: Option<Arc<DatasetLock>>,
    state: State,
    /// Set for `Pin::Version` and `Pin::AsOf`: such objects never write.
    fixed: bool,
    /// Keeps vacuums away from the version this object reads.
    lease: Option<Arc<lease::Lease>>,
    /// The identity of that version's record, to notice it went.
    record: Option<history::RecordId>,
    /// The latest record as last read, to skip reading it again.
    stamp: Option<history::RecordId>,
    schema: Option<(u64, SchemaRef)>,
}

impl Dataset {
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
        self.held.is_some()
    }

    pub fn is_fixed(&self) -> bool {
        self.fixed
    }

    /// Moves to the latest version (a fixed version stays where it is).
    pub fn refresh(&mut self) -> Result<()> {
        if self.fixed {
            return Ok(());
        }
        self.load_latest()
    }

    fn take_lock(&self) -> Result<Arc<DatasetLock>> {
        if let Some(lock) = &self.held {
            return Ok(Arc::clone(lock));
        }
        fs::create_dir_all(&self.layout.parent)
            .at("cannot create parent directory", &self.layout.parent)?;
        lock::acquire(&self.layout.lock, self.lock_timeout).map_err(|e| match e {
            OupsError::LockTimeout { seconds, .. } => OupsError::LockTimeout {
                path: self.layout.dir.clone(),
                seconds,
            },
            other => other,
        })
    }

    /// Holds the lock across calls until [`Self::release`]: no other process
    /// commits meanwhile, so reads between writes see the latest version.
    pub fn hold_lock(&mut self, timeout: Option<f64>) -> Result<()> {
        self.refuse_fixed("lock")?;
        check_lock_timeout(timeout)?;
        if self.held.is_none() {
            let opened_with = self.lock_timeout;
            if timeout.is_some() {
                self.lock_timeout = timeout;
            }
            let lock = self.take_lock();
            self.lock_timeout = opened_with;
            self.held = Some(lock?);
        }
        self.load_latest()
    }

    /// Runs `f` on the latest version under the lock (and the in-process
    /// writer mutex), after deleting what an interrupted write left.
    fn with_lock<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        let lock = self.take_lock()?;
        let _writer = lock.writer.lock().unwrap_or_else(|p| p.into_inner());
        if retention::needs_recovery(&self.layout, self.layout.meta.exists(), true) {
            retention::recover(&self.layout)?;
        }
        self.load_latest()?;
        f(self)
    }

    fn refuse_fixed(&self, what: &str) -> Result<()> {
        if self.fixed {
            return Err(read_only(
                what,
                self.state.version,
                &self.layout.dir.display().to_string(),
            ));
        }
        Ok(())
    }

    /// Where this object's version reads the data file `id`.
    fn data_path(&self, id: u64) -> PathBuf {
        self.layout.data_path(id, self.state.format)
    }

    /// Turns a failed read into a clear error when the version was vacuumed
    /// meanwhile, and checks a successful one was not (see [`history::alive`]).
    fn checked<T>(&self, read: Result<T>) -> Result<T> {
        let alive = || history::alive(&self.layout, self.state.version, self.record.as_ref());
        match read {
            Ok(v) if !self.state.exists || alive() => Ok(v),
            Ok(_) => Err(self.vacuumed()),
            Err(e) if !alive() => Err(self.vacuumed_after(e)),
            Err(e) => Err(e),
        }
    }

    fn vacuumed(&self) -> OupsError {
        vacuumed_error(&self.layout, self.state.version)
    }

    fn vacuumed_after(&self, e: OupsError) -> OupsError {
        match e {
            OupsError::Io { .. } | OupsError::Corrupt { .. } => self.vacuumed(),
            other => other,
        }
    }

    /// The dataset schema: that of its first data file (cached per commit).
    fn schema(&mut self) -> Result<Option<SchemaRef>> {
        // The cache first: a staged write plans on some row groups only.
        if let Some((generation, s)) = &self.schema {
            if *generation == self.state.version {
                return Ok(Some(Arc::clone(s)));
            }
        }
        let Some(first) = self.state.row_groups.first() else {
            return Ok(None);
        };
        let path = self.data_path(first.file_id);
        let s = self.checked(parquet_io::read_schema(&path))?;
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
        self.schema = Some((self.state.version, Arc::clone(&s)));
        Ok(Some(s))
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
        let ds = &mut *self;
        {
            let ids: Vec<u64> = match file_ids {
                None => ds.state.row_groups.iter().map(|rg| rg.file_id).collect(),
                Some(ids) => {
                    for id in ids {
                        if !ds.state.row_groups.iter().any(|rg| rg.file_id == *id) {
                            return Err(OupsError::InvalidArgument(format!(
                                "row group with file id {id} is not in version {} of '{}'; \
                                 take a new view of the dataset",
                                ds.state.version,
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
            let paths: Vec<PathBuf> = ids.iter().map(|&id| ds.data_path(id)).collect();
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
                    contiguous::read_joined_private(&paths, &rgs, s, ordered, true)
                } else {
                    contiguous::read_joined(&paths, &rgs, s, ordered).map(|b| (b, Vec::new()))
                };
                return Ok((Some(ds.checked(joined)?), schema));
            }
            Ok((None, schema))
        }
    }

    /// Row-group stats: file_ids, n_rows, ordered_on_mins, ordered_on_maxs.
    pub fn stats(&mut self) -> Result<RecordBatch> {
        stats_batch(&self.state)
    }

    /// Deletes the dataset and its history. The latest record goes first:
    /// that commits the removal, and what a crash leaves is recovered.
    pub fn remove_from_disk(&mut self, preserve_metadata: bool) -> Result<()> {
        self.refuse_fixed("remove")?;
        let layout = &self.layout;
        if layout.meta.exists() || layout.dir.exists() || layout.history.exists() {
            let lock = self.take_lock()?;
            let _writer = lock.writer.lock().unwrap_or_else(|p| p.into_inner());
            let _busy = history::Busy::mark(layout)?;
            match fs::remove_file(&layout.meta) {
                Ok(()) => crate::durable::sync_dir(&layout.parent)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(OupsError::io("cannot remove", &layout.meta, e)),
            }
            crate::failpoint::hit("after_remove_head");
            if layout.dir.exists() {
                fs::remove_dir_all(&layout.dir).at("cannot remove", &layout.dir)?;
            }
            crate::failpoint::hit("before_prune_to_pins");
            // Versions that snapshots pin outlive the dataset; nothing else does.
            retention::prune_to_pins(layout)?;
        }
        self.state.row_groups.clear();
        self.state.exists = false;
        self.state.version = 0;
        if !preserve_metadata {
            self.state.key_value_metadata.clear();
        }
        self.stamp = None;
        self.schema = None;
        self.lease = None;
        self.record = None;
        Ok(())
    }

    pub fn release(&mut self) {
        self.held = None;
    }
}

/// What a change through an object that reads a fixed version raises.
pub(crate) fn read_only(what: &str, version: u64, location: &str) -> OupsError {
    OupsError::ReadOnly(format!(
        "cannot {what} version {version} of '{location}': objects opened with 'version' or \
         'as_of' are read-only; open the dataset without them to write"
    ))
}

pub(crate) fn vacuumed_error(layout: &Layout, version: u64) -> OupsError {
    OupsError::VersionNotFound(format!(
        "version {version} of dataset '{}' was vacuumed (or the dataset removed) while it was \
         being read; call refresh() to read the latest version, or keep it with a named snapshot",
        layout.dir.display()
    ))
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
