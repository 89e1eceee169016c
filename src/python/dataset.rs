//! `oups._oups.RawDataset`: the native half of `OrderedParquetDataset`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::PyTable;
use serde_json::{Map, Value};

use crate::dataset::bounds::key_range;
use crate::dataset::parquet_io::parse_compression;
use crate::dataset::range_read::Snapshot;
use crate::dataset::retention::Retention;
use crate::dataset::versions::versions_batch;
use crate::dataset::{stats_batch, Dataset, Pin, Progress, TargetSpec, WriteRequest};
use crate::error::{OupsError, Result};
use crate::python::convert::PyBound;
use crate::python::errors::{run, to_pyerr};
use crate::python::handover::{split, Split};

pub(crate) fn parse_json(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| OupsError::InvalidArgument(format!("{what} is not valid JSON: {e}")))
}

/// The rows per row group: a count, a fixed period or calendar anchors.
pub(crate) type TargetArgs<'py> = (Option<u64>, Option<i64>, Option<PyReadonlyArray1<'py, i64>>);

/// A write's arguments as the engine takes them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_request(
    data: Option<AnyRecordBatch>,
    ordered_on_json: &str,
    ordered_field: String,
    target: TargetArgs<'_>,
    duplicates_on: Option<Vec<String>>,
    max_n_off_target_rgs: Option<i64>,
    key_value_metadata_json: &str,
    compression: &str,
    progress: Option<Py<PyAny>>,
    lock_timeout: Option<f64>,
    writer: Option<String>,
) -> PyResult<WriteRequest> {
    let target = match target {
        (Some(n), None, None) => TargetSpec::Rows(n),
        (None, Some(ns), None) => TargetSpec::FixedPeriod(ns),
        (None, None, Some(a)) => TargetSpec::Anchors(a.as_array().to_vec()),
        _ => {
            return Err(to_pyerr(OupsError::InvalidArgument(
                "exactly one of target_rows, period_ns, anchors must be given".into(),
            )))
        }
    };
    let data = match data {
        None => None,
        Some(d) => {
            let (batches, schema) = d.into_table()?.into_inner();
            Some(match batches.len() {
                1 => batches.into_iter().next().expect("one batch"),
                _ => crate::dictionaries::concat(&schema, &batches).map_err(to_pyerr)?,
            })
        }
    };
    let ordered_on = parse_json(ordered_on_json, "ordered_on").map_err(to_pyerr)?;
    let kvm = match parse_json(key_value_metadata_json, "key_value_metadata").map_err(to_pyerr)? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let compression = parse_compression(compression).map_err(to_pyerr)?;
    Ok(WriteRequest {
        lock_timeout,
        data,
        ordered_on,
        ordered_field,
        target,
        duplicates_on,
        max_n_off_target_rgs,
        key_value_metadata: kvm,
        compression,
        progress: progress.map(progress_callback),
        writer,
    })
}

#[pyclass(frozen, module = "oups._oups")]
pub struct RawDataset {
    inner: Mutex<Dataset>,
}

impl RawDataset {
    pub(crate) fn snapshot(&self) -> Result<Option<Snapshot>> {
        self.lock().snapshot()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Dataset> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A snapshot of a dataset's state for the Python layer.
#[pyclass(frozen, get_all, module = "oups._oups")]
pub struct RawInfo {
    ordered_on_json: String,
    ordered_field: Option<String>,
    is_newly_initialized: bool,
    key_value_metadata_json: String,
    version: u64,
    n_row_groups: usize,
    max_file_id: i64,
    locked: bool,
    read_only: bool,
}

impl RawInfo {
    pub(crate) fn of(s: &crate::dataset::state::State, locked: bool, read_only: bool) -> Self {
        RawInfo {
            ordered_on_json: s.ordered_on.to_string(),
            ordered_field: s.ordered_field.clone(),
            is_newly_initialized: !s.exists,
            key_value_metadata_json: Value::Object(s.key_value_metadata.clone()).to_string(),
            version: s.version,
            n_row_groups: s.row_groups.len(),
            max_file_id: s
                .row_groups
                .iter()
                .map(|r| r.file_id as i64)
                .max()
                .unwrap_or(-1),
            locked,
            read_only,
        }
    }
}

#[pymethods]
impl RawDataset {
    /// Opens the latest version, or `version`, or the last version committed
    /// at or before `as_of_ns` (ns since the epoch, UTC).
    #[new]
    #[pyo3(signature = (dirpath, ordered_on_json, lock_timeout=None, version=None, as_of_ns=None))]
    fn new(
        py: Python<'_>,
        dirpath: PathBuf,
        ordered_on_json: &str,
        lock_timeout: Option<f64>,
        version: Option<u64>,
        as_of_ns: Option<i64>,
    ) -> PyResult<Self> {
        let ordered_on = parse_json(ordered_on_json, "ordered_on").map_err(to_pyerr)?;
        let pin = pin_of(version, as_of_ns)?;
        let ds = run(py, || {
            Dataset::open(&dirpath, ordered_on, lock_timeout, pin)
        })?;
        Ok(RawDataset {
            inner: Mutex::new(ds),
        })
    }

    /// The state of the version this object reads (no disk access).
    fn info(&self, py: Python<'_>) -> PyResult<RawInfo> {
        run(py, || {
            let ds = self.lock();
            Ok(RawInfo::of(ds.state(), ds.is_locked(), ds.is_fixed()))
        })
    }

    /// Moves to the latest committed version (a fixed version stays).
    fn refresh(&self, py: Python<'_>) -> PyResult<()> {
        run(py, || self.lock().refresh())
    }

    /// Takes the lock until `release` (waiting at most `timeout` seconds,
    /// or the dataset's `lock_timeout` when None), and moves to the latest version.
    #[pyo3(signature = (timeout=None))]
    fn hold_lock(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        run(py, || self.lock().hold_lock(timeout))
    }

    /// Kept versions as a pyarrow Table (version, committed_at, operation,
    /// n_rows, n_row_groups), oldest first.
    fn versions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let batch = run(py, || versions_batch(&self.lock().versions()?))?;
        let schema = batch.schema();
        PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
    }

    /// Commits a new version equal to `version`, recorded as made by `writer`.
    #[pyo3(signature = (version, writer=None))]
    fn restore(&self, py: Python<'_>, version: u64, writer: Option<String>) -> PyResult<()> {
        run(py, || self.lock().restore(version, writer))
    }

    /// Pins `version` (the latest when None) under `name`; returns the
    /// pinned version, None for a dataset without versions.
    #[pyo3(signature = (name, version=None))]
    fn pin(&self, py: Python<'_>, name: String, version: Option<u64>) -> PyResult<Option<u64>> {
        run(py, || self.lock().pin(&name, version))
    }

    /// The dataset's pins: name -> version.
    fn pins(&self, py: Python<'_>) -> PyResult<std::collections::BTreeMap<String, u64>> {
        run(py, || self.lock().pins())
    }

    /// Removes the pin `name`; false if there was none.
    fn unpin(&self, py: Python<'_>, name: String) -> PyResult<bool> {
        run(py, || self.lock().unpin(&name))
    }

    /// The retention vacuums apply: (keep_versions, keep_seconds), both None
    /// for every version.
    fn retention(&self, py: Python<'_>) -> PyResult<(Option<u64>, Option<f64>)> {
        run(py, || Ok(self.lock().retention_setting()))
    }

    /// Sets the dataset's retention (a new version records it).
    #[pyo3(signature = (keep_versions=None, keep_seconds=None))]
    fn set_retention(
        &self,
        py: Python<'_>,
        keep_versions: Option<u64>,
        keep_seconds: Option<f64>,
    ) -> PyResult<()> {
        run(py, || {
            self.lock().set_retention(keep_versions, keep_seconds)
        })
    }

    /// Deletes versions beyond retention; returns (removed versions, removed files).
    #[pyo3(signature = (keep_versions=None, keep_seconds=None))]
    fn vacuum(
        &self,
        py: Python<'_>,
        keep_versions: Option<u64>,
        keep_seconds: Option<f64>,
    ) -> PyResult<(Vec<u64>, usize)> {
        let report = run(py, || {
            self.lock().vacuum(Retention {
                keep_versions,
                keep_seconds,
                ..Default::default()
            })
        })?;
        Ok((report.versions_removed, report.files_removed))
    }

    /// Per row group, the bytes of its data file.
    fn file_sizes(&self, py: Python<'_>) -> PyResult<Vec<u64>> {
        run(py, || self.lock().file_sizes())
    }

    /// Row-group stats as a pyarrow Table.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let batch = run(py, || stats_batch(self.lock().state()))?;
        let schema = batch.schema();
        PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
    }

    /// Reads row groups (all, or those with the given file ids) as a pyarrow
    /// Table; `None` when there is nothing to read.
    #[pyo3(signature = (file_ids=None))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        file_ids: Option<Vec<u64>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (batches, schema) = run(py, || self.lock().read(file_ids.as_deref()))?;
        table_or_none(py, batches, schema)
    }

    /// Like `read`, for conversion to pandas: `(rest, schema, raw)` where `raw`
    /// lists `(name, uint8 array)` for the fixed-width columns held in private
    /// copy-on-write memory (writable, never reaching the files), `rest` is a
    /// pyarrow Table of the other columns and `schema` that of the whole.
    #[pyo3(signature = (file_ids=None))]
    fn read_private<'py>(
        &self,
        py: Python<'py>,
        file_ids: Option<Vec<u64>>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let (joined, schema) = run(py, || self.lock().read_private(file_ids.as_deref()))?;
        private_tuple(py, joined, schema)
    }

    /// Rows with `start <= ordered_on < end_excl` of some row groups (all when
    /// `file_ids` is None), some columns (all when None), as a pyarrow Table;
    /// `None` when the dataset has no row group.
    #[pyo3(signature = (file_ids=None, start=None, end_excl=None, columns=None))]
    fn read_range<'py>(
        &self,
        py: Python<'py>,
        file_ids: Option<Vec<u64>>,
        start: Option<PyBound>,
        end_excl: Option<PyBound>,
        columns: Option<Vec<String>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (batches, schema) = run(py, || {
            let mut ds = self.lock();
            let range = match ds.state().ordered_type.clone() {
                Some(dt) => key_range(&dt, start.map(Into::into), end_excl.map(Into::into))?,
                None => Default::default(),
            };
            ds.read_range(file_ids.as_deref(), range, columns.as_deref())
        })?;
        table_or_none(py, batches, schema)
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (data, ordered_on_json, ordered_field, *, target_rows=None,
        period_ns=None, anchors=None, duplicates_on=None, max_n_off_target_rgs=None,
        key_value_metadata_json="{}", compression="none", progress=None, lock_timeout=None,
        writer=None))]
    fn write(
        &self,
        py: Python<'_>,
        data: Option<AnyRecordBatch>,
        ordered_on_json: &str,
        ordered_field: String,
        target_rows: Option<u64>,
        period_ns: Option<i64>,
        anchors: Option<PyReadonlyArray1<'_, i64>>,
        duplicates_on: Option<Vec<String>>,
        max_n_off_target_rgs: Option<i64>,
        key_value_metadata_json: &str,
        compression: &str,
        progress: Option<Py<PyAny>>,
        lock_timeout: Option<f64>,
        writer: Option<String>,
    ) -> PyResult<()> {
        let req = write_request(
            data,
            ordered_on_json,
            ordered_field,
            (target_rows, period_ns, anchors),
            duplicates_on,
            max_n_off_target_rgs,
            key_value_metadata_json,
            compression,
            progress,
            lock_timeout,
            writer,
        )?;
        run(py, || self.lock().write(req))
    }

    #[pyo3(signature = (preserve_metadata=false))]
    fn remove_from_disk(&self, py: Python<'_>, preserve_metadata: bool) -> PyResult<()> {
        run(py, || self.lock().remove_from_disk(preserve_metadata))
    }

    /// Drops this object's hold on the lock (it is re-taken when needed).
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        run(py, || {
            self.lock().release();
            Ok(())
        })
    }

    #[getter]
    fn dirpath(&self) -> PathBuf {
        self.lock().dir().to_path_buf()
    }
}

/// Which version an open reads.
pub(crate) fn pin_of(version: Option<u64>, as_of_ns: Option<i64>) -> PyResult<Pin> {
    match (version, as_of_ns) {
        (None, None) => Ok(Pin::Latest),
        (Some(v), None) => Ok(Pin::Version(v)),
        (None, Some(t)) => Ok(Pin::AsOf(t)),
        (Some(_), Some(_)) => Err(to_pyerr(OupsError::InvalidArgument(
            "give 'version' or 'as_of', not both".into(),
        ))),
    }
}

/// Batches as a pyarrow Table; `None` without a schema (nothing to read).
pub(crate) fn table_or_none<'py>(
    py: Python<'py>,
    batches: Vec<arrow_array::RecordBatch>,
    schema: Option<arrow_schema::SchemaRef>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match schema {
        None => Ok(None),
        Some(schema) => Ok(Some(PyTable::try_new(batches, schema)?.into_pyarrow(py)?)),
    }
}

/// `read_private`'s answer: `(rest, schema, raw)`, see [`RawDataset::read_private`].
pub(crate) fn private_tuple<'py>(
    py: Python<'py>,
    joined: Option<crate::dataset::PrivateBatch>,
    schema: Option<arrow_schema::SchemaRef>,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let (Some((batch, private)), Some(schema)) = (joined, schema) else {
        return Ok(None);
    };
    let Split {
        rest: rest_batch,
        raw,
    } = split(py, batch, &schema, &private)?;
    let rest_schema = rest_batch.schema();
    let table = PyTable::try_new(vec![rest_batch], rest_schema)?.into_pyarrow(py)?;
    let full = pyo3_arrow::PySchema::new(schema).into_pyarrow(py)?;
    Ok(Some(PyTuple::new(
        py,
        [table, full, raw.into_pyobject(py)?.into_any()],
    )?))
}

/// The metadata file of the dataset in `dirpath` (whose existence makes it a dataset).
#[pyfunction]
pub fn metadata_path(dirpath: PathBuf) -> PyResult<PathBuf> {
    Ok(crate::dataset::layout::Layout::new(&dirpath)
        .map_err(to_pyerr)?
        .meta)
}

/// Every dataset below `root`, sorted (hidden directories skipped).
#[pyfunction]
pub fn find_datasets(py: Python<'_>, root: PathBuf) -> PyResult<Vec<PathBuf>> {
    py.detach(|| Ok(crate::dataset::layout::find_datasets(&root)))
}

/// Wraps a Python callable `f(rows_written, rows_total)` for the engine. A
/// failing callback only loses progress output: its exception is printed and
/// the write goes on.
fn progress_callback(f: Py<PyAny>) -> Progress {
    Arc::new(move |done, total| {
        Python::attach(|py| {
            if let Err(e) = f.call1(py, (done, total)) {
                e.print(py);
            }
        })
    })
}
