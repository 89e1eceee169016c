//! The write transaction: validate, lock, plan, write new files, commit.
//!
//! Commit protocol: (1) a busy marker is created; new row groups are written
//! to fresh file names that no retained version uses, fsynced, and
//! hard-linked into the history directory; kept files that need a new id are
//! linked under it. (2) The version record is linked into `versions/` and
//! renamed over `<name>_opdmd`: that rename is the commit point. (3) The
//! dataset directory's files the new version no longer lists are unlinked (the
//! history keeps them for older versions), old versions beyond retention are
//! vacuumed, and the marker removed. A crash leaves the marker, and the next
//! writer (or opener, when no writer holds the lock) deletes every file that
//! no retained version lists (`retention::recover`).

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::RecordBatch;
use parquet::basic::Compression;
use serde_json::{Map, Value};

use super::aligned;
use super::file_ids;
use super::history::{self, link_or_copy, Busy};
use super::merge::{self, Side};
use super::metadata;
use super::ordered_key::{check_sorted, encode_column, key_kind, unit_nanos};
use super::parquet_io::{self, parallel_map, writer_properties};
use super::period::Periods;
use super::plan::{self, Step, Target};
use super::retention;
use super::schema;
use super::splice::{self, NewRowGroup};
use super::state::{RowGroup, State};
use super::verify;
use super::{ordered_on_mismatch, Dataset};
use crate::dictionaries::has_dictionary;
use crate::error::{IoContext, OupsError, Result};
use crate::failpoint;

/// Data files written before their fsyncs are awaited.
const SYNC_WINDOW: usize = 64;

/// How row groups are sized.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    Rows(u64),
    /// Fixed-length periods (nanoseconds), aligned on the Unix epoch.
    FixedPeriod(i64),
    /// Period starts in the ordered column's unit (calendar frequencies).
    Anchors(Vec<i64>),
}

/// Called with `(rows written, rows to write)` as new data files are written,
/// from the writing threads.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

pub struct WriteRequest {
    /// Seconds to wait for the lock in this write, if this object does not
    /// hold it; `None` keeps the timeout the dataset was opened with.
    pub lock_timeout: Option<f64>,
    /// New rows; `None` for no data (metadata update or coalescing only).
    pub data: Option<RecordBatch>,
    pub ordered_on: Value,
    pub ordered_field: String,
    pub target: TargetSpec,
    /// Columns defining duplicates (the ordered column included by the
    /// caller); empty means all columns; `None` keeps duplicates.
    pub duplicates_on: Option<Vec<String>>,
    pub max_n_off_target_rgs: Option<i64>,
    pub key_value_metadata: Map<String, Value>,
    pub compression: Compression,
    pub progress: Option<Progress>,
    /// Recorded with the version, to tell who committed it.
    pub writer: Option<String>,
}

struct NewData {
    batch: RecordBatch,
    keys: Vec<u64>,
}

fn validate_data(req: &WriteRequest) -> Result<Option<NewData>> {
    let Some(batch) = &req.data else {
        return Ok(None);
    };
    let field = &req.ordered_field;
    let idx = batch.schema().index_of(field).map_err(|_| {
        OupsError::ColumnNotFound(format!(
            "ordered column '{field}' is not among the data's columns {:?}",
            batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
        ))
    })?;
    let col = batch.column(idx);
    let kind = key_kind(col.data_type(), field)?;
    let keys = encode_column(col.as_ref(), field)?;
    check_sorted(&keys, kind, field, col.data_type())?;
    if let Some(cols) = &req.duplicates_on {
        for c in cols {
            if batch.schema().index_of(c).is_err() {
                return Err(OupsError::ColumnNotFound(format!(
                    "'duplicates_on' column '{c}' is not among the data's columns"
                )));
            }
        }
    }
    if batch.num_rows() == 0 {
        return Ok(None);
    }
    Ok(Some(NewData {
        batch: batch.clone(),
        keys,
    }))
}

fn build_target(
    spec: &TargetSpec,
    state: &State,
    new: Option<&NewData>,
    field: &str,
) -> Result<Target> {
    let dt = new
        .map(|n| {
            n.batch
                .schema()
                .field_with_name(field)
                .map(|f| f.data_type().clone())
        })
        .transpose()?
        .or_else(|| state.ordered_type.clone());
    let periods = |make: &dyn Fn(i64) -> Periods| -> Result<Target> {
        match dt.as_ref() {
            None => Ok(Target::Rows(u64::MAX)),
            Some(dt) => match unit_nanos(dt) {
                Some(unit) => Ok(Target::Periods(make(unit))),
                None => Err(OupsError::InvalidType(format!(
                    "a frequency 'row_group_target_size' needs a date, timestamp or duration \
                     ordered column, but '{field}' has type {dt}; pass an int row count instead"
                ))),
            },
        }
    };
    match spec {
        TargetSpec::Rows(0) => Err(OupsError::InvalidArgument(
            "'row_group_target_size' must be a positive number of rows or a frequency".into(),
        )),
        TargetSpec::Rows(n) => Ok(Target::Rows(*n)),
        TargetSpec::FixedPeriod(ns) if *ns <= 0 => Err(OupsError::InvalidArgument(
            "'row_group_target_size' frequency must be a positive duration".into(),
        )),
        TargetSpec::FixedPeriod(ns) => periods(&|unit| Periods::Fixed {
            period_ns: *ns,
            unit_ns: unit,
        }),
        TargetSpec::Anchors(a) => periods(&|_| Periods::Anchors(a.clone())),
    }
}

/// Whether the write's key-value metadata changes the stored one.
fn changes_metadata(state: &State, req: &WriteRequest) -> bool {
    req.key_value_metadata
        .iter()
        .any(|(k, v)| match state.key_value_metadata.get(k) {
            Some(stored) => stored != v,
            None => !v.is_null(),
        })
}

fn column_indices(batch: &RecordBatch, names: &[String]) -> Vec<usize> {
    if names.is_empty() {
        return (0..batch.num_columns()).collect();
    }
    names
        .iter()
        .filter_map(|n| batch.schema().index_of(n).ok())
        .collect()
}

impl Dataset {
    pub fn write(&mut self, req: WriteRequest) -> Result<()> {
        self.refuse_fixed("write")?;
        super::check_lock_timeout(req.lock_timeout)?;
        let opened_with = self.lock_timeout;
        if req.lock_timeout.is_some() {
            self.lock_timeout = req.lock_timeout;
        }
        let result = self.write_locked(req);
        self.lock_timeout = opened_with;
        result
    }

    fn write_locked(&mut self, req: WriteRequest) -> Result<()> {
        // Checked before the data too (it is the more telling error), and
        // again under the lock, against the latest state.
        self.refresh()?;
        self.check_ordered_on(&req.ordered_on)?;
        let new = validate_data(&req)?;
        // No rows and no metadata for a dataset that does not exist: nothing
        // to do, and nothing (not even a lock file) is created.
        if new.is_none()
            && req.key_value_metadata.is_empty()
            && self.held.is_none()
            && !self.layout.meta.exists()
            && !self.layout.dir.exists()
        {
            return Ok(());
        }
        self.with_lock(|ds| ds.write_latest(req, new))
    }

    /// The write, planned against the latest version, under the lock.
    fn write_latest(&mut self, req: WriteRequest, new: Option<NewData>) -> Result<()> {
        self.check_ordered_on(&req.ordered_on)?;
        let stored = self.schema()?;
        let new = match new {
            None => None,
            Some(n) => {
                let canonical = match &stored {
                    Some(s) => s.clone(),
                    None => schema::canonical(n.batch.schema().as_ref()),
                };
                if stored.is_some()
                    && self.state.ordered_field.as_deref() != Some(&req.ordered_field)
                {
                    return Err(OupsError::OrderedOnMismatch(format!(
                        "ordered column '{}' is not the dataset's ordered column {:?}",
                        req.ordered_field, self.state.ordered_field
                    )));
                }
                let batch = schema::conform(&n.batch, &canonical)?;
                let field = req.ordered_field.as_str();
                let ordered = batch.column_by_name(field);
                // A cast ordered column (another time unit) needs its keys again.
                let keys = match ordered {
                    Some(col)
                        if col.data_type()
                            != n.batch.schema().field_with_name(field)?.data_type() =>
                    {
                        encode_column(col.as_ref(), field)?
                    }
                    _ => n.keys,
                };
                Some(NewData { batch, keys })
            }
        };
        // After conforming: periods are counted in the stored unit.
        let target = build_target(&req.target, &self.state, new.as_ref(), &req.ordered_field)?;
        let ordered_col = match (&new, &stored) {
            (Some(n), _) => n.batch.schema().index_of(&req.ordered_field)?,
            (None, Some(s)) => s.index_of(&req.ordered_field).unwrap_or(0),
            (None, None) => 0,
        };
        let drop = req.duplicates_on.is_some();
        let new = match (new, &req.duplicates_on) {
            (Some(n), Some(names)) => {
                let subset = column_indices(&n.batch, names);
                let side = Side {
                    batch: &n.batch,
                    keys: &n.keys,
                };
                match merge::dedup_batch(&side, &subset, ordered_col)? {
                    Some((batch, keys)) => Some(NewData { batch, keys }),
                    None => Some(n),
                }
            }
            (n, _) => n,
        };
        let new_keys: &[u64] = new.as_ref().map_or(&[], |n| &n.keys);
        let stats: Vec<_> = self.state.row_groups.iter().map(RowGroup::stat).collect();
        let steps = if stats.is_empty() && new_keys.is_empty() {
            Vec::new()
        } else {
            plan::plan(&stats, new_keys, &target, drop, req.max_n_off_target_rgs)
        };
        let outputs = self.merge_steps(&steps, new.as_ref(), &req, ordered_col, &target)?;
        self.commit(steps, outputs, new.as_ref(), &req)
    }

    fn check_ordered_on(&self, given: &Value) -> Result<()> {
        let stored = &self.state.ordered_on;
        if self.state.exists && !stored.is_null() && stored != given {
            return Err(ordered_on_mismatch(given, stored));
        }
        Ok(())
    }

    /// Produces the row groups of every merge region, in step order.
    fn merge_steps(
        &self,
        steps: &[Step],
        new: Option<&NewData>,
        req: &WriteRequest,
        ordered_col: usize,
        target: &Target,
    ) -> Result<Vec<Vec<NewRowGroup>>> {
        let mut outputs = Vec::new();
        for step in steps {
            let Step::Merge(region) = step else { continue };
            let rgs = &self.state.row_groups[region.rgs.clone()];
            // Duplicates on the ordered key alone (or none) and no dictionaries:
            // the merge is found as runs and written from slices.
            let by_key = req
                .duplicates_on
                .as_ref()
                .map(|names| {
                    new.map_or(Vec::new(), |n| column_indices(&n.batch, names))
                        .iter()
                        .all(|&c| c == ordered_col)
                })
                .unwrap_or(true);
            let plain = self
                .schema
                .as_ref()
                .is_some_and(|(_, s)| !has_dictionary(s))
                && new.is_none_or(|n| !has_dictionary(&n.batch.schema()));
            // When every column is written straight from its values, slices of
            // the mapped files are written as they are: splicing their pages
            // would only add a copy.
            let all_direct = req.compression == Compression::UNCOMPRESSED
                && self.schema.as_ref().is_some_and(|(_, s)| {
                    s.fields()
                        .iter()
                        .all(|f| aligned::mappable_width(f.data_type()).is_some())
                });
            if !(by_key && plain && all_direct) {
                if let Some(spliced) =
                    self.try_splice(rgs, region, new, req, ordered_col, target)?
                {
                    outputs.push(spliced);
                    continue;
                }
            }
            let stored = self.read_stored(rgs, req, ordered_col)?;
            let new_side = new.map(|n| {
                let len = region.new.len();
                (
                    n.batch.slice(region.new.start, len),
                    &n.keys[region.new.clone()],
                )
            });
            if by_key && plain {
                let empty: Vec<RecordBatch> = Vec::new();
                let (batches, keys) = stored
                    .as_ref()
                    .map_or((&empty, &[][..]), |(b, k)| (b, k.as_slice()));
                let new_side = new_side.as_ref().map(|(b, k)| Side { batch: b, keys: k });
                let chunks = super::run_merge::merge_runs_region(
                    batches,
                    keys,
                    new_side.as_ref(),
                    req.duplicates_on.is_some(),
                    target,
                )?;
                outputs.push(chunks.into_iter().map(NewRowGroup::Encoded).collect());
                continue;
            }
            let existing = match stored {
                None => None,
                Some((batches, keys)) => {
                    let schema = batches[0].schema();
                    Some((crate::dictionaries::concat(&schema, &batches)?, keys))
                }
            };
            let existing_side = existing.as_ref().map(|(b, k)| Side { batch: b, keys: k });
            let new_side = new_side.as_ref().map(|(b, k)| Side { batch: b, keys: k });
            let subset = req.duplicates_on.as_ref().map(|names| {
                let batch = existing.as_ref().map(|e| &e.0).or(new.map(|n| &n.batch));
                batch.map(|b| column_indices(b, names)).unwrap_or_default()
            });
            let chunks = merge::merge_region(
                existing_side.as_ref(),
                new_side.as_ref(),
                subset.as_deref(),
                ordered_col,
                target,
            )?;
            outputs.push(chunks.into_iter().map(NewRowGroup::Encoded).collect());
        }
        Ok(outputs)
    }

    /// The stored rows of a merge region, file by file, with their ordered
    /// keys; each file checked against its metadata entry and the keys
    /// against the order.
    fn read_stored(
        &self,
        rgs: &[RowGroup],
        req: &WriteRequest,
        ordered_col: usize,
    ) -> Result<Option<(Vec<RecordBatch>, Vec<u64>)>> {
        if rgs.is_empty() {
            return Ok(None);
        }
        let paths: Vec<PathBuf> = rgs.iter().map(|rg| self.data_path(rg.file_id)).collect();
        let batches = parquet_io::read_files(&paths)?;
        // The dataset's schema (cached by `write` before planning).
        let schema = match &self.schema {
            Some((_, s)) => Arc::clone(s),
            None => batches[0].schema(),
        };
        // Never merge a file that is not what the metadata says it is.
        for ((batch, path), rg) in batches.iter().zip(&paths).zip(rgs) {
            verify::check_file(path, batch, &schema, rg, Some(ordered_col))?;
        }
        let field = req.ordered_field.as_str();
        let dt = schema.field(ordered_col).data_type().clone();
        let kind = key_kind(&dt, field)?;
        let mut keys = Vec::with_capacity(rgs.iter().map(|rg| rg.n_rows as usize).sum());
        for batch in &batches {
            keys.extend(encode_column(batch.column(ordered_col).as_ref(), field)?);
        }
        check_sorted(&keys, kind, field, &dt).map_err(|e| {
            OupsError::corrupt(&paths[0], format!("its row groups are not sorted: {e}"))
        })?;
        Ok(Some((batches, keys)))
    }

    /// The region's row groups by copying the stored files' pages, where the
    /// merge is a concatenation (see [`splice`]).
    fn try_splice(
        &self,
        rgs: &[RowGroup],
        region: &plan::Region,
        new: Option<&NewData>,
        req: &WriteRequest,
        ordered_col: usize,
        target: &Target,
    ) -> Result<Option<Vec<NewRowGroup>>> {
        let Some((_, schema)) = &self.schema else {
            return Ok(None);
        };
        if rgs.is_empty() {
            return Ok(None);
        }
        let files: Vec<(PathBuf, RowGroup)> = rgs
            .iter()
            .map(|rg| (self.data_path(rg.file_id), *rg))
            .collect();
        let new = new.filter(|_| !region.new.is_empty()).map(|n| {
            (
                n.batch.slice(region.new.start, region.new.len()),
                &n.keys[region.new.clone()],
            )
        });
        splice::plan(&splice::Region {
            files: &files,
            new,
            schema,
            ordered_col,
            target,
            drop: req.duplicates_on.is_some(),
            compression: req.compression,
        })
    }

    fn commit(
        &mut self,
        steps: Vec<Step>,
        outputs: Vec<Vec<NewRowGroup>>,
        new: Option<&NewData>,
        req: &WriteRequest,
    ) -> Result<()> {
        let old = &self.state.row_groups;
        // The final sequence: kept row groups by id, new chunks as None.
        let mut seq: Vec<Option<u64>> = Vec::new();
        let mut chunks: Vec<NewRowGroup> = Vec::new();
        let mut outputs = outputs.into_iter();
        for step in &steps {
            match step {
                Step::Keep(i) => seq.push(Some(old[*i].file_id)),
                Step::Merge(_) => {
                    for c in outputs.next().unwrap_or_default() {
                        seq.push(None);
                        chunks.push(c);
                    }
                }
            }
        }
        if steps.is_empty() {
            seq = old.iter().map(|rg| Some(rg.file_id)).collect();
        }
        let unchanged = chunks.is_empty()
            && seq.len() == old.len()
            && seq.iter().zip(old).all(|(s, rg)| *s == Some(rg.file_id));
        if unchanged && self.state.exists && !changes_metadata(&self.state, req) {
            return Ok(()); // nothing to commit: no new version
        }
        // Only a write that got this far changes the disk: a format-1 dataset
        // gets its history first.
        history::upgrade(&self.layout, &self.state)?;
        if self.state.exists {
            self.state.format = metadata::FORMAT_VERSION;
        }
        let busy = Busy::mark(&self.layout)?;
        // Ids no retained version uses: a reader of an old version must
        // never find another file under a name it reads.
        let mut taken = history::kept_ids(&self.layout);
        taken.extend(self.state.row_groups.iter().map(|rg| rg.file_id));
        let (ids, relink) = file_ids::assign(&seq, &taken)?;

        let mut created: Vec<PathBuf> = Vec::new();
        let written = self.write_files(&seq, &ids, relink, &chunks, req, &mut created);
        if let Err(e) = written {
            parquet_io::remove_quietly(&created);
            return Err(e);
        }
        let old = &self.state.row_groups;

        let mut next = self.state.clone();
        let mut chunk_iter = chunks.iter();
        next.row_groups = seq
            .iter()
            .zip(&ids)
            .map(|(kept, &id)| match kept {
                Some(old_id) => {
                    let rg = old.iter().find(|rg| rg.file_id == *old_id).copied();
                    let rg = rg.unwrap_or(RowGroup {
                        file_id: id,
                        n_rows: 0,
                        min: 0,
                        max: 0,
                    });
                    RowGroup { file_id: id, ..rg }
                }
                None => {
                    let c = chunk_iter.next().expect("one chunk per new row group");
                    let (min, max) = c.bounds();
                    RowGroup {
                        file_id: id,
                        n_rows: c.n_rows(),
                        min,
                        max,
                    }
                }
            })
            .collect();
        next.exists = true;
        next.ordered_on = req.ordered_on.clone();
        if let Some(n) = new {
            next.ordered_field = Some(req.ordered_field.clone());
            next.ordered_type = Some(
                n.batch
                    .schema()
                    .field_with_name(&req.ordered_field)?
                    .data_type()
                    .clone(),
            );
        }
        for (k, v) in &req.key_value_metadata {
            if v.is_null() {
                next.key_value_metadata.remove(k);
            } else {
                next.key_value_metadata.insert(k.clone(), v.clone());
            }
        }
        let operation = if chunks.is_empty() && seq.iter().all(Option::is_some) && !relink {
            "update_metadata"
        } else {
            "write"
        };
        self.publish(next, operation, None, req.writer.clone(), &created)?;
        drop(busy);
        Ok(())
    }

    /// Commits `next` as the version after the latest, then unlinks from the
    /// dataset directory what it no longer lists and vacuums versions beyond
    /// retention. `created` (files of this write) are removed if the commit
    /// fails. Runs under the lock, with a busy marker.
    pub(super) fn publish(
        &mut self,
        mut next: State,
        operation: &str,
        restored_from: Option<u64>,
        writer: Option<String>,
        created: &[PathBuf],
    ) -> Result<()> {
        // A dataset created again after a removal numbers its versions after
        // those snapshots kept.
        let after = if self.state.exists {
            self.state.version
        } else {
            history::list(&self.layout, u64::MAX)
                .last()
                .copied()
                .unwrap_or(0)
        };
        next.version = after + 1;
        next.format = metadata::FORMAT_VERSION;
        next.committed_at = Some(history::commit_time(self.state.committed_at));
        next.operation = Some(operation.to_string());
        next.restored_from = restored_from;
        next.writer = writer;
        if let Err(e) = history::commit(&self.layout, &next.to_doc()) {
            parquet_io::remove_quietly(created);
            return Err(e);
        }
        failpoint::hit("after_commit");
        let keep: BTreeSet<u64> = next.row_groups.iter().map(|rg| rg.file_id).collect();
        let stale: Vec<PathBuf> = self
            .state
            .row_groups
            .iter()
            .filter(|rg| !keep.contains(&rg.file_id))
            .map(|rg| self.layout.file_path(rg.file_id))
            .collect();
        for (i, p) in stale.iter().enumerate() {
            let _ = fs::remove_file(p);
            if i == 0 {
                failpoint::hit("during_cleanup");
            }
        }
        self.state = next;
        self.stamp = history::record_id(&self.layout.meta);
        self.lease = super::lease::take(&self.layout, self.state.version);
        self.record = history::record_id(&self.layout.version_path(self.state.version));
        // The write is committed: a failed vacuum only leaves more history,
        // which the next one removes.
        let _ = retention::vacuum(&self.layout, self.state.version, &self.retention());
        Ok(())
    }

    fn write_files(
        &self,
        seq: &[Option<u64>],
        ids: &[u64],
        relink: bool,
        chunks: &[NewRowGroup],
        req: &WriteRequest,
        created: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let new_ids: Vec<u64> = seq
            .iter()
            .zip(ids)
            .filter_map(|(k, &id)| k.is_none().then_some(id))
            .collect();
        if new_ids.is_empty() && !relink {
            return Ok(());
        }
        fs::create_dir_all(&self.layout.dir)
            .at("cannot create dataset directory", &self.layout.dir)?;
        let kept_dir = self.layout.files_dir();
        fs::create_dir_all(&kept_dir).at("cannot create history directory", &kept_dir)?;
        if relink {
            for (kept, &id) in seq.iter().zip(ids) {
                if let Some(old_id) = kept {
                    let from = self.data_path(*old_id);
                    for to in [self.layout.file_path(id), self.layout.kept_file_path(id)] {
                        link_or_copy(&from, &to)?;
                        created.push(to);
                    }
                }
            }
        }
        let props = writer_properties(req.compression);
        // Rows before each new row group in the new sequence, for the layout.
        let mut before = Vec::with_capacity(chunks.len());
        let (mut rows, mut next_chunk) = (0u64, chunks.iter());
        for kept in seq {
            match kept {
                Some(id) => {
                    let rg = self.state.row_groups.iter().find(|rg| rg.file_id == *id);
                    rows += rg.map_or(0, |rg| rg.n_rows);
                }
                None => {
                    before.push(rows);
                    rows += next_chunk.next().map_or(0, NewRowGroup::n_rows);
                }
            }
        }
        let jobs: Vec<(PathBuf, &NewRowGroup, u64)> = new_ids
            .iter()
            .zip(chunks)
            .zip(before)
            .map(|((&id, c), b)| (self.layout.file_path(id), c, b))
            .collect();
        created.extend(jobs.iter().map(|(p, _, _)| p.clone()));
        let total: u64 = chunks.iter().map(NewRowGroup::n_rows).sum();
        let done = AtomicU64::new(0);
        let report = |rows: u64| {
            if let Some(progress) = &req.progress {
                progress(done.fetch_add(rows, Ordering::Relaxed) + rows, total);
            }
        };
        report(0);
        // Writeback starts as each file is written; waiting for a window of
        // files at once then mostly finds it done. The window bounds the
        // number of open descriptors.
        for window in jobs.chunks(SYNC_WINDOW) {
            let files = parallel_map(window, |(path, row_group, before)| {
                let file = match row_group {
                    NewRowGroup::Encoded(c) => {
                        parquet_io::write_pieces(path, &c.pieces, &props, *before)?
                    }
                    NewRowGroup::Spliced(s) => splice::write(path, s, &props)?,
                };
                failpoint::hit("after_data_file");
                report(row_group.n_rows());
                Ok(file)
            })?;
            let pending: Vec<(&std::fs::File, &PathBuf)> =
                files.iter().zip(window.iter().map(|(p, _, _)| p)).collect();
            parallel_map(&pending, |(f, p)| crate::durable::sync_file(f, p))?;
            // Every version reads its files from the history directory.
            for (path, _, _) in window {
                let kept = kept_dir.join(path.file_name().unwrap_or_default());
                link_or_copy(path, &kept)?;
                created.push(kept);
            }
        }
        let dirs = [self.layout.dir.clone(), kept_dir];
        parallel_map(&dirs, |d| crate::durable::sync_dir(d))?;
        Ok(())
    }
}
