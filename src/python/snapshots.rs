//! Store snapshots for the Python `Store` (a directory or an object-storage URL).

use std::collections::BTreeMap;

use pyo3::prelude::*;

use crate::python::errors::run;
use crate::store::snapshots::{self, StoreBase};

type Options = Option<BTreeMap<String, String>>;

fn base_of(base: &str, options: Options) -> crate::error::Result<StoreBase> {
    StoreBase::open(base, &options.unwrap_or_default())
}

/// Pins every dataset of `datasets` and commits snapshot `name` of the
/// store at `base`; returns `[(relative path, version)]`.
#[pyfunction]
#[pyo3(signature = (base, name, datasets, storage_options=None))]
pub fn create_snapshot(
    py: Python<'_>,
    base: String,
    name: String,
    datasets: Vec<String>,
    storage_options: Options,
) -> PyResult<Vec<(String, u64)>> {
    let snap = run(py, || {
        snapshots::create(&base_of(&base, storage_options)?, &name, &datasets)
    })?;
    Ok(entries(snap))
}

/// `(created_at ns, [(relative path, version)])` of snapshot `name`.
#[pyfunction]
#[pyo3(signature = (base, name, storage_options=None))]
pub fn read_snapshot(
    py: Python<'_>,
    base: String,
    name: String,
    storage_options: Options,
) -> PyResult<(i64, Vec<(String, u64)>)> {
    let snap = run(py, || {
        snapshots::read(&base_of(&base, storage_options)?, &name)
    })?;
    Ok((snap.created_at, entries(snap)))
}

#[pyfunction]
#[pyo3(signature = (base, storage_options=None))]
pub fn list_snapshots(
    py: Python<'_>,
    base: String,
    storage_options: Options,
) -> PyResult<Vec<String>> {
    run(py, || snapshots::list(&base_of(&base, storage_options)?))
}

/// Removes snapshot `name` and its pins in `datasets`; false if it did not exist.
#[pyfunction]
#[pyo3(signature = (base, name, datasets, storage_options=None))]
pub fn delete_snapshot(
    py: Python<'_>,
    base: String,
    name: String,
    datasets: Vec<String>,
    storage_options: Options,
) -> PyResult<bool> {
    run(py, || {
        snapshots::delete(&base_of(&base, storage_options)?, &name, &datasets)
    })
}

fn entries(snap: snapshots::StoreSnapshot) -> Vec<(String, u64)> {
    snap.datasets
        .into_iter()
        .map(|e| (e.path, e.version))
        .collect()
}
