//! Reading part of a dataset: a range of the ordered column, some columns.
//!
//! Only the row groups whose stats intersect the range are opened; in the
//! ones straddling a bound, the ordered column alone is decoded to find the
//! rows, then the other columns are read for those rows only (the offset
//! index lets the reader skip the pages outside them).

use std::ops::Range;
use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};

use crate::dataset::history;
use crate::dataset::layout::Layout;
use crate::dataset::ordered_key::count_below;
use crate::dataset::parquet_io::{parallel_map, read_file_part, read_file_split};
use crate::dataset::state::RowGroup;
use crate::dataset::verify::{check_rows, same_columns};
use crate::dataset::{vacuumed_error, Dataset};
use crate::error::{OupsError, Result};

/// What the readers of one version of a dataset need.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub layout: Layout,
    pub version: u64,
    /// The record's format, which says where its data files are.
    pub format: u32,
    pub row_groups: Vec<RowGroup>,
    /// Keeps vacuums away from `version` while the snapshot is read.
    pub lease: Option<std::sync::Arc<crate::dataset::lease::Lease>>,
    /// The identity of the version's record when it was opened.
    pub record: Option<history::RecordId>,
    pub schema: SchemaRef,
    pub ordered_field: String,
    pub ordered_index: usize,
    pub ordered_type: DataType,
}

impl Snapshot {
    pub fn paths(&self, rgs: &[RowGroup]) -> Vec<PathBuf> {
        rgs.iter().map(|rg| self.path(rg.file_id)).collect()
    }

    pub fn path(&self, id: u64) -> PathBuf {
        self.layout.data_path(id, self.format)
    }

    /// `read` unless the version was vacuumed meanwhile (see [`history::alive`]).
    pub fn checked<T>(&self, read: Result<T>) -> Result<T> {
        if history::alive(&self.layout, self.version, self.record.as_ref()) {
            return read;
        }
        match read {
            Ok(_) | Err(OupsError::Io { .. } | OupsError::Corrupt { .. }) => {
                Err(vacuumed_error(&self.layout, self.version))
            }
            Err(other) => Err(other),
        }
    }
}

/// Half-open bounds on the ordered column, as order-preserving keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyRange {
    pub start: Option<u64>,
    pub end_excl: Option<u64>,
}

impl KeyRange {
    pub fn overlaps(&self, min: u64, max: u64) -> bool {
        self.start.is_none_or(|s| max >= s) && self.end_excl.is_none_or(|e| min < e)
    }

    pub fn covers(&self, min: u64, max: u64) -> bool {
        self.start.is_none_or(|s| min >= s) && self.end_excl.is_none_or(|e| max < e)
    }

    /// Rows of a sorted column of `n` values inside the range, given how many
    /// values are below a key.
    pub fn rows_in(&self, n: usize, below: impl Fn(u64) -> usize) -> Range<usize> {
        let lo = self.start.map_or(0, &below);
        let hi = self.end_excl.map_or(n, &below);
        lo..hi.max(lo)
    }
}

impl Dataset {
    /// The committed row groups and schema; `None` when there is no row group.
    pub fn snapshot(&mut self) -> Result<Option<Snapshot>> {
        let ds = &mut *self;
        {
            let Some(schema) = ds.schema()? else {
                return Ok(None);
            };
            let (Some(field), Some(dt)) = (
                ds.state.ordered_field.clone(),
                ds.state.ordered_type.clone(),
            ) else {
                return Ok(None);
            };
            let ordered_index = schema.index_of(&field).map_err(|_| {
                OupsError::corrupt(
                    &ds.layout.meta,
                    format!("the ordered column '{field}' is not in the data files"),
                )
            })?;
            Ok(Some(Snapshot {
                layout: ds.layout.clone(),
                version: ds.state.version,
                format: ds.state.format,
                row_groups: ds.state.row_groups.clone(),
                lease: ds.lease.clone(),
                record: ds.record.clone(),
                schema,
                ordered_field: field,
                ordered_index,
                ordered_type: dt,
            }))
        }
    }

    /// The size of each row group's data file.
    pub fn file_sizes(&self) -> Result<Vec<u64>> {
        self.state
            .row_groups
            .iter()
            .map(|rg| {
                let path = self.layout.data_path(rg.file_id, self.state.format);
                Ok(std::fs::metadata(&path)
                    .map_err(|e| OupsError::io("cannot read the size of", &path, e))?
                    .len())
            })
            .collect()
    }

    /// Rows in `range` of the row groups `file_ids` (all when `None`), with
    /// the given columns (by name, all when `None`) in schema order.
    pub fn read_range(
        &mut self,
        file_ids: Option<&[u64]>,
        range: KeyRange,
        columns: Option<&[String]>,
    ) -> Result<(Vec<RecordBatch>, Option<SchemaRef>)> {
        let Some(snap) = self.snapshot()? else {
            return Ok((Vec::new(), None));
        };
        let (projection, out_schema) = projection(
            &snap.schema,
            columns,
            &snap.layout.dir.display().to_string(),
        )?;
        let selected: Vec<RowGroup> = snap
            .row_groups
            .iter()
            .filter(|rg| file_ids.is_none_or(|ids| ids.contains(&rg.file_id)))
            .filter(|rg| range.overlaps(rg.min, rg.max))
            .copied()
            .collect();
        // Files are read in parallel; a lone file has its columns split instead.
        let ways = match selected.len() {
            1 => crate::cores::cores(),
            _ => 1,
        };
        let batches = snap.checked(parallel_map(&selected, |rg| {
            let path = snap.path(rg.file_id);
            let rows = if range.covers(rg.min, rg.max) {
                None
            } else {
                let ordered = read_file_part(&path, Some(&[snap.ordered_index]), None)?;
                let col = ordered.column(0).as_ref();
                check_rows(&path, col.len(), rg)?;
                Some(range.rows_in(col.len(), |k| count_below(col, k)))
            };
            let whole = rows.is_none();
            let batch = read_file_split(&path, projection.as_deref(), rows, ways)?;
            if whole {
                check_rows(&path, batch.num_rows(), rg)?;
            }
            if !same_columns(batch.schema().fields(), out_schema.fields()) {
                return Err(OupsError::corrupt(
                    &path,
                    "its schema differs from the dataset's first data file",
                ));
            }
            Ok(batch.with_schema(out_schema.clone())?)
        }))?;
        Ok((batches, Some(out_schema)))
    }
}

/// The columns `columns` names (all when `None`), as indices in schema
/// order, and the schema of what a read of them gives.
pub fn projection(
    schema: &SchemaRef,
    columns: Option<&[String]>,
    location: &str,
) -> Result<(Option<Vec<usize>>, SchemaRef)> {
    let Some(names) = columns else {
        return Ok((None, schema.clone()));
    };
    let mut idx = Vec::with_capacity(names.len());
    for name in names {
        idx.push(schema.index_of(name).map_err(|_| {
            OupsError::ColumnNotFound(format!(
                "column {name:?} is not in dataset '{location}' (columns: {:?})",
                schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()
            ))
        })?);
    }
    idx.sort_unstable();
    idx.dedup();
    let out = std::sync::Arc::new(schema.project(&idx)?);
    Ok((Some(idx), out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_range() {
        let keys = [1u64, 2, 2, 3, 5, 8];
        let below = |k: u64| keys.partition_point(|&v| v < k);
        let r = |s, e| KeyRange {
            start: s,
            end_excl: e,
        };
        assert_eq!(r(None, None).rows_in(keys.len(), below), 0..6);
        assert_eq!(r(Some(2), Some(5)).rows_in(keys.len(), below), 1..4);
        assert_eq!(r(Some(9), None).rows_in(keys.len(), below), 6..6);
        assert_eq!(r(Some(5), Some(3)).rows_in(keys.len(), below), 4..4);
        assert!(r(Some(3), Some(4)).overlaps(2, 3));
        assert!(!r(Some(3), Some(4)).overlaps(4, 9));
    }
}
