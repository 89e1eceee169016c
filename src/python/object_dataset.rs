//! `oups._oups.RawObjectDataset`: the native half of an
//! `OrderedParquetDataset` whose location is an object-storage URL.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::PyTable;

use crate::dataset::bounds::key_range;
use crate::dataset::object::{ObjectDataset, ObjectSnapshot};
use crate::dataset::retention::Retention;
use crate::dataset::stats_batch;
use crate::dataset::versions::versions_batch;
use crate::python::convert::PyBound;
use crate::python::dataset::{
    parse_json, pin_of, private_tuple, table_or_none, write_request, RawInfo,
};
use crate::python::errors::{run, to_pyerr};

#[pyclass(frozen, module = "oups._oups")]
pub struct RawObjectDataset {
    inner: Mutex<ObjectDataset>,
}

impl RawObjectDataset {
    pub(crate) fn snapshot(&self) -> crate::error::Result<Option<ObjectSnapshot>> {
        self.lock().snapshot()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ObjectDataset> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl RawObjectDataset {
    /// Opens the dataset at `url` (latest version, `version`, or the last
    /// committed at or before `as_of_ns`), with the client configured from
    /// the environment and `storage_options`.
    #[new]
    #[pyo3(signature = (url, ordered_on_json, storage_options=None, version=None, as_of_ns=None))]
    fn new(
        py: Python<'_>,
        url: String,
        ordered_on_json: &str,
        storage_options: Option<BTreeMap<String, String>>,
        version: Option<u64>,
        as_of_ns: Option<i64>,
    ) -> PyResult<Self> {
        let ordered_on = parse_json(ordered_on_json, "ordered_on").map_err(to_pyerr)?;
        let pin = pin_of(version, as_of_ns)?;
        let options = storage_options.unwrap_or_default();
        let ds = run(py, || ObjectDataset::open(&url, &options, ordered_on, pin))?;
        Ok(RawObjectDataset {
            inner: Mutex::new(ds),
        })
    }

    fn info(&self, py: Python<'_>) -> PyResult<RawInfo> {
        run(py, || {
            let ds = self.lock();
            Ok(RawInfo::of(ds.state(), false, ds.is_fixed()))
        })
    }

    fn refresh(&self, py: Python<'_>) -> PyResult<()> {
        run(py, || self.lock().refresh())
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let batch = run(py, || stats_batch(self.lock().state()))?;
        let schema = batch.schema();
        PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
    }

    #[pyo3(signature = (file_ids=None))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        file_ids: Option<Vec<u64>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (batches, schema) = run(py, || self.lock().read(file_ids.as_deref()))?;
        table_or_none(py, batches, schema)
    }

    #[pyo3(signature = (file_ids=None))]
    fn read_private<'py>(
        &self,
        py: Python<'py>,
        file_ids: Option<Vec<u64>>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let (joined, schema) = run(py, || self.lock().read_private(file_ids.as_deref()))?;
        private_tuple(py, joined, schema)
    }

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

    /// Kept versions as a pyarrow Table, oldest first.
    fn versions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let batch = run(py, || versions_batch(&self.lock().versions()?))?;
        let schema = batch.schema();
        PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
    }

    #[pyo3(signature = (version, writer=None))]
    fn restore(&self, py: Python<'_>, version: u64, writer: Option<String>) -> PyResult<()> {
        run(py, || self.lock().restore(version, writer))
    }

    /// Pins the latest version under `name` (a commit records it; see
    /// `dataset/object/pins.rs`); None for a dataset without versions.
    #[pyo3(signature = (name, version=None))]
    fn pin(&self, py: Python<'_>, name: String, version: Option<u64>) -> PyResult<Option<u64>> {
        run(py, || self.lock().pin(&name, version))
    }

    fn pins(&self, py: Python<'_>) -> PyResult<std::collections::BTreeMap<String, u64>> {
        run(py, || Ok(self.lock().pins()))
    }

    fn unpin(&self, py: Python<'_>, name: String) -> PyResult<bool> {
        run(py, || self.lock().unpin(&name))
    }

    fn retention(&self, py: Python<'_>) -> PyResult<(Option<u64>, Option<f64>)> {
        run(py, || Ok(self.lock().retention_setting()))
    }

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

    /// Deletes versions beyond retention and unlisted files past their
    /// grace period; returns (removed versions, removed files).
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

    #[pyo3(signature = (preserve_metadata=false))]
    fn remove_from_disk(&self, py: Python<'_>, preserve_metadata: bool) -> PyResult<()> {
        run(py, || self.lock().remove(preserve_metadata))
    }

    /// Object storage has no locks (writers commit by conditional creation):
    /// holding one across calls cannot be offered there.
    #[pyo3(signature = (timeout=None))]
    fn hold_lock(&self, timeout: Option<f64>) -> PyResult<()> {
        let _ = timeout;
        let ds = self.lock();
        if ds.is_fixed() {
            let e = crate::dataset::read_only("lock", ds.state().version, &ds.url());
            return Err(to_pyerr(e));
        }
        Err(to_pyerr(crate::error::OupsError::InvalidArgument(format!(
            "'{}' is on object storage, which has no locks: 'lock()' is not available there. \
             Each write commits atomically on its own (a racing writer retries or gets a \
             CommitConflictError)",
            ds.url()
        ))))
    }

    /// Nothing to release: object storage has no locks.
    fn release(&self) {}

    /// The dataset's Arrow schema (None before its first row group).
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match run(py, || self.lock().schema())? {
            None => Ok(None),
            Some(s) => Ok(Some(pyo3_arrow::PySchema::new(s).into_pyarrow(py)?)),
        }
    }

    /// Per row group, the bytes of its data file (one listing).
    fn file_sizes(&self, py: Python<'_>) -> PyResult<Vec<u64>> {
        run(py, || self.lock().file_sizes())
    }

    /// Bytes of the data files of the version this object reads.
    fn stored_bytes(&self, py: Python<'_>) -> PyResult<u64> {
        run(py, || self.lock().stored_bytes())
    }

    /// Requests this object has issued to the store.
    #[getter]
    fn requests(&self) -> u64 {
        self.lock().requests()
    }

    #[getter]
    fn dirpath(&self) -> String {
        self.lock().url()
    }
}

/// Forgets the footers, data files and records this process kept of object
/// storage, so that a benchmark reads as another process would.
#[pyfunction]
pub fn _forget_objects() {
    crate::dataset::object::forget_objects();
}

/// The datasets below an object-storage URL, as prefixes relative to it.
#[pyfunction]
#[pyo3(signature = (url, storage_options=None))]
pub fn find_datasets_url(
    py: Python<'_>,
    url: String,
    storage_options: Option<BTreeMap<String, String>>,
) -> PyResult<Vec<String>> {
    run(py, || {
        let location = crate::storage::Location::parse(&url)?;
        let storage =
            crate::storage::ObjectStorage::open(location, &storage_options.unwrap_or_default())?;
        crate::store::discover::find_objects(&storage)
    })
}
