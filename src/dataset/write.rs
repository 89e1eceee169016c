//! The write transaction: validate, lock, plan against the latest version,
//! merge; the commit itself is in [`super::commit`].

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::basic::Compression;
use serde_json::{Map, Value};

use super::aligned;
use super::merge::{self, Side};
use super::ordered_key::{check_sorted, encode_column, key_kind, unit_nanos};
use super::parquet_io;
use super::period::Periods;
use super::plan::{self, Step, Target};
use super::schema;
use super::splice::{self, NewRowGroup};
use super::state::{RowGroup, State};
use super::verify;
use super::{ordered_on_mismatch, Dataset};
use crate::dictionaries::has_dictionary;
use crate::error::{OupsError, Result};

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

/// A planned and merged write, before its files are written.
pub(super) struct Prepared {
    pub(super) steps: Vec<Step>,
    pub(super) outputs: Vec<Vec<NewRowGroup>>,
    pub(super) new: Option<NewData>,
}

#[derive(Clone)]
pub(super) struct NewData {
    pub(super) batch: RecordBatch,
    pub(super) keys: Vec<u64>,
}

pub(super) fn validate_data(req: &WriteRequest) -> Result<Option<NewData>> {
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
        let prepared = self.prepare(&req, new)?;
        self.commit(
            prepared.steps,
            prepared.outputs,
            prepared.new.as_ref(),
            &req,
        )
    }

    /// Plans `req` against this object's row groups and merges the regions
    /// it rewrites; nothing is written to disk.
    pub(super) fn prepare(&mut self, req: &WriteRequest, new: Option<NewData>) -> Result<Prepared> {
        self.check_ordered_on(&req.ordered_on)?;
        let stored = self.schema()?;
        prepare(&self.state, stored, &*self, req, new)
    }

    pub(super) fn check_ordered_on(&self, given: &Value) -> Result<()> {
        let stored = &self.state.ordered_on;
        if self.state.exists && !stored.is_null() && stored != given {
            return Err(ordered_on_mismatch(given, stored));
        }
        Ok(())
    }
}

/// Where a write finds the stored row groups it merges with: the local
/// dataset's files (mapped, and spliced where possible) or objects.
pub(crate) trait StoredFiles {
    /// The whole row groups, decoded, each with the name errors give it.
    fn read_row_groups(&self, rgs: &[RowGroup]) -> Result<Vec<(RecordBatch, PathBuf)>>;
    /// The local files of the row groups, for splicing their pages; `None`
    /// where files are not local.
    fn local_files(&self, rgs: &[RowGroup]) -> Option<Vec<PathBuf>>;
}

impl StoredFiles for Dataset {
    fn read_row_groups(&self, rgs: &[RowGroup]) -> Result<Vec<(RecordBatch, PathBuf)>> {
        let paths: Vec<PathBuf> = rgs.iter().map(|rg| self.data_path(rg.file_id)).collect();
        let batches = parquet_io::read_files(&paths)?;
        Ok(batches.into_iter().zip(paths).collect())
    }

    fn local_files(&self, rgs: &[RowGroup]) -> Option<Vec<PathBuf>> {
        Some(rgs.iter().map(|rg| self.data_path(rg.file_id)).collect())
    }
}

/// Plans `req` against `state` (whose files hold `stored` rows) and merges
/// the regions it rewrites; nothing is written.
pub(super) fn prepare(
    state: &State,
    stored: Option<SchemaRef>,
    files: &dyn StoredFiles,
    req: &WriteRequest,
    new: Option<NewData>,
) -> Result<Prepared> {
    let new = match new {
        None => None,
        Some(n) => {
            let canonical = match &stored {
                Some(s) => s.clone(),
                None => schema::canonical(n.batch.schema().as_ref()),
            };
            if stored.is_some() && state.ordered_field.as_deref() != Some(&req.ordered_field) {
                return Err(OupsError::OrderedOnMismatch(format!(
                    "ordered column '{}' is not the dataset's ordered column {:?}",
                    req.ordered_field, state.ordered_field
                )));
            }
            let batch = schema::conform(&n.batch, &canonical)?;
            let field = req.ordered_field.as_str();
            let ordered = batch.column_by_name(field);
            // A cast ordered column (another time unit) needs its keys again.
            let keys = match ordered {
                Some(col)
                    if col.data_type() != n.batch.schema().field_with_name(field)?.data_type() =>
                {
                    encode_column(col.as_ref(), field)?
                }
                _ => n.keys,
            };
            Some(NewData { batch, keys })
        }
    };
    // After conforming: periods are counted in the stored unit.
    let target = build_target(&req.target, state, new.as_ref(), &req.ordered_field)?;
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
    let stats: Vec<_> = state.row_groups.iter().map(RowGroup::stat).collect();
    let steps = if stats.is_empty() && new_keys.is_empty() {
        Vec::new()
    } else {
        plan::plan(&stats, new_keys, &target, drop, req.max_n_off_target_rgs)
    };
    let outputs = merge_steps(
        state,
        stored.as_ref(),
        files,
        &steps,
        new.as_ref(),
        req,
        ordered_col,
        &target,
    )?;
    Ok(Prepared {
        steps,
        outputs,
        new,
    })
}

/// Produces the row groups of every merge region, in step order.
#[allow(clippy::too_many_arguments)]
fn merge_steps(
    state: &State,
    schema: Option<&SchemaRef>,
    files: &dyn StoredFiles,
    steps: &[Step],
    new: Option<&NewData>,
    req: &WriteRequest,
    ordered_col: usize,
    target: &Target,
) -> Result<Vec<Vec<NewRowGroup>>> {
    let mut outputs = Vec::new();
    for step in steps {
        let Step::Merge(region) = step else { continue };
        let rgs = &state.row_groups[region.rgs.clone()];
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
        let plain = schema.is_some_and(|s| !has_dictionary(s))
            && new.is_none_or(|n| !has_dictionary(&n.batch.schema()));
        // When every column is written straight from its values, slices of
        // the mapped files are written as they are: splicing their pages
        // would only add a copy.
        let all_direct = req.compression == Compression::UNCOMPRESSED
            && schema.is_some_and(|s| {
                s.fields()
                    .iter()
                    .all(|f| aligned::mappable_width(f.data_type()).is_some())
            });
        if !(by_key && plain && all_direct) {
            if let Some(spliced) =
                try_splice(schema, files, rgs, region, new, req, ordered_col, target)?
            {
                outputs.push(spliced);
                continue;
            }
        }
        let stored = read_stored(schema, files, rgs, req, ordered_col)?;
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
    schema: Option<&SchemaRef>,
    files: &dyn StoredFiles,
    rgs: &[RowGroup],
    req: &WriteRequest,
    ordered_col: usize,
) -> Result<Option<(Vec<RecordBatch>, Vec<u64>)>> {
    if rgs.is_empty() {
        return Ok(None);
    }
    let (batches, paths): (Vec<RecordBatch>, Vec<PathBuf>) =
        files.read_row_groups(rgs)?.into_iter().unzip();
    // The dataset's schema (read by `prepare`'s caller before planning).
    let schema = match schema {
        Some(s) => Arc::clone(s),
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
#[allow(clippy::too_many_arguments)]
fn try_splice(
    schema: Option<&SchemaRef>,
    files: &dyn StoredFiles,
    rgs: &[RowGroup],
    region: &plan::Region,
    new: Option<&NewData>,
    req: &WriteRequest,
    ordered_col: usize,
    target: &Target,
) -> Result<Option<Vec<NewRowGroup>>> {
    let Some(schema) = schema else {
        return Ok(None);
    };
    if rgs.is_empty() {
        return Ok(None);
    }
    let Some(paths) = files.local_files(rgs) else {
        return Ok(None);
    };
    let files: Vec<(PathBuf, RowGroup)> = paths.into_iter().zip(rgs.iter().copied()).collect();
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
