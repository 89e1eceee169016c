//! Staged (distributed) writes: the binding of [`crate::dataset::staged`].
//! A staged row group crosses to Python as a tuple
//! `(kept_file_id | None, staged_name | None, n_rows, min_key, max_key)`.

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::PyArray;
use serde_json::{Map, Value};

use crate::dataset::staged::{StagedCommit, StagedRowGroup, StagedUnit};
use crate::error::OupsError;
use crate::python::any_dataset::{AnyDataset, Native};
use crate::python::dataset::{parse_json, write_request};
use crate::python::errors::{run, to_pyerr};

type RowGroupTuple = (Option<u64>, Option<String>, u64, u64, u64);

fn to_tuple(rg: StagedRowGroup) -> RowGroupTuple {
    match rg {
        StagedRowGroup::Kept(id) => (Some(id), None, 0, 0, 0),
        StagedRowGroup::New {
            name,
            n_rows,
            min,
            max,
        } => (None, Some(name), n_rows, min, max),
    }
}

fn from_tuple(t: RowGroupTuple) -> PyResult<StagedRowGroup> {
    match t {
        (Some(id), None, ..) => Ok(StagedRowGroup::Kept(id)),
        (None, Some(name), n_rows, min, max) => Ok(StagedRowGroup::New {
            name,
            n_rows,
            min,
            max,
        }),
        _ => Err(to_pyerr(OupsError::InvalidArgument(
            "a staged row group is either kept or new".into(),
        ))),
    }
}

/// Marks a staged write in progress; returns the version it plans against.
#[pyfunction]
pub fn staged_begin(py: Python<'_>, raw: AnyDataset<'_>) -> PyResult<u64> {
    let raw = raw.native();
    run(py, || match raw {
        Native::Local(r) => r.lock().begin_staged(),
        Native::Object(r) => r.lock().begin_staged(),
    })
}

/// `(first partition, end partition, first row group, end row group)` of
/// each unit.
#[pyfunction]
pub fn staged_plan(
    py: Python<'_>,
    raw: AnyDataset<'_>,
    lows: PyArray,
    highs: PyArray,
    exclusive: bool,
) -> PyResult<Vec<(usize, usize, usize, usize)>> {
    let (lows, highs) = (lows.into_inner().0, highs.into_inner().0);
    let raw = raw.native();
    run(py, || {
        let (lows, highs) = (lows.as_ref(), highs.as_ref());
        let units = match raw {
            Native::Local(r) => r.lock().plan_staged(lows, highs, exclusive)?,
            Native::Object(r) => r.lock().plan_staged(lows, highs, exclusive)?,
        };
        Ok(units
            .into_iter()
            .map(|u| (u.parts.start, u.parts.end, u.rgs.start, u.rgs.end))
            .collect())
    })
}

#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (raw, data, ordered_on_json, ordered_field, rg_start, rg_end, tag, *,
    target_rows=None, period_ns=None, anchors=None, duplicates_on=None,
    max_n_off_target_rgs=None, compression="none"))]
pub fn staged_write(
    py: Python<'_>,
    raw: AnyDataset<'_>,
    data: Option<AnyRecordBatch>,
    ordered_on_json: &str,
    ordered_field: String,
    rg_start: usize,
    rg_end: usize,
    tag: String,
    target_rows: Option<u64>,
    period_ns: Option<i64>,
    anchors: Option<PyReadonlyArray1<'_, i64>>,
    duplicates_on: Option<Vec<String>>,
    max_n_off_target_rgs: Option<i64>,
    compression: &str,
) -> PyResult<Vec<RowGroupTuple>> {
    let req = write_request(
        data,
        ordered_on_json,
        ordered_field,
        (target_rows, period_ns, anchors),
        duplicates_on,
        max_n_off_target_rgs,
        "{}",
        compression,
        None,
        None,
        None,
    )?;
    let raw = raw.native();
    run(py, || {
        let rgs = rg_start..rg_end;
        let staged = match raw {
            Native::Local(r) => r.lock().stage(req, rgs, &tag)?,
            Native::Object(r) => r.lock().stage(req, rgs, &tag)?,
        };
        Ok(staged.into_iter().map(to_tuple).collect())
    })
}

#[pyfunction]
pub fn staged_discard(py: Python<'_>, raw: AnyDataset<'_>, tag: String) -> PyResult<()> {
    let raw = raw.native();
    run(py, || match raw {
        Native::Local(r) => r.lock().discard_staged(&tag),
        Native::Object(r) => r.lock().discard_staged(&tag),
    })
}

#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (raw, version, units, ordered_on_json, ordered_field, key_value_metadata_json,
    tag, writer=None))]
pub fn staged_commit(
    py: Python<'_>,
    raw: AnyDataset<'_>,
    version: u64,
    units: Vec<(usize, usize, Vec<RowGroupTuple>)>,
    ordered_on_json: &str,
    ordered_field: String,
    key_value_metadata_json: &str,
    tag: String,
    writer: Option<String>,
) -> PyResult<()> {
    let units = units
        .into_iter()
        .map(|(start, end, rgs)| {
            Ok(StagedUnit {
                rgs: start..end,
                row_groups: rgs.into_iter().map(from_tuple).collect::<PyResult<_>>()?,
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let ordered_on = parse_json(ordered_on_json, "ordered_on").map_err(to_pyerr)?;
    let key_value_metadata =
        match parse_json(key_value_metadata_json, "key_value_metadata").map_err(to_pyerr)? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
    let commit = StagedCommit {
        version,
        units,
        ordered_on,
        ordered_field,
        key_value_metadata,
        writer,
        tag,
    };
    let raw = raw.native();
    run(py, || match raw {
        Native::Local(r) => r.lock().commit_staged(commit),
        Native::Object(r) => r.lock().commit_staged(commit),
    })
}
