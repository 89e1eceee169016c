//! Staged writes: one write whose row groups are made by several processes
//! (dask workers), then committed once by the process holding the lock.
//!
//! The client plans *units*: runs of consecutive partitions of the new data,
//! each with the stretch of existing row groups that it may rewrite. Units
//! never share a row group, so each is planned and merged apart
//! ([`Dataset::stage`]) exactly as a write of its rows into its stretch would
//! be. Workers write the new row groups as hidden temporary files of the
//! dataset directory; [`Dataset::commit_staged`] checks them, gives them
//! their final names and commits the whole sequence as one version. Until
//! then no version lists them: a crash anywhere leaves the dataset as it was,
//! and the next writer's recovery deletes them (a staging marker in the
//! history directory says there is work in progress, or litter once its
//! process is gone).

use std::fs;
use std::ops::Range;
use std::path::PathBuf;

use arrow_array::Array;
use serde_json::{Map, Value};

mod commit;
mod units;

pub use units::plan_units;

use super::commit::write_data_files;
use super::layout::Layout;
use super::ordered_key::encode_column;
use super::parquet_io;
use super::plan::Step;
use super::splice::NewRowGroup;
use super::state::RowGroup;
use super::state::State;
use super::write::{validate_data, Prepared, WriteRequest};
use super::Dataset;
use crate::error::{IoContext, OupsError, Result};

/// One row group of a staged unit, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StagedRowGroup {
    /// An existing row group, kept as it is (by file id).
    Kept(u64),
    /// A new row group, in the staged file `name` of the dataset directory.
    New {
        name: String,
        n_rows: u64,
        min: u64,
        max: u64,
    },
}

/// A unit's result: the new sequence of its stretch `rgs` of row groups.
#[derive(Debug, Clone)]
pub struct StagedUnit {
    pub rgs: Range<usize>,
    pub row_groups: Vec<StagedRowGroup>,
}

/// Runs of partitions written together, and the existing row groups each
/// may rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub parts: Range<usize>,
    pub rgs: Range<usize>,
}

/// What the commit of a staged write records besides its row groups.
pub struct StagedCommit {
    /// The version the units were planned against.
    pub version: u64,
    pub units: Vec<StagedUnit>,
    pub ordered_on: Value,
    pub ordered_field: String,
    pub key_value_metadata: Map<String, Value>,
    pub writer: Option<String>,
    pub tag: String,
}

pub(crate) fn check_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 64
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(OupsError::InvalidArgument(format!(
            "staged write tag {tag:?} must be 1 to 64 letters, digits, '-' or '_'"
        )))
    }
}

/// The units of a staged write whose partitions span `lows[p]` to
/// `highs[p]` (values of the ordered column; `highs` excluded but for the
/// last, as dask divisions, when `exclusive`), against `state` (see
/// [`plan_units`]).
pub fn plan_against(
    state: &State,
    lows: &dyn Array,
    highs: &dyn Array,
    exclusive: bool,
) -> Result<Vec<Unit>> {
    let keys = |a: &dyn Array| -> Result<Vec<u64>> {
        match &state.ordered_type {
            // Bounds in another unit or width are compared as stored.
            Some(t) if a.data_type() != t => {
                let options = arrow_cast::CastOptions {
                    safe: false,
                    ..Default::default()
                };
                let cast = arrow_cast::cast_with_options(a, t, &options)?;
                encode_column(cast.as_ref(), "divisions")
            }
            _ => encode_column(a, "divisions"),
        }
    };
    let lows = keys(lows)?;
    let mut highs = keys(highs)?;
    if exclusive {
        let last = highs.len().saturating_sub(1);
        for (p, h) in highs.iter_mut().enumerate().take(last) {
            *h = h.checked_sub(1).ok_or_else(|| {
                OupsError::Unsorted(format!("partition {p} has an empty range of values"))
            })?;
        }
    }
    plan_units(&state.row_groups, &lows, &highs)
}

/// Row groups in order, and strictly apart where two units meet (their
/// rows were planned apart, so equal keys there would escape the duplicate
/// rules); `name` is the dataset's, for the message.
pub(crate) fn check_order(bounds: &[(u64, u64)], unit_starts: &[usize], name: &str) -> Result<()> {
    let starts: std::collections::HashSet<usize> = unit_starts.iter().copied().collect();
    for i in 1..bounds.len() {
        let (prev, next) = (bounds[i - 1], bounds[i]);
        let apart = starts.contains(&i);
        if prev.1 > next.0 || (apart && prev.1 == next.0) || next.0 > next.1 {
            return Err(OupsError::Unsorted(format!(
                "the staged row groups of dataset '{name}' are not in order (row group {i}): \
                 the partitions overlap or hold rows outside their divisions; nothing was \
                 committed"
            )));
        }
    }
    Ok(())
}

/// `rgs` is a stretch of a version's `n` row groups.
pub(crate) fn check_stretch(rgs: &Range<usize>, n: usize) -> Result<()> {
    if rgs.start > rgs.end || rgs.end > n {
        return Err(OupsError::InvalidArgument(format!(
            "row groups {rgs:?} are not a stretch of this version's {n} row groups"
        )));
    }
    Ok(())
}

/// A unit's new sequence from its merge plan over `stretch`: kept row
/// groups by id, and new ones named `<prefix><k>.parquet`, with, for each
/// new one, its name, its rows and how many rows of the unit come before.
pub(super) fn staged_row_groups<'a>(
    prepared: &'a Prepared,
    stretch: &[RowGroup],
    prefix: &str,
) -> (Vec<StagedRowGroup>, Vec<(String, &'a NewRowGroup, u64)>) {
    let mut out = Vec::new();
    let mut jobs: Vec<(String, &NewRowGroup, u64)> = Vec::new();
    let mut rows = 0u64;
    let mut outputs = prepared.outputs.iter();
    let keep_all: Vec<Step> = (0..stretch.len()).map(Step::Keep).collect();
    let steps = if prepared.steps.is_empty() {
        &keep_all
    } else {
        &prepared.steps
    };
    for step in steps {
        match step {
            Step::Keep(i) => {
                out.push(StagedRowGroup::Kept(stretch[*i].file_id));
                rows += stretch[*i].n_rows;
            }
            Step::Merge(_) => {
                for chunk in outputs.next().map_or(&[][..], Vec::as_slice) {
                    let name = format!("{prefix}{:06}.parquet", jobs.len());
                    let (min, max) = chunk.bounds();
                    out.push(StagedRowGroup::New {
                        name: name.clone(),
                        n_rows: chunk.n_rows(),
                        min,
                        max,
                    });
                    jobs.push((name, chunk, rows));
                    rows += chunk.n_rows();
                }
            }
        }
    }
    (out, jobs)
}

/// Whether a staged commit would change nothing: no new file, the same
/// row groups, and metadata as stored.
pub(crate) fn changes_nothing(
    state: &State,
    seq: &[Option<u64>],
    new_files: usize,
    key_value_metadata: &Map<String, Value>,
) -> bool {
    let metadata_changes =
        key_value_metadata
            .iter()
            .any(|(k, v)| match state.key_value_metadata.get(k) {
                Some(stored) => stored != v,
                None => !v.is_null(),
            });
    let same_row_groups = new_files == 0
        && seq.len() == state.row_groups.len()
        && seq
            .iter()
            .zip(&state.row_groups)
            .all(|(s, rg)| *s == Some(rg.file_id));
    same_row_groups && state.exists && !metadata_changes
}

/// Removes the staged files of `tag` (all attempts of all units).
fn remove_staged_files(layout: &Layout, tag: &str) {
    let prefix = Layout::staged_prefix(tag);
    if let Ok(entries) = fs::read_dir(&layout.dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

impl Dataset {
    /// Marks the start of a staged write (under the lock this object holds),
    /// after recovering what an interrupted write left.
    pub fn begin_staged(&mut self) -> Result<u64> {
        self.refuse_fixed("write")?;
        self.with_lock(|ds| {
            fs::create_dir_all(&ds.layout.history)
                .at("cannot create history directory", &ds.layout.history)?;
            let marker = ds.layout.staging_marker();
            fs::File::create(&marker).at("cannot create marker file", &marker)?;
            crate::durable::sync_dir(&ds.layout.history)?;
            Ok(ds.state.version)
        })
    }

    /// The units of a staged write whose partitions span `lows[p]` to
    /// `highs[p]` (see [`plan_against`]), against this object's version.
    pub fn plan_staged(
        &self,
        lows: &dyn Array,
        highs: &dyn Array,
        exclusive: bool,
    ) -> Result<Vec<Unit>> {
        plan_against(&self.state, lows, highs, exclusive)
    }

    /// On a worker: plans and merges `req`'s rows against the row groups
    /// `rgs` of this object's version, as a write of them would, and writes
    /// the new row groups to staged files named after `tag` (unique to this
    /// attempt). Nothing is committed.
    pub fn stage(
        &mut self,
        req: WriteRequest,
        rgs: Range<usize>,
        tag: &str,
    ) -> Result<Vec<StagedRowGroup>> {
        check_tag(tag)?;
        check_stretch(&rgs, self.state.row_groups.len())?;
        let new = validate_data(&req)?;
        // The stored schema is read (and cached) from the whole version.
        self.schema()?;
        let all = std::mem::take(&mut self.state.row_groups);
        self.state.row_groups = all[rgs].to_vec();
        let prepared = self.prepare(&req, new);
        let stretch = std::mem::replace(&mut self.state.row_groups, all);
        let prepared = prepared?;
        let (out, named) = staged_row_groups(&prepared, &stretch, &Layout::staged_prefix(tag));
        let jobs: Vec<(PathBuf, &NewRowGroup, u64)> = named
            .into_iter()
            .map(|(name, chunk, before)| (self.layout.dir.join(name), chunk, before))
            .collect();
        if jobs.is_empty() {
            return Ok(out);
        }
        fs::create_dir_all(&self.layout.dir)
            .at("cannot create dataset directory", &self.layout.dir)?;
        let mut created = Vec::new();
        // The files are flushed; their names need not be: the commit renames
        // them and flushes the directory then.
        let written = write_data_files(&jobs, &req, None, &mut created);
        if let Err(e) = written {
            parquet_io::remove_quietly(&created);
            return Err(e);
        }
        Ok(out)
    }

    /// Removes what a staged write made (its files and its marker), when it
    /// is given up.
    pub fn discard_staged(&mut self, tag: &str) -> Result<()> {
        check_tag(tag)?;
        remove_staged_files(&self.layout, tag);
        let _ = fs::remove_file(self.layout.staging_marker());
        Ok(())
    }
}
